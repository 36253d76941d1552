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
    "text": "docvision.ingest.text",
    "mail": "docvision.ingest.mail",
}

def load(source: str, options: IngestOptions | None = None, tools: "Tools | None" = None) -> Document:
    """Open any supported source as a Document, choosing the ingestor by scheme and extension.

    ``tools`` are the run's shared Chromium and LibreOffice (``ingest.tools``); without them the source
    gets tools of its own for the time of loading: no ingestor needs them once ``load`` has returned
    (web pages are captured and office files converted by then), and Playwright allows one browser
    driver per thread at a time. ``mail.eml#invoice.pdf`` names an attachment of a message (``mail``).
    """
    from docvision.ingest.tools import Tools

    import docvision.ingest.remote as remote

    options = options or IngestOptions()
    if remote.is_object(source):  # s3:// and the like: a copy opened as a local file (docvision.ingest.remote)
        kind_of(source)  # an unsupported kind is refused before anything is copied
        return remote.load(source, options, tools, lambda local: load(local, options, tools))
    if tools is not None:
        return _load(source, options, tools)
    with Tools(options) as own:
        return _load(source, options, own)


def _load(source: str, options: IngestOptions, tools: "Tools") -> Document:
    if "#" in source:
        from docvision.ingest.attachments import split

        if split(source) is not None:  # mail.eml#invoice.pdf: an attachment, read as what it is
            from docvision.ingest.mail import load_attachment

            return load_attachment(source, options, tools, _load)
    module = importlib.import_module(INGESTORS[kind_of(source)])
    return module.load(source, options, tools)


__all__ = ["EXTENSIONS", "INGESTORS", "check_content", "check_file", "is_url", "kind_of", "load", "sniff"]
