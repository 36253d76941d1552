"""The fallback without UNO: one ``soffice --convert-to pdf`` run per file, or per CHUNK files of a known batch.

In: office file paths, IngestOptions, the converter's Processes and a folder for profiles. Out:
(folder, pdf) pairs, the PDF in a private temporary folder that the caller removes when done.

Each LibreOffice start costs ~1.5-2 s here (more on a busy machine) whatever it converts, and one run
converts any number of files. So a caller that knows its batch says so with ``expect(sources)``; when
``take`` is then asked for one of those files, it converts that file together with the next expected
files needing the same export (up to CHUNK, so the first result still comes soon) in one run, and
hands out the others' PDFs when their turn comes. Sheets come out as LibreOffice prints them: one
page each, columns as wide as the file says (numbers in narrow columns show as ###).
"""

from __future__ import annotations

import csv
import shutil
import tempfile
import threading
from pathlib import Path

from docvision.document import IngestOptions
from docvision.errors import DamagedSource
import docvision.ingest.office.files as officefile
from docvision.ingest.office.formats import CALC, IMPRESS, WRITER
import docvision.ingest.office.profile as officeprofile
import docvision.ingest.office.soffice as libreoffice

SINGLE_PAGE_SHEETS = 'pdf:calc_pdf_Export:{"SinglePageSheets":{"type":"boolean","value":"true"}}'
TARGETS = {**dict.fromkeys(CALC, SINGLE_PAGE_SHEETS), **dict.fromkeys(WRITER, "pdf:writer_pdf_Export"),
           **dict.fromkeys(IMPRESS, "pdf:impress_pdf_Export")}
CHUNK = 16  # files per LibreOffice run for an expected batch


def csv_options(path: Path) -> str | None:
    """LibreOffice's CSV import options (separator, quote, charset, first line), or None for other files."""
    if path.suffix.lower() != ".csv":
        return None
    with open(path, "rb") as fh:
        raw = fh.read(64 << 10)
    try:
        raw.decode("utf-8")
        charset = 76  # LibreOffice's number for UTF-8
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the sample's end is still UTF-8; anything else is taken for
        # Windows-1252 (LibreOffice's 1), the usual encoding of spreadsheet exports that are not.
        charset = 76 if exc.start >= len(raw) - 3 else 1
    try:
        separator = csv.Sniffer().sniff(raw.decode("utf-8", errors="replace"), delimiters=",;\t|").delimiter
    except csv.Error:
        separator = ","
    return f"{ord(separator)},34,{charset},1"


def stage(paths: list[Path], folder: Path) -> list[Path]:
    """Copy the inputs into ``folder`` under distinct plain names, so outputs never collide, odd file
    names (leading dashes, commas) never reach LibreOffice's command line, and LibreOffice never
    touches the user's own file."""
    staged = []
    for i, path in enumerate(paths):
        copy = folder / f"in{i}{officefile.actual(path, path.suffix.lower())}"
        shutil.copyfile(path, copy)
        staged.append(copy)
    return staged


