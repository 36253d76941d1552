"""From a Document to what a backend is shown: chunks of PageViews, with the evidence they carry.

In: an open Document, the routing decision (or "every page, in order"), the HD-N budget and the
backend (its tile size and visual-token count). Out: Chunks -- the pages of one model call, drawn at
full planned resolution, each page with its label, number, relevance score and the canvas boxes of the
words that matched the question.

Pages are walked twice at most: a survey pass reads only the text anchors (no pixels; page renderers
are dropped so a 500-page PDF's pages are not all held), then one pass draws only the chosen pages.
Chunks are produced as soon as their pages are drawn, so memory holds one call's pages, not a document's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Sequence

import docvision.views as views
import docvision.tasks.routing as routing
from docvision.models.base import PageView
from docvision.document import Document, Page
from docvision.errors import EmptySource
from docvision.tiling import Plan, plan

if TYPE_CHECKING:
    from docvision.models.base import Backend


@dataclass
class Chunk:
    """The pages of one model call. ``rank`` 0 is the most relevant call."""

    views: list[PageView]
    evidence: list[dict]
    rank: int = 0
    total: int = 1
    extra: dict = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return [view.label for view in self.views]


def _no_render(width: int, height: int):
    raise RuntimeError("survey pages carry no renderer")


def survey(document: Document) -> list[Page]:
    """Every page's label, size and words, without renderers (a cheap pass: nothing is drawn)."""
    pages = [dataclasses.replace(page, render=_no_render) for page in document.pages()]
    if not pages:
        raise EmptySource("no page could be read", source=document.source)
    return pages


def plan_for(page: Page, hd: int, backend: "Backend") -> Plan:
    """The page's HD-N plan at the backend's tile size."""
    return plan(page.size, hd, backend.tile, page.max_scale)


def token_cost(hd: int, backend: "Backend"):
    """Visual tokens one page costs on this backend at HD-``hd`` (for the routing budget)."""
    return lambda page: backend.visual_tokens(plan_for(page, hd, backend))


def evidence_entry(page: Page, page_plan: Plan, terms: Sequence[str] = (), score: float | None = None,
                   field: str | None = None) -> dict:
    """What a record says about one page shown (docs/records.md): its number and label, the field it
    gave (extract), its relevance score, and the words that matched with their boxes in canvas pixels
    (and their cells, on a sheet)."""
    matches = routing.matching_words(page, terms) if terms else []
    return evidence_of_words(page.number, page.label, page_plan, matches, score=score, field=field)


def evidence_of_words(number: int, label: str, page_plan: Plan, words: Sequence, score: float | None = None,
          field: str | None = None) -> dict:
    """One evidence entry from Words (boxes in the page's source pixels)."""
    refs = [getattr(w, "ref", None) for w in words]
    return {
        "page": number, "label": label, "field": field,
        "score": round(score, 4) if score is not None else None,
        "boxes": [[round(v, 1) for v in page_plan.to_canvas(w.box)] for w in words],
        "words": [w.text for w in words],
        "cells": refs if any(refs) else None,
        "region": None,  # --ground: where the model says it read the answer (tasks/grounding.py)
        "pictures": None,  # --evidence-out: the files showing this evidence (docvision/evidence.py)
    }


def draw(page: Page, hd: int, backend: "Backend") -> tuple[PageView, Plan]:
    """The page on its HD-N canvas at the backend's tile size."""
    page_plan = plan_for(page, hd, backend)
    return PageView(page.label, views.canvas(page, page_plan), page_plan), page_plan


def routed_chunks(document: Document, route: routing.Route, hd: int, backend: "Backend") -> Iterator[Chunk]:
    """Draw the routed pages in one pass over the document; yield each call's chunk once it is complete."""
    where = {page.number: rank for rank, chunk in enumerate(route.chunks) for page in chunk}
    pending: dict[int, dict[int, tuple]] = {rank: {} for rank in range(len(route.chunks))}
    facts: dict[str, list[str]] = {}
    last = max(where, default=0)
    for page in document.pages():
        rank = where.get(page.number)
        if rank is not None:
            view, page_plan = draw(page, hd, backend)
            entry = evidence_entry(page, page_plan, route.terms, route.scores.get(page.number))
            pending[rank][page.number] = (view, entry, list(page.words))
            facts[view.label] = list(page.facts)
            if len(pending[rank]) == len(route.chunks[rank]):
                done = pending.pop(rank)
                ordered = [done[n] for n in sorted(done)]
                chunk = Chunk([v for v, _, _ in ordered], [e for _, e, _ in ordered], rank, len(route.chunks))
                chunk.extra["words"] = {v.label: words for v, _, words in ordered}  # for --ground
                chunk.extra["facts"] = [f"{v.label}: {fact}" for v, _, _ in ordered for fact in facts[v.label]]
                yield chunk
        if page.number >= last:
            break
    if pending:  # a page vanished between passes (it failed to load the second time)
        missing = sorted(page.label for rank in pending for page in route.chunks[rank])
        raise EmptySource(f"could not draw {', '.join(missing[:3])}", source=document.source)


def sequential_chunks(document: Document, hd: int, backend: "Backend", budget: routing.Budget) -> Iterator[Chunk]:
    """Every page in order, packed into consecutive calls within the budget (for summaries)."""
    cost = token_cost(hd, backend)
    current: list[tuple[PageView, dict]] = []
    spent = rank = 0
    for page in document.pages():
        price = cost(page)
        if current and (len(current) >= budget.pages or (budget.tokens and spent + price > budget.tokens)):
            yield Chunk([v for v, _ in current], [e for _, e in current], rank, 0)
            current, spent, rank = [], 0, rank + 1
        view, page_plan = draw(page, hd, backend)
        current.append((view, evidence_entry(page, page_plan)))
        spent += price
    if not current and rank == 0:
        raise EmptySource("no page could be read", source=document.source)
    if current:
        yield Chunk([v for v, _ in current], [e for _, e in current], rank, 0)
