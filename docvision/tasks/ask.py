"""``ask``: one or more questions about each source, over as many pages as it has.

In: a question, an open Document (producer side: survey the text anchors, route, draw the chosen pages)
and a backend. Out: the record body -- answer, evidence (the pages used, their BM25 scores and the canvas
boxes of the words that matched), routing, and the shared tail (model, resolution, usage, timings). The
single-call prompt is ``multipage.build_prompt``; when the evidence spans more pages than one call
takes, ``docvision.tasks.multipage`` maps over chunks and combines the notes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import docvision.tasks.grounding as grounding
import docvision.tasks.routing as routing
from docvision.tasks.base import tail
from docvision.tasks.multipage import answer, build_prompt, drop_pixels, evidence
from docvision.tasks.pages import Chunk, routed_chunks, survey, token_cost

if TYPE_CHECKING:
    from pathlib import Path

    from docvision.document import Document
    from docvision.models.base import Backend
    from docvision.run.engine import Job
    from docvision.tasks.render import ViewFolders

__all__ = ["AskTask", "build_prompt"]


@dataclass
class AskTask:
    """Questions over each source: routed, answered, evidence named; one record per source and question."""

    question: str | Sequence[str]  # one question, or several (each gets its own record)
    hd: int = 25
    budget: routing.Budget = field(default_factory=routing.Budget)
    max_new_tokens: int = 512
    system: str | None = None  # replaces the model's system prompt
    raw: bool = False  # the question goes to the model verbatim
    on_text: Callable[[str], None] | None = None  # streams the final answer (a terminal)
    announce: Callable[[str, str], None] | None = None  # told (source, question) before each answer streams
    show_selected: bool = False  # --pages given: show every selected page when they fit one call
    name: str = "ask"
    needs_model: bool = True
    only: dict[str, list[str]] = field(default_factory=dict)  # --resume: the questions a source still needs
    ground: bool = False  # --ground: ask for the region the answer was read from, where the family can
    evidence_out: "ViewFolders | None" = None  # --evidence-out: pictures of the evidence, per source

    def __post_init__(self) -> None:
        self.questions = [self.question] if isinstance(self.question, str) else list(self.question)

    def keys(self, source: str) -> list[dict]:
        """What tells this source's records apart: one per question."""
        return [{"question": q} for q in self.only.get(source, self.questions)]

    def restrict(self, source: str, keys: list[dict]) -> None:
        """Ask only these of the source's questions (the others are done: --resume)."""
        self.only[source] = [k["question"] for k in keys]

    def prepare(self, document: "Document", backend: "Backend") -> Iterator[Chunk]:
        """Producer side: survey the anchors once; per question route and draw the chosen pages."""
        pages = survey(document)
        cost = token_cost(self.hd, backend, self.max_new_tokens)
        for index, key in enumerate(self.keys(document.source)):
            route = routing.route(key["question"], pages, self.budget, cost)
            if self.show_selected and len(routing.chunked(pages, self.budget, cost)) == 1:
                route = routing.Route([pages], route.scores, route.terms, "selected")
            for chunk in routed_chunks(document, route, self.hd, backend):
                chunk.extra["routing"] = {"method": "bm25", "reason": route.reason, "terms": route.terms}
                chunk.extra["question"] = index
                yield chunk

    def finish(self, job: "Job", backend: "Backend") -> list[dict]:
        """Model side: each question answered in turn (its chunks come in order), one body each."""
        questions = [k["question"] for k in self.keys(job.source)]
        family = getattr(backend, "family", None)
        fmt = grounding.box_format(getattr(family, "model_type", "")) if self.ground else None
        folder = self.evidence_out.folder(job.source) if self.evidence_out is not None else None
        bodies = []
        for index, chunks in itertools.groupby(job.chunks(), key=lambda chunk: chunk.extra["question"]):
            question = questions[index]
            if self.announce is not None:
                self.announce(job.source, question)
            text, seen, used, usage = answer(question, chunks, backend, self.max_new_tokens, self.on_text,
                                             system=self.system, raw=self.raw, ground=fmt,
                                             keep_pixels=folder is not None)
            shown = used or seen
            place(shown, text)
            if folder is not None:
                pictures(shown, folder, f"q{index + 1}-" if len(questions) > 1 else "")
            for chunk in seen:
                drop_pixels(chunk)
            bodies.append({
                "question": question,
                "answer": text,
                "evidence": evidence(shown),
                "routing": seen[0].extra.get("routing") if seen else None,
                **tail(seen, self.hd, backend, usage),
                "warnings": usage.warnings + ([] if fmt or not self.ground else [NO_BOXES]),
            })
        return bodies


NO_BOXES = "--ground: this model gives no boxes; evidence names the words that matched"


def place(chunks: list[Chunk], answer_text: str) -> None:
    """Put each grounded region on its page's evidence entry, with whether its words carry the answer."""
    for chunk in chunks:
        by_label = {entry["label"]: entry for entry in chunk.evidence}
        for region in chunk.extra.get("regions", []):
            entry = by_label.get(region.page)
            if entry is not None and entry["region"] is None:
                entry["region"] = {**region.as_dict(), "agrees": grounding.agrees(answer_text, region.words)}


def pictures(chunks: list[Chunk], folder: Path, prefix: str) -> None:
    """Write a picture of each evidence page (its regions or matched words boxed) and a crop per region."""
    import docvision.evidence as drawing

    for chunk in chunks:
        for view, entry in zip(chunk.views, chunk.evidence):
            boxes = [entry["region"]["box"]] if entry["region"] else entry["boxes"]
            if view.image is not None:
                entry["pictures"] = drawing.write(view.image, view.plan, [tuple(b) for b in boxes], folder,
                                                  f"{prefix}page-{entry['page']:03d}")
