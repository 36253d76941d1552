"""Web ingestor: an http(s) URL or a local .html file, captured in Chromium as a person sees it.

In: a URL or a path, and IngestOptions (timeout, viewport_width, device_scale_factor, segment_height,
browser, pages). Out: a Document of kind "web" whose Pages are the full page cut into segments of at
most ``segment_height`` device pixels ("segment i/n"), each with the visible words of the DOM as anchors.

A URL is first asked for its headers with httpx: HTTP errors, refused connections, unknown hosts and
silent servers fail fast with one line, and a URL that serves a PDF or an image is downloaded and
handed to that ingestor (``fetch``). Everything else is opened in the run's Chromium (``ingest.tools``)
in a fresh context, settled and captured by ``capture``.

Settling policy (decided here, relied on by the tests): the page must reach DOMContentLoaded within
``timeout`` or the source fails with ExternalTimeout. Everything after that (the load event, network
idle, web fonts, layout that stops growing) is waited for within a bounded settle budget; a page that
never settles (endless polling, ever-growing content) is captured as it is when the budget runs out,
with a warning, rather than failing: what a person would have seen is still there. So is a page whose
load event never fires (a hung image), after half the timeout. A page whose script never yields (the
browser cannot even be asked for its height) fails with ExternalTimeout after ``timeout``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from docvision.document import Document, IngestOptions
from docvision.errors import DamagedSource
from docvision.ingest.checks import check_file, is_url, sniff

if TYPE_CHECKING:
    from docvision.ingest.tools import Tools


def load(source: str, options: IngestOptions, tools: "Tools") -> Document:
    """Capture a web page (URL or local .html) as segments with word anchors, or route a PDF/image URL."""
    from docvision.ingest.web import capture as webcapture
    from docvision.ingest.web.fetch import probe

    if is_url(source):
        routed = probe(source, options, tools)
        if routed is not None:
            return routed
        url = source
    else:
        path = check_file(source)
        _check_html(path, source)
        url = path.resolve().as_uri()
    return webcapture.capture(url, source, options, tools)


def _check_html(path: Path, source: str) -> None:
    """Refuse a PDF, image or archive named .html; anything textual is left to the browser."""
    with open(path, "rb") as fh:
        found = sniff(fh.read(64))
    if found in ("pdf", "image", "zip"):
        what = {"pdf": "a PDF", "image": "an image", "zip": "a zip archive (office file?)"}[found]
        raise DamagedSource(f"not an HTML page: it is {what}; give it the right extension", source=source)


