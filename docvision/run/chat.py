"""The resources of a chat: its documents opened once, the run's tools and the model, all closed at the end.

In: the sources, ingest options, backend settings and how the session asks (HD-N, budget, system text).
Out: a context manager yielding a ``tasks.chat.Session`` over the documents that opened, and the
sources that failed (each with its error), so the CLI can say why. Documents are opened through the
render cache, as every command's are.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

from docvision.document import IngestOptions
from docvision.errors import DocvisionError, UsageError
from docvision.sources import expand


@contextmanager
def session(sources: list[str], ingest: IngestOptions, backend_settings: Any, *, recursive: bool = False,
            cache: bool = True, say: Callable[[str], None], **asking) -> Iterator[tuple[Any, list]]:
    """(Session, [(source, error)]) for the time of the ``with`` block."""
    from docvision.cache import RenderCache
    from docvision.ingest import load
    from docvision.ingest.ocr import with_ocr
    from docvision.ingest.tools import Tools
    from docvision.models import load_backend
    from docvision.tasks.chat import Session

    entries = expand(sources, recursive=recursive, say=say)
    if not entries:
        raise UsageError("no sources given")
    tools = Tools(ingest)
    documents, failed, backend = [], [], None
    try:
        tools.expect([e.source for e in entries if e.error is None],
                     {e.source: e.folder for e in entries if e.folder})
        store = RenderCache(pixels=True, say=say) if cache else None
        for entry in entries:
            try:
                if entry.error is not None:
                    raise entry.error
                documents.append(store.open(entry.source, ingest, tools) if store is not None
                                 else with_ocr(load(entry.source, ingest, tools), ingest.ocr, ingest.lang))
            except DocvisionError as exc:
                failed.append((entry.source, exc))
        if not documents:
            yield None, failed
            return
        backend = load_backend(backend_settings)
        yield Session(documents, backend, **asking), failed
    finally:
        for document in documents:
            document.close()
        tools.close()
        if backend is not None:
            backend.close()
