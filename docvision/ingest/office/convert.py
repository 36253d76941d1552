"""Office files to PDF for one run: through one warm LibreOffice, or one soffice start per file without UNO.

In: office file paths and IngestOptions. Out: (folder, pdf) pairs, the PDF in a private temporary folder
that the caller removes when done; with the warm converter the folder also holds ``layout.json``, the
macro's description of which sheet and cells each PDF page shows (see ``macro``).

The warm path (``warm``): one LibreOffice started at the first file (or as soon as a batch is
announced) and kept for the run; each file costs its load and export (~0.1-0.3 s) instead of a
~2 s start, and sheets are laid out as a person reads them (``macro``). When LibreOffice dies it is
started again and the file tried once more; when it hangs it is killed after the timeout and the
next file gets a new one. Without a Python that has LibreOffice's ``uno`` (Debian: python3-uno and
libreoffice-script-provider-python), files go through ``percall`` and the first document says so
in one warning line.

``close()`` kills every process the converter started, from any thread, whatever it is doing.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from docvision.document import IngestOptions
from docvision.errors import DamagedSource, DocvisionError, EmptySource, ExternalTimeout, ToolMissing
import docvision.ingest.office.files as officefile
import docvision.ingest.office.percall as percall
import docvision.ingest.office.profile as officeprofile
import docvision.ingest.office.soffice as libreoffice
from docvision.ingest.office.formats import FORMATS
from docvision.ingest.office.percall import csv_options
from docvision.ingest.office.warm import Crashed, Unavailable, WarmOffice, python_for_uno

LAYOUT = "layout.json"
# A sheet is drawn up to this many rows and columns from its first cell; past them a warning says
# what was left out. An .xlsx claiming XFD1048576 took 50 s and 8 GB before such a bound.
MAX_ROWS = 20_000
MAX_COLUMNS = 256
QUIT_SECONDS = 3.0  # measured ~0.3 s for LibreOffice to end when asked
CRASHED_TWICE = ("LibreOffice stopped twice while converting this file through UNO; a plain LibreOffice run "
                 "converted it instead")
NO_UNO = ("LibreOffice cannot be driven through UNO here ({why}): converting with one LibreOffice start per file, "
          "and numbers in narrow columns may show as ### (apt-get install python3-uno "
          "libreoffice-script-provider-python)")


class Converter:
    """The run's office converter. ``starts`` counts the LibreOffice processes it started."""

    def __init__(self, options: IngestOptions) -> None:
        self.options = options
        self._processes = libreoffice.Processes()
        self._root = Path(tempfile.mkdtemp(prefix="docvision-lo-"))  # profiles; removed by close()
        self._percall = percall.PerCall(self._processes, self._root)
        self._lock = threading.Lock()  # one conversion at a time on the warm LibreOffice
        self._warm: WarmOffice | None = None
        self._unavailable: str | None = None  # why the warm path is off, once known
        self._notice: str | None = None  # the one warning line saying so, until a document carries it
        self._idle_workers = 0  # workers that found no uno, so started no LibreOffice
        self._queue: dict[str, Path] = {}  # announced files not converted yet, in the run's order
        self._ahead: _Job | None = None  # the next announced file, already handed to LibreOffice

    @property
    def starts(self) -> int:
        """LibreOffice processes started so far: warm ones and per-call runs."""
        return self._processes.started - self._idle_workers

    def expect(self, sources: list[str]) -> None:
        """Announce a batch: starts the warm LibreOffice now, so it is up when the first file needs it
        (or, without UNO, lets ``percall`` convert the files several per start)."""
        self._percall.expect(sources)
        office = [Path(s) for s in sources if Path(s).suffix.lower() in FORMATS]
        if self._unavailable is None and office:
            with self._lock:
                self._queue.update((str(p.resolve()), p) for p in office)
                try:
                    self._office()
                except Unavailable as exc:
                    self._off(str(exc))
                except DocvisionError:  # no LibreOffice: each office file says so when its turn comes
                    pass

    def convert(self, path: Path, options: IngestOptions, source: str) -> tuple[Path, Path]:
        """The file as a PDF in a new temporary folder: (folder, pdf)."""
        if self._unavailable is None:
            with self._lock:
                try:
                    if self._office() is not None:
                        return self._convert_warm(path, options, source)
                except Unavailable as exc:
                    self._retire()
                    self._off(str(exc) or "no Python script provider")
                except _CrashedTwice:
                    # A plain LibreOffice run converted files (fuzzed .doc) on which the warm one died twice:
                    # it has the last word before the file is called damaged.
                    self._notice = CRASHED_TWICE
        return self._percall.convert(path, options, source)

    def take_notice(self) -> str | None:
        """The warning that the warm path is off, once per run (the first document carries it)."""
        notice, self._notice = self._notice, None
        return notice

    def _office(self) -> WarmOffice | None:
        """The warm LibreOffice, started if need be (not waited for); None when it cannot be had."""
        if self._warm is None and self._unavailable is None:
            soffice = libreoffice.find_soffice()
            python = python_for_uno(soffice)
            if python is None:
                self._off("no Python with LibreOffice's uno was found")
                return None
            warm = WarmOffice(self._processes, python, soffice, officeprofile.create(self._root, True, self._processes),
                              self.options.timeout)
            warm.start()
            self._warm = warm
        return self._warm

    def _off(self, why: str) -> None:
        self._unavailable = why
        self._notice = NO_UNO.format(why=why)

    def _retire(self) -> None:
        """Stop the warm LibreOffice; the next file starts another."""
        warm, self._warm = self._warm, None
        if warm is not None:
            self._idle_workers += int(not warm.launched)
            warm.stop()

    def _convert_warm(self, path: Path, options: IngestOptions, source: str) -> tuple[Path, Path]:
        job = self._claim(path, options)
        try:
            answer = self._answer(job, options, source)
            _check(answer, path.suffix.lower(), source)
            if not job.pdf.is_file() or job.pdf.stat().st_size == 0:
                raise DamagedSource(f"LibreOffice could not convert the {officefile.describe(path.suffix.lower())}",
                                    source=source)
            (job.folder / LAYOUT).write_text(json.dumps(answer), encoding="utf-8")
            shutil.rmtree(job.folder / "in")
        except BaseException:
            shutil.rmtree(job.folder, ignore_errors=True)
            raise
        finally:
            self._read_ahead(options)
        return job.folder, job.pdf

    def _claim(self, path: Path, options: IngestOptions) -> "_Job":
        """The job read ahead for this file, or a new one (an ahead job for another file is dropped)."""
        self._queue.pop(str(path.resolve()), None)
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            if ahead.key == _key(path) and ahead.options == options:
                return ahead
            self._drop(ahead)
        return _Job.staged(path, options)

    def _answer(self, job: "_Job", options: IngestOptions, source: str) -> dict:
        """The macro's answer for ``job``: waited for if it was sent ahead, else asked for now."""
        if job.sent is not None:
            try:
                return self._warm.receive(job.sent + options.timeout, options.timeout, source)
            except Crashed:
                self._retire()  # asked again below, on a new LibreOffice
            except (ExternalTimeout, ToolMissing):
                self._retire()
                raise
        return self._call(job.request, options, source)

    def _read_ahead(self, options: IngestOptions) -> None:
        """Hand LibreOffice the next announced file now, so it converts while the run draws this one
        (and, in a real run, while the model reads it); its answer waits in the pipe."""
        while self._queue and self._ahead is None and self._warm is not None and not self._processes.closed:
            path = self._queue.pop(next(iter(self._queue)))
            if not _checks(path):
                continue  # load() reports it when the file's turn comes
            job = _Job.staged(path, options)
            try:
                job.sent = self._warm.send(job.request)
            except Crashed:
                shutil.rmtree(job.folder, ignore_errors=True)
                self._retire()
                return
            self._ahead = job

    def _drop(self, job: "_Job") -> None:
        """Read and drop the answer for a file the run did not ask for after all (it was in the cache)."""
        try:
            if job.sent is not None and self._warm is not None:
                self._warm.receive(job.sent + job.options.timeout, job.options.timeout)
        except (Crashed, ExternalTimeout, ToolMissing):
            self._retire()
        finally:
            shutil.rmtree(job.folder, ignore_errors=True)

    def _call(self, request: dict, options: IngestOptions, source: str) -> dict:
        """The macro's answer; a LibreOffice that died is started again and asked once more."""
        for attempt in (1, 2):
            try:
                return self._office().call(request, options.timeout, source)
            except (ExternalTimeout, ToolMissing):
                self._retire()
                raise
            except Crashed as exc:
                self._retire()
                if self._processes.closed:
                    raise ExternalTimeout("LibreOffice was stopped: the run is ending", source=source) from None
                if attempt == 2:
                    raise _CrashedTwice(str(exc)) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Stop every LibreOffice (and worker) this converter started and remove its files; safe to call
        from any thread, during a conversion, and twice. An idle warm LibreOffice is asked to end (up to
        QUIT_SECONDS) so that it cleans up after itself; anything still running is then killed."""
        warm = self._warm
        if warm is not None and self._lock.acquire(blocking=False):  # not from inside a conversion
            try:
                warm.quit(QUIT_SECONDS)  # only when no file is being read ahead
            finally:
                self._lock.release()
        self._processes.kill_all()
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            shutil.rmtree(ahead.folder, ignore_errors=True)
        self._percall.close()
        shutil.rmtree(self._root, ignore_errors=True)


class _CrashedTwice(Exception):
    """The warm LibreOffice died twice on one file (its next step is a plain LibreOffice run)."""


@dataclass
class _Job:
    """One file on its way through the warm LibreOffice: its own copy, the PDF to come, the request."""

    key: tuple
    options: IngestOptions
    folder: Path
    pdf: Path
    request: dict
    sent: float | None = None  # when the request was handed to LibreOffice ahead of its turn

    @classmethod
    def staged(cls, path: Path, options: IngestOptions) -> "_Job":
        folder = Path(tempfile.mkdtemp(prefix="docvision-office-"))
        try:
            # Under its own name: LibreOffice names a CSV file's one sheet after it.
            (folder / "in").mkdir()
            name = path.stem + officefile.actual(path, path.suffix.lower())  # read as the format its bytes are
            staged = Path(shutil.copyfile(path, folder / "in" / name))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return cls(_key(path), options, folder, folder / "out.pdf", _request(staged, folder / "out.pdf", options))


def _key(path: Path) -> tuple:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _checks(path: Path) -> bool:
    """Whether the file passes the byte checks load() runs first (never hand LibreOffice a zip bomb)."""
    try:
        officefile.check(path, path.suffix.lower(), str(path))
        return True
    except Exception:
        return False


def _request(staged: Path, pdf: Path, options: IngestOptions) -> dict:
    found = FORMATS[staged.suffix.lower()]
    segment = options.segment_height * 72.0 / options.render_dpi  # points
    return {"input": staged.as_uri(), "output": pdf.as_uri(), "kind": found.kind, "filters": list(found.filters),
            "filter_options": csv_options(staged), "max_rows": MAX_ROWS, "max_columns": MAX_COLUMNS,
            "page_points": [segment, segment]}


def _check(answer: dict, ext: str, source: str) -> None:
    """Turn the macro's error answers into one-line errors."""
    error, name = answer.get("error"), officefile.describe(ext)
    if error is None:
        return
    if error == "empty":
        raise EmptySource("the workbook has no visible sheet with content", source=source)
    if error == "kind":
        raise DamagedSource(f"not a valid {name}: LibreOffice reads it as another kind of document", source=source)
    if error == "load":
        raise DamagedSource(f"LibreOffice could not open the {name}; the file may be damaged or password-protected",
                            source=source)
    raise DamagedSource(f"LibreOffice could not convert the {name}; the file may be damaged", source=source)
