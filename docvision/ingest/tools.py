"""The external programs a run shares: Chromium, LibreOffice, PDF workers; started on first use, closed by the run.

In: the run's IngestOptions. Out: ``browser()`` (a running Chromium, see ``ingest.web.browser``),
``converter()`` (office files to PDF, see ``ingest.office.convert``) and ``pdf_workers()`` (processes
that read and draw PDF pages, see ``ingest.pdfpool``), each started only when a source needs it and
restarted when it died. ``expect(sources)`` announces a batch, so LibreOffice starts while
the run opens its first source (or, without UNO, converts several files per start) and web pages are
captured ahead of their turn. ``close()`` stops both; the run calls it in a ``finally`` (and may from a
signal handler: every part is safe from any thread), so nothing is left running whatever happened (no
atexit hooks, no module-level singletons).

A Tools object belongs to one thread at a time: the run's render thread opens every document. The
browser drives Chromium from a thread of its own and may be handed work from any thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docvision.document import IngestOptions
    from docvision.ingest.office.convert import Converter
    from docvision.ingest.pdfpool import Pool
    from docvision.ingest.web.browser import Browser


class Tools:
    """Chromium and LibreOffice for one run; use as a context manager or call ``close()``."""

    def __init__(self, options: "IngestOptions") -> None:
        self.options = options
        self._browser: "Browser | None" = None
        self._converter: "Converter | None" = None
        self._pdf: "Pool | None" = None
        self._expected: list[str] = []
        self._expected_web: list[str] = []
        self.folders: dict[str, str] = {}  # source -> the folder whose walk found it (a local page's site)
        self.closed = False

    def browser(self) -> "Browser":
        """The run's Chromium, started now if need be (or again, if it died)."""
        from docvision.ingest.web.browser import Browser

        if self._browser is not None and not self._browser.alive:
            self._browser.close()
            self._browser = None
        if self._browser is None:
            self._browser = Browser(self.options.browser, self.options.timeout)
            self._browser.folders = self.folders
            self._browser.expect(self._expected_web)
        return self._browser

    def converter(self) -> "Converter":
        """The run's office converter (LibreOffice is started by its first conversion, or by ``expect``)."""
        from docvision.errors import ExternalTimeout
        from docvision.ingest.office.convert import Converter

        if self.closed:  # a late call must not start a LibreOffice that nothing would stop
            raise ExternalTimeout("LibreOffice was stopped: the run is ending")
        if self._converter is None:
            self._converter = Converter(self.options)
            if self._expected:
                self._converter.expect(self._expected)
        return self._converter

    def pdf_workers(self) -> "Pool | None":
        """The run's PDF worker processes (pages read and drawn under a deadline and a memory limit), or
        None once the run is ending (a document then starts a worker of its own, stopped when it closes)."""
        from docvision.ingest.pdfpool import Pool

        if self.closed:
            return None
        if self._pdf is None:
            self._pdf = Pool()
        return self._pdf

    def expect(self, sources: list[str], folders: dict[str, str] | None = None) -> None:
        """Announce a batch's sources, in the order they will be opened: office files are then converted
        several per LibreOffice start, web pages captured ahead of their turn. ``folders`` gives, for
        sources found by walking a folder, that folder (``sources.Entry.folder``: a local page's site)."""
        from docvision.ingest.checks import EXTENSIONS, is_url
        from docvision.ingest.remote import is_object
        from docvision.ingest.web.ahead import is_web

        sources = [s for s in sources if not is_object(s)]  # copied when opened, never announced ahead
        self.folders.update(folders or {})
        pdf = self.pdf_workers()
        kinds = {EXTENSIONS.get(Path(s).suffix.lower()) for s in sources if not is_url(s)}
        if pdf is not None and "pdf" in kinds:
            pdf.warm()  # its start (~0.3 s) overlaps the model's loading
        web = [s for s in sources if is_web(s)]
        self._expected_web.extend(web)
        if self._browser is not None and web:
            self._browser.expect(web)
        office = [s for s in sources if not is_url(s) and EXTENSIONS.get(Path(s).suffix.lower()) == "office"]
        if not office:
            return
        self._expected.extend(office)
        if self._converter is not None:
            self._converter.expect(office)

    def close(self) -> None:
        """Stop what was started; safe to call twice."""
        self.closed = True
        browser, converter, pdf = self._browser, self._converter, self._pdf
        self._browser = self._converter = self._pdf = None
        if pdf is not None:
            pdf.close()  # kills: it cannot fail, and it wakes a render waiting on a worker
        try:
            if converter is not None:
                converter.close()
        finally:
            if browser is not None:
                browser.close()

    def __enter__(self) -> "Tools":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