class PerCall:
    """Office files to PDF with one soffice run per file, or CHUNK at a time for an expected batch.

    Thread-safe: a file whose chunk another thread is converting waits for that run instead of
    starting its own. ``close()`` removes PDFs converted ahead that nobody asked for.
    """

    def __init__(self, processes: libreoffice.Processes, root: Path) -> None:
        self._processes = processes
        self._root = root
        self._lock = threading.Lock()
        self._profiles: list[Path] = []  # free profiles: a fresh one costs ~0.3 s of a ~1.8 s run
        self._ready: dict[tuple, tuple[Path, Path]] = {}  # file key -> (folder, pdf) converted ahead
        self._expected: dict[str, Path] = {}  # resolved path -> path, in the order the batch asks for them
        self._running: dict[str, threading.Event] = {}  # resolved path -> set when its run ends

    def convert(self, path: Path, options: IngestOptions, source: str) -> tuple[Path, Path]:
        """The file as a PDF in a new temporary folder: (folder, pdf); converted now unless already done."""
        ready = self.take(path, options)
        if ready is not None:
            return ready
        ext = path.suffix.lower()
        folder = Path(tempfile.mkdtemp(prefix="docvision-office-"))
        try:
            [pdf] = self._run(stage([path], folder), folder / "out", TARGETS[ext], options.timeout,
                              _infilter(path), source)
            if pdf is None:
                raise DamagedSource(f"LibreOffice could not convert the {officefile.describe(ext)}; the file may "
                                    "be damaged or password-protected", source=source)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return folder, pdf

    def _run(self, inputs: list[Path], outdir: Path, target: str, timeout: float, infilter: str | None,
             source: str | None) -> list[Path | None]:
        """One soffice run on a profile no other run is using."""
        with self._lock:
            profile = (self._profiles.pop() if self._profiles
                       else officeprofile.create(self._root, False, self._processes))
        healthy = False
        try:
            outputs, healthy = libreoffice.convert(self._processes, profile, inputs, outdir, target, timeout,
                                                   infilter=infilter, source=source)
        finally:
            if healthy:
                with self._lock:
                    self._profiles.append(profile)
            else:  # a killed LibreOffice may leave a lock file or a half-written profile behind
                shutil.rmtree(profile, ignore_errors=True)
        return outputs

    def expect(self, sources: list[str]) -> None:
        """Announce a batch: later ``take``/``convert`` calls for these files convert them CHUNK at a time."""
        with self._lock:
            for source in sources:
                path = Path(source)
                if path.suffix.lower() in TARGETS and path.is_file():
                    self._expected[str(path.resolve())] = path

    def take(self, path: Path, options: IngestOptions) -> tuple[Path, Path] | None:
        """The file's PDF if it was converted ahead, or converted now with the next expected files; else None."""
        resolved = str(path.resolve())
        with self._lock:
            running = self._running.get(resolved)
            if running is None:
                ready = self._ready.pop(_key(path), None)
                if ready is not None or self._expected.pop(resolved, None) is None:
                    return ready
                chunk = self._chunk_with(path)
                done = threading.Event()
                self._running.update(dict.fromkeys((str(p.resolve()) for p in chunk), done))
        if running is not None:
            running.wait()
        else:
            try:
                self._convert_chunk(chunk, *_group_key(path), options)
            finally:
                with self._lock:
                    for p in chunk:
                        self._running.pop(str(p.resolve()), None)
                done.set()
        with self._lock:
            return self._ready.pop(_key(path), None)

    def _chunk_with(self, path: Path) -> list[Path]:
        """``path`` and the next expected files sharing its export, up to CHUNK (called holding the lock)."""
        group = _group_key(path)
        chunk = [path]
        for resolved, other in list(self._expected.items()):
            if len(chunk) == CHUNK:
                break
            if _group_key(other) == group and _checks(other):
                chunk.append(self._expected.pop(resolved))
        return chunk

    def _convert_chunk(self, paths: list[Path], target: str, import_filter: str | None,
                       options: IngestOptions) -> None:
        """One LibreOffice run over ``paths``; each PDF moves to a folder of its own in ``_ready``."""
        folder = Path(tempfile.mkdtemp(prefix="docvision-office-"))
        try:
            pdfs = self._run(stage(paths, folder), folder / "out", target,
                             _chunk_timeout(options.timeout, len(paths)), import_filter, None)
            for path, pdf in zip(paths, pdfs):
                if pdf is not None:
                    own = Path(tempfile.mkdtemp(prefix="docvision-office-"))
                    with self._lock:
                        self._ready[_key(path)] = (own, Path(shutil.move(str(pdf), own / "out.pdf")))
        except Exception:  # a hung or missing converter: each file is converted (and reported) on its own
            pass
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        """Remove PDFs converted ahead for files that were never asked for."""
        with self._lock:
            for folder, _pdf in self._ready.values():
                shutil.rmtree(folder, ignore_errors=True)
            self._ready.clear()
            self._expected.clear()


def _infilter(path: Path) -> str | None:
    options = csv_options(path)
    return f"CSV:{options}" if options else None


def _key(path: Path) -> tuple:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _group_key(path: Path) -> tuple[str, str | None]:
    """Files converted in one run must share the export filter and the CSV import options."""
    return TARGETS[path.suffix.lower()], _infilter(path)


def _checks(path: Path) -> bool:
    try:
        officefile.check(path, path.suffix.lower(), str(path))
        return True
    except Exception:  # load() reports it when the file's turn comes
        return False


def _chunk_timeout(timeout: float, files: int) -> float:
    """Time for one run over ``files``: one file's timeout plus a few seconds per extra file, not
    ``timeout * files``, so a file that hangs LibreOffice costs minutes, not a quarter of an hour,
    before each file is converted (and reported) on its own."""
    return timeout + 6.0 * (files - 1)
