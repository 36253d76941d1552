"""Ingestors: one module per kind of source, each with ``load(source, options, tools) -> Document``.

``INGESTORS`` is the one place that maps kinds of source to ingestors (``checks.kind_of`` maps a
source to its kind); modules are imported only when a source of their kind shows up, so start-up
stays fast. The helpers every ingestor shares (what a file is, whether it can be read) are in
``ingest.checks`` and re-exported here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from docvision.document import Document, IngestOptions
from docvision.ingest.checks import EXTENSIONS, check_content, check_file, is_url, kind_of, sniff

if TYPE_CHECKING:
    from docvision.ingest.tools import Tools

INGESTORS = {
    "pdf": "docvision.ingest.pdf",
    "image": "docvision.ingest.image",
    "web": "docvision.ingest.web",
    "office": "docvision.ingest.office",
}

def load(source: str, options: IngestOptions | None = None, tools: "Tools | None" = None) -> Document:
    """Open any supported source as a Document, choosing the ingestor by scheme and extension.

    ``tools`` are the run's shared Chromium and LibreOffice (``ingest.tools``); without them the source
    gets tools of its own for the time of loading: no ingestor needs them once ``load`` has returned
    (web pages are captured and office files converted by then), and Playwright allows one browser
    driver per thread at a time.
    """
    from docvision.ingest.tools import Tools

    options = options or IngestOptions()
    kind = kind_of(source)
    module = importlib.import_module(INGESTORS[kind])
    if tools is not None:
        return module.load(source, options, tools)
    with Tools(options) as own:
        return module.load(source, options, own)


__all__ = ["EXTENSIONS", "INGESTORS", "check_content", "check_file", "is_url", "kind_of", "load", "sniff"]
