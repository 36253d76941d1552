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
from pathlib import Path

from docvision.document import IngestOptions
from docvision.errors import DamagedSource, DocvisionError, EmptySource, ExternalTimeout, ToolMissing
from docvision.ingest.office import files as officefile, percall, profile as officeprofile, soffice as libreoffice
from docvision.ingest.office.percall import CALC, IMPRESS, WRITER, csv_options
from docvision.ingest.office.warm import Crashed, Unavailable, WarmOffice, python_for_uno

LAYOUT = "layout.json"
IMPORT_FILTERS = {
    ".xlsx": "Calc MS Excel 2007 XML", ".xlsm": "Calc MS Excel 2007 VBA XML", ".xls": "MS Excel 97",
    ".ods": "calc8", ".csv": "Text - txt - csv (StarCalc)", ".docx": "MS Word 2007 XML", ".odt": "writer8",
    ".rtf": "Rich Text Format", ".pptx": "Impress MS PowerPoint 2007 XML", ".odp": "impress8",
}
# A sheet is drawn up to this many rows and columns from its first cell; past them a warning says
# what was left out. An .xlsx claiming XFD1048576 took 50 s and 8 GB before such a bound.
MAX_ROWS = 20_000
MAX_COLUMNS = 256
QUIT_SECONDS = 3.0  # measured ~0.3 s for LibreOffice to end when asked
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

    @property
    def starts(self) -> int:
        """LibreOffice processes started so far: warm ones and per-call runs."""
        return self._processes.started - self._idle_workers

    def expect(self, sources: list[str]) -> None:
        """Announce a batch: starts the warm LibreOffice now, so it is up when the first file needs it
        (or, without UNO, lets ``percall`` convert the files several per start)."""
        self._percall.expect(sources)
        if self._unavailable is None and any(Path(s).suffix.lower() in IMPORT_FILTERS for s in sources):
            with self._lock:
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
            warm = WarmOffice(self._processes, python, soffice, officeprofile.create(self._root, macro=True),
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
        folder = Path(tempfile.mkdtemp(prefix="docvision-office-"))
        try:
            # Under its own name: LibreOffice names a CSV file's one sheet after it.
            (folder / "in").mkdir()
            staged = Path(shutil.copyfile(path, folder / "in" / path.name))
            pdf = folder / "out.pdf"
            answer = self._call(_request(staged, pdf, options), options, source)
            _check(answer, path.suffix.lower(), source)
            if not pdf.is_file() or pdf.stat().st_size == 0:
                raise DamagedSource(f"LibreOffice could not convert the {officefile.describe(path.suffix.lower())}",
                                    source=source)
            (folder / LAYOUT).write_text(json.dumps(answer), encoding="utf-8")
            shutil.rmtree(folder / "in")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return folder, pdf

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
                    raise DamagedSource(f"LibreOffice stopped twice while converting this file ({exc}); the file "
                                        "may be damaged", source=source) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Stop every LibreOffice (and worker) this converter started and remove its files; safe to call
        from any thread, during a conversion, and twice. An idle warm LibreOffice is asked to end (up to
        QUIT_SECONDS) so that it cleans up after itself; anything still running is then killed."""
        warm = self._warm
        if warm is not None and self._lock.acquire(blocking=False):  # not from inside a conversion
            try:
                warm.quit(QUIT_SECONDS)
            finally:
                self._lock.release()
        self._processes.kill_all()
        self._percall.close()
        shutil.rmtree(self._root, ignore_errors=True)


def _request(staged: Path, pdf: Path, options: IngestOptions) -> dict:
    ext = staged.suffix.lower()
    kind = "calc" if ext in CALC else "writer" if ext in WRITER else "impress" if ext in IMPRESS else None
    segment = options.segment_height * 72.0 / options.render_dpi  # points
    return {"input": staged.as_uri(), "output": pdf.as_uri(), "kind": kind, "filter": IMPORT_FILTERS[ext],
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
    raise DamagedSource(f"LibreOffice could not convert the {name} ({answer.get('message', error)})", source=source)
