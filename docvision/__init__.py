"""docvision: ask questions about any document with a local vision-language model.

Sources (PDFs, images, web pages, spreadsheets, office files) become Documents of Pages; each page is
planned at the InternLM-XComposer2-4KHD dynamic resolution (``docvision.tiling``) and shown to a
vision-language model backend. The library (docs/api.md)::

    import docvision
    with docvision.Session(model="small") as session:
        for record in session.ask(["report.pdf"], "which region grew most?"):
            print(record["answer"])

Importing docvision is light: torch, transformers and playwright are imported when a Session first
needs them. Nothing is printed: warnings go to the ``docvision`` logger and into the records.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from docvision import errors
from docvision.errors import DocvisionError, UsageError
from docvision.version import SCHEMA_VERSION, __version__

if TYPE_CHECKING:
    from docvision.run.batch import Run
    from docvision.session import Session, ask, extract, render, summarize

# A library prints nothing unless its user asks for it (logging's last-resort handler would).
logging.getLogger("docvision").addHandler(logging.NullHandler())

_LAZY = {"Session", "Run", "ask", "summarize", "extract", "render"}


def __getattr__(name: str) -> Any:
    """The API's names, imported on first use (``import docvision`` stays instant)."""
    if name in _LAZY:
        import docvision.session as session

        return getattr(session, name)
    raise AttributeError(f"module 'docvision' has no attribute {name!r}")


__all__ = ["DocvisionError", "Run", "SCHEMA_VERSION", "Session", "UsageError", "__version__", "ask", "errors",
           "extract", "render", "summarize"]
