"""``summarize``: one summary per source, built page by page for long documents, then combined.

In: an open Document (producer side: every page in order, packed into calls of ``--max-pages`` pages)
and a backend. Out: the record body -- the summary, for long documents the per-section summaries it
was combined from, the pages read, the resolution and what it cost.

A document that fits one call is summarized in one call. A longer one is summarized section by
section; the section summaries are then combined, text only, ``FAN_IN`` at a time (a tree, so a
500-page report never makes one prompt longer than a few sections).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Iterator

import docvision.tasks.routing as routing
from docvision.tasks.base import Usage, tail
from docvision.tasks.multipage import drop_pixels, evidence, pages_phrase, text_call
from docvision.tasks.pages import Chunk, sequential_chunks

if TYPE_CHECKING:
    from docvision.document import Document
    from docvision.models.base import Backend
    from docvision.run.engine import Job

FAN_IN = 8  # section summaries per combining call


def whole_prompt(labels: list[str]) -> str:
    return (f"The images show {pages_phrase(labels)}. Summarize the document in a few sentences: "
            "what it is, its main points, and any key numbers, names and dates.")


def section_prompt(labels: list[str]) -> str:
    return (f"The images show {pages_phrase(labels)}; it is one part of a longer document. Summarize "
            "this part in a few sentences, keeping key numbers, names and dates.")


def combine_prompt(sections: list[tuple[str, str]]) -> str:
    body = "\n\n".join(f"[{span}]\n{text.strip()}" for span, text in sections)
    return ("Summaries of consecutive parts of one document:\n\n" + body + "\n\nCombine them into one "
            "summary of the whole document in a few sentences, keeping the key numbers, names and dates.")


def span(labels: list[str]) -> str:
    """'page 1' or 'page 1 - page 4'."""
    return labels[0] if len(labels) == 1 else f"{labels[0]} - {labels[-1]}"


def with_last(items: Iterable) -> Iterator[tuple[object, bool]]:
    """Each item with a flag saying whether it is the last one (looks one item ahead)."""
    iterator = iter(items)
    try:
        current = next(iterator)
    except StopIteration:
        return
    for following in iterator:
        yield current, False
        current = following
    yield current, True


@dataclass
class SummarizeTask:
    hd: int = 16
    budget: routing.Budget = field(default_factory=lambda: routing.Budget(pages=4))
    max_new_tokens: int = 384
    system: str | None = None  # replaces the model's system prompt
    name: str = "summarize"
    needs_model: bool = True

    def prepare(self, document: "Document", backend: "Backend") -> Iterator[Chunk]:
        return sequential_chunks(document, self.hd, backend, self.budget, self.max_new_tokens)

    def finish(self, job: "Job", backend: "Backend") -> dict:
        usage = Usage()
        seen: list[Chunk] = []
        sections: list[tuple[str, str]] = []
        for chunk, last in with_last(job.chunks()):
            seen.append(chunk)
            alone = last and not sections
            prompt = whole_prompt(chunk.labels) if alone else section_prompt(chunk.labels)
            text = usage.add(backend.generate(chunk.views, prompt, max_new_tokens=self.max_new_tokens,
                                              system=self.system)).text
            sections.append((span(chunk.labels), text.strip()))
            drop_pixels(chunk)  # only the text travels on
        summary = self.combine(sections, backend, usage)
        return {
            "summary": summary,
            "sections": [{"pages": s, "summary": t} for s, t in sections] if len(sections) > 1 else None,
            "evidence": evidence(seen),
            **tail(seen, self.hd, backend, usage),
        }

    def combine(self, sections: list[tuple[str, str]], backend: "Backend", usage: Usage) -> str:
        """Fold section summaries into one, FAN_IN at a time."""
        level = sections
        while len(level) > 1:
            merged = []
            for start in range(0, len(level), FAN_IN):
                group = level[start:start + FAN_IN]
                if len(group) == 1:
                    merged.append(group[0])
                    continue
                text = usage.add(text_call(backend, combine_prompt(group), max_new_tokens=self.max_new_tokens,
                                           system=self.system)).text
                merged.append((f"{group[0][0].split(' - ')[0]} - {group[-1][0].split(' - ')[-1]}",
                               text.strip()))
            level = merged
        return level[0][1] if level else ""
