"""``ask``: one question about an image or the chosen pages of a document, answered by a local model.

In: a source, a question, the ingest options, HD-N and a backend (or the means to load one). Out: the
record body -- answer, evidence (page labels), model, resolution (HD-N, tile, tiles, visual tokens)
and timings (load, render, prefill, generate). Pages are planned at the model family's tile size and
drawn with ``docvision.views.canvas``; the prompt is built by a pure function.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Sequence

from docvision import ingest, views
from docvision.backends.base import PageView
from docvision.errors import EmptySource
from docvision.tiling import plan

if TYPE_CHECKING:
    from docvision.backends.base import Backend, Generation
    from docvision.document import Document, IngestOptions, Page

INSTRUCTION = ("Answer the question using only what the {what} show{s}. Be brief and exact: copy numbers and "
               "names as written. If the answer is not shown, say that it is not shown.")


def build_prompt(question: str, labels: Sequence[str] = ()) -> str:
    """The text the model reads after the page images: an instruction, then the question."""
    if len(labels) > 1:
        what, s = f"pages ({', '.join(labels)})", ""
    else:
        what, s = "page", "s"
    return f"{INSTRUCTION.format(what=what, s=s)}\nQuestion: {' '.join(question.split())}"


def choose_pages(document: "Document", pages_given: bool) -> tuple[list["Page"], list[str]]:
    """The pages to show: all those --pages selected, else the first page (with a warning if more)."""
    chosen: list[Page] = []
    for page in document.pages():
        chosen.append(page)
        if not pages_given:
            break
    if not chosen:
        raise EmptySource("no page could be read", source=document.source)
    warnings = []
    if not pages_given and document.page_count > 1:
        warnings.append(f"the source has {document.page_count} pages; answering from {chosen[0].label} only "
                        f"(choose pages with --pages)")
    return chosen, warnings


def draw_views(pages: Sequence["Page"], hd: int, tile: int) -> list[PageView]:
    """Each page planned at HD-``hd`` with ``tile``-pixel tiles and drawn on its canvas."""
    out = []
    for page in pages:
        page_plan = plan(page.size, hd, tile)
        out.append(PageView(page.label, views.canvas(page, page_plan), page_plan))
    return out


def record_body(question: str, pages: Sequence["Page"], page_views: Sequence[PageView], generation: "Generation",
                backend: "Backend", hd: int, timings: dict, warnings: list[str]) -> dict:
    """The ask record's body (records.ok adds schema, source, task and status).

    ``resolution.tokens`` is what the family adapter predicts from the plans (what ``render --model``
    reports); ``resolution.visual_tokens`` is what the processor actually put in the prompt.
    """
    info = backend.info()
    return {
        "question": question,
        "answer": generation.text,
        "evidence": [{"label": page.label, "number": page.number} for page in pages],
        "model": {key: info.get(key) for key in ("id", "backend", "device", "quant", "dtype")},
        "resolution": {
            "hd": hd,
            "tile": backend.tile,
            "pages": len(page_views),
            "tiles": sum(v.plan.tile_count for v in page_views),
            "grid": [list(v.plan.grid) for v in page_views],
            "canvas": [list(v.plan.canvas_size) for v in page_views],
            "tokens": sum(backend.visual_tokens(v.plan) for v in page_views),
            "visual_tokens": generation.visual_tokens,
            "calls": 1,
        },
        "tokens": {"prompt": generation.prompt_tokens, "visual": generation.visual_tokens,
                   "new": generation.new_tokens},
        "timings": {**timings, **generation.timings},
        "warnings": warnings,
    }


def ask(
    source: str,
    question: str,
    backend_loader: Callable[[], "Backend"],
    tile: int,
    options: "IngestOptions",
    hd: int = 25,
    max_new_tokens: int = 512,
    on_text: Callable[[str], None] | None = None,
) -> dict:
    """Answer ``question`` about ``source``; the backend is loaded (once, by the loader) after rendering."""
    started = time.perf_counter()
    with ingest.load(source, options) as document:
        pages, warnings = choose_pages(document, pages_given=bool(options.pages))
        page_views = draw_views(pages, hd, tile)
        warnings = list(document.warnings) + warnings
    render_s = time.perf_counter() - started
    loaded = time.perf_counter()
    backend = backend_loader()
    load_s = time.perf_counter() - loaded  # ~0 when an earlier source already loaded the model
    generation = backend.generate(page_views, build_prompt(question, [v.label for v in page_views]),
                                  max_new_tokens=max_new_tokens, on_text=on_text)
    timings = {"load_s": round(load_s, 3), "render_s": round(render_s, 3)}
    return record_body(question, pages, page_views, generation, backend, hd, timings, warnings)
