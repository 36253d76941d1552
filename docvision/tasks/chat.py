"""``chat``: a conversation about open documents -- each question routed to its pages, answered with the
conversation so far.

In: open Documents (surveyed once), a loaded backend, and questions one at a time. Out: per answer a
record body (question, answer, evidence, routing and the shared tail). The pages of every document are
pooled and ranked together (BM25, as ``ask`` does); the page images come first in the prompt, then the
conversation so far, then the question, so the model's reused encoding of the pages (and a server's
prefix cache) covers everything but the new question. Printing and the terminal are the CLI's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from docvision.document import Page, parse_page_range
from docvision.errors import EmptySource, UsageError
import docvision.tasks.routing as routing
from docvision.tasks.base import tail
from docvision.tasks.multipage import answer, evidence
from docvision.tasks.pages import Chunk, draw, evidence_entry, survey, token_cost

if TYPE_CHECKING:
    from docvision.document import Document
    from docvision.models.base import Backend

HISTORY_TURNS = 6  # earlier questions and answers shown to the model: enough for follow-ups, bounded


@dataclass
class Turn:
    question: str
    answer: str


@dataclass
class Conversation:
    """Questions about ``documents``, one after another; ``ask`` returns each answer's record body."""

    documents: list["Document"]
    backend: "Backend"
    hd: int = 25
    budget: routing.Budget = field(default_factory=routing.Budget)
    max_new_tokens: int = 512
    system: str | None = None
    history: list[Turn] = field(default_factory=list)
    pages: str | None = None  # /pages: the page range every document is held to

    def __post_init__(self) -> None:
        self._surveyed = [survey(document) for document in self.documents]

    def set_pages(self, spec: str | None) -> None:
        """Hold the conversation to these pages of each document (None: all); UsageError when none is left."""
        for document, pages in zip(self.documents, self._surveyed):
            try:
                parse_page_range(spec, max(p.number for p in pages), document.source)
            except Exception as exc:  # noqa: BLE001 - said as a usage line, the session goes on
                raise UsageError(f"/pages {spec}: {getattr(exc, 'message', exc)}") from None
        self.pages = spec or None

    def set_hd(self, hd: int) -> None:
        if not 1 <= hd <= 400:
            raise UsageError(f"/hd {hd}: HD-N must be between 1 and 400")
        self.hd = hd

    def reset(self) -> None:
        """Forget the conversation (the documents stay open)."""
        self.history.clear()

    def ask(self, question: str, on_text: Callable[[str], None] | None = None) -> dict:
        """Route ``question`` over the documents' pages, answer it with the conversation so far."""
        question = " ".join(question.split())
        pool, origin = self._pool()
        cost = token_cost(self.hd, self.backend, self.max_new_tokens)
        previous = self.history[-1].question if self.history else ""
        # A follow-up ("and in Q3?") names little: its predecessor's words help find the pages.
        route = routing.route(f"{question} {previous}", pool, self.budget, cost)
        route.terms = routing.query_terms(question) or route.terms
        chunks = self._draw(route, origin)
        text, seen, used, usage = answer(question, iter(chunks), self.backend, self.max_new_tokens, on_text,
                                         system=self.system, context=self._context())
        self.history.append(Turn(question, text))
        return {
            "question": question, "answer": text, "evidence": evidence(used or seen),
            "routing": {"method": "bm25", "reason": route.reason, "terms": route.terms},
            **tail(seen, self.hd, self.backend, usage),
        }

    def _context(self) -> str:
        return "\n".join(f"Q: {t.question}\nA: {t.answer}" for t in self.history[-HISTORY_TURNS:])

    def _pool(self) -> tuple[list[Page], dict[int, tuple[int, Page]]]:
        """Every document's pages under one numbering (labels name the file when there are several)."""
        pool, origin = [], {}
        several = len(self.documents) > 1
        for index, (document, pages) in enumerate(zip(self.documents, self._surveyed)):
            chosen = set(parse_page_range(self.pages, max(p.number for p in pages))) if self.pages else None
            name = document.source.rstrip("/").rsplit("/", 1)[-1]
            for page in pages:
                if chosen is not None and page.number - 1 not in chosen:
                    continue
                number = len(pool) + 1
                label = f"{name}: {page.label}" if several else page.label
                pool.append(dataclasses.replace(page, number=number, label=label))
                origin[number] = (index, page)
        if not pool:
            raise EmptySource("no page is left to read (see /pages)")
        return pool, origin

    def _draw(self, route: routing.Route, origin: dict[int, tuple[int, Page]]) -> list[Chunk]:
        """The routed pages drawn, one pass over each document, grouped into the route's calls."""
        wanted: dict[int, dict[int, int]] = {}  # document index -> its page number -> pool number
        for page in route.pages:
            index, original = origin[page.number]
            wanted.setdefault(index, {})[original.number] = page.number
        drawn: dict[int, tuple] = {}
        for index, numbers in wanted.items():
            last = max(numbers)
            for page in self.documents[index].pages():
                if page.number > last:
                    break
                if page.number in numbers:
                    pool_number = numbers[page.number]
                    view, page_plan = draw(page, self.hd, self.backend)
                    view.label = next(p.label for p in route.pages if p.number == pool_number)
                    entry = evidence_entry(page, page_plan, route.terms, route.scores.get(pool_number))
                    entry["label"] = view.label
                    drawn[pool_number] = (view, entry)
        missing = [p.label for p in route.pages if p.number not in drawn]
        if missing:
            raise EmptySource(f"could not draw {', '.join(missing[:3])}")
        return [Chunk([drawn[p.number][0] for p in pages], [drawn[p.number][1] for p in pages], rank,
                      len(route.chunks)) for rank, pages in enumerate(route.chunks)]
