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
from docvision.errors import BackendError, EmptySource
import docvision.models.fit as fit
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


@dataclass(frozen=True)
class Cost:
    """What a page costs one call on ``backend`` at HD-``hd`` -- its visual tokens and its label -- and
    ``limit``, what one call may spend on pages within the backend's context (None: no known limit).

    A page that alone costs more than the limit is an error naming the page, its tokens, the limit and the
    HD-N that would fit: no grouping can send it."""

    hd: int
    backend: "Backend"
    answer_tokens: int = 512

    @property
    def limit(self) -> int | None:
        return fit.pages_room(getattr(self.backend, "context_tokens", None), self.answer_tokens)

    def __call__(self, page: Page) -> int:
        price = self.backend.visual_tokens(plan_for(page, self.hd, self.backend)) + fit.PAGE_TEXT_TOKENS
        limit = self.limit
        if limit is not None and price > limit:
            raise self.too_large(page, price, limit)
        return price

    def too_large(self, page: Page, price: int, limit: int) -> BackendError:
        family = getattr(self.backend, "family", None)
        smaller = fit.fitting_hd(page.size, self.hd, self.backend.tile, family, limit) if family else None
        fix = f"use --hd {smaller} or lower" if smaller else "no --hd fits"
        context = self.backend.context_tokens
        return BackendError(
            f"{page.label} needs {price - fit.PAGE_TEXT_TOKENS:,} visual tokens at HD-{self.hd}, more than one call "
            f"can hold: the model's {context:,}-token context less {self.answer_tokens:,} for the answer and "
            f"{fit.PROMPT_TOKENS} for the prompt leaves {limit - fit.PAGE_TEXT_TOKENS:,}; {fix}, or serve the "
            "model with a longer context (vLLM --max-model-len)")


def token_cost(hd: int, backend: "Backend", answer_tokens: int = 512) -> Cost:
    """What one page costs a call on this backend at HD-``hd`` (for routing), within its context."""
    return Cost(hd, backend, answer_tokens)


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


def sequential_chunks(document: Document, hd: int, backend: "Backend", budget: routing.Budget,
                      answer_tokens: int = 512) -> Iterator[Chunk]:
    """Every page in order, packed into consecutive calls within the budget (for summaries)."""
    cost = token_cost(hd, backend, answer_tokens)
    limit = routing.tokens_limit(budget, cost)
    current: list[tuple[PageView, dict]] = []
    spent = rank = 0
    for page in document.pages():
        price = cost(page)
        if routing.is_full(len(current), spent, price, budget, limit):
            yield Chunk([v for v, _ in current], [e for _, e in current], rank, 0)
            current, spent, rank = [], 0, rank + 1
        view, page_plan = draw(page, hd, backend)
        current.append((view, evidence_entry(page, page_plan)))
        spent += price
    if not current and rank == 0:
        raise EmptySource("no page could be read", source=document.source)
    if current:
        yield Chunk([v for v, _ in current], [e for _, e in current], rank, 0)
