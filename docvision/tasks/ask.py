"""``ask``: a question about each source, over as many pages as it has.

In: a question, an open Document (producer side: survey the text anchors, route, draw the chosen pages)
and a backend. Out: the record body -- answer, evidence (the pages used, their BM25 scores and the canvas
boxes of the words that matched), routing, and the shared tail (model, resolution, usage, timings). The
single-call prompt is ``multipage.build_prompt``; when the evidence spans more pages than one call
takes, ``docvision.tasks.multipage`` maps over chunks and combines the notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator

from docvision.tasks import routing
from docvision.tasks.base import tail
from docvision.tasks.multipage import answer, build_prompt, evidence
from docvision.tasks.pages import Chunk, routed_chunks, survey, token_cost

if TYPE_CHECKING:
    from docvision.document import Document
    from docvision.models.base import Backend
    from docvision.run.engine import Job

__all__ = ["AskTask", "build_prompt"]


@dataclass
class AskTask:
    """A question over each source: routed, answered, evidence named."""

    question: str
    hd: int = 25
    budget: routing.Budget = field(default_factory=routing.Budget)
    max_new_tokens: int = 512
    system: str | None = None  # replaces the model's system prompt
    raw: bool = False  # the question goes to the model verbatim
    on_text: Callable[[str], None] | None = None  # streams the final answer (a terminal)
    announce: Callable[[str], None] | None = None  # told each source before its answer streams
    show_selected: bool = False  # --pages given: show every selected page when they fit one call
    name: str = "ask"
    needs_model: bool = True

    def prepare(self, document: "Document", backend: "Backend") -> Iterator[Chunk]:
        """Producer side: survey the anchors, route, draw the chosen pages."""
        pages = survey(document)
        cost = token_cost(self.hd, backend)
        route = routing.route(self.question, pages, self.budget, cost)
        if self.show_selected and len(routing.chunked(pages, self.budget, cost)) == 1:
            route = routing.Route([pages], route.scores, route.terms, "selected")
        for chunk in routed_chunks(document, route, self.hd, backend):
            chunk.extra["routing"] = {"method": "bm25", "reason": route.reason, "terms": route.terms}
            yield chunk

    def finish(self, job: "Job", backend: "Backend") -> dict:
        """Model side: answer, then the record body."""
        if self.announce is not None:
            self.announce(job.source)
        text, seen, used, usage = answer(self.question, job.chunks(), backend, self.max_new_tokens,
                                         self.on_text, system=self.system, raw=self.raw)
        return {
            "question": self.question,
            "answer": text,
            "evidence": evidence(used or seen),
            "routing": seen[0].extra.get("routing") if seen else None,
            **tail(seen, self.hd, backend, usage),
        }
