"""Web ingestor: an http(s) URL or a local .html file, captured in Chromium as a person sees it.

In: a URL or a path, IngestOptions (timeout, viewport_width, device_scale_factor, segment_height,
browser, pages, offline, local_pages_online) and the run's Tools. Out: a Document of kind "web" whose
Pages are the full page cut into segments of at most ``segment_height`` device pixels ("segment i/n"),
each with the visible words of the DOM as anchors; or, for a URL serving a PDF or an image, that
ingestor's Document.

A URL is first asked for its headers (``fetch``): HTTP errors, refused connections, unknown hosts and
silent servers fail fast with one line, and a PDF or image is downloaded and handed to its ingestor.
Everything else is opened in the run's Chromium in a fresh context, settled and captured (``capture``),
under the rules of ``guard`` (what a page may load and reach). When the run announced its batch
(``Tools.expect``), the next pages are captured while this one is used (``ahead``); each comes out
exactly as it would alone. docs/web.md says how pages are settled and what each kind of source may reach.

Settling policy (decided here, relied on by the tests): the page must reach DOMContentLoaded within
``timeout`` or the source fails with ExternalTimeout. Everything after that (the load event, network
idle, web fonts, layout that stops growing) is waited for within a bounded settle budget; a page that
never settles (endless polling, ever-growing content) is captured as it is when the budget runs out,
with a warning, rather than failing: what a person would have seen is still there. So is a page whose
load event never fires (a hung image), after half the timeout. A page whose script never yields fails
with ExternalTimeout after ``timeout``. A page too long or too slow to draw is cut, with a warning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from docvision.document import Document, IngestOptions

if TYPE_CHECKING:
    from docvision.ingest.tools import Tools


def load(source: str, options: IngestOptions, tools: "Tools") -> Document:
    """Capture a web page (URL or local .html) as segments with word anchors, or route a PDF/image URL."""
    from docvision.ingest.web.ahead import target

    target(source, options)  # bad input fails here, before any browser starts
    return tools.browser().take(source, options).document(options, tools)
