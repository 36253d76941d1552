"""Answering from many pages: one call when they fit, map-reduce over chunks when they don't.

In: a question, the chunks of pages routing chose (docvision.tasks.pages) and a backend. Out: the answer,
the chunks seen and those that held evidence, and what the calls cost (Usage). ``docvision.tasks.ask``
wraps this into the ask task; summarize and extract share Usage and the text-only call.

One call when the routed pages fit the budget (``--max-pages``, visual tokens); otherwise each chunk of
pages is asked for notes ("map"), and a final text-only call combines the notes ("reduce"). A chunk
whose notes say NOT FOUND is not counted as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable

from docvision.tasks.pages import Chunk

if TYPE_CHECKING:
    from docvision.models.base import Backend, Generation

NOT_FOUND = "NOT FOUND"


def pages_phrase(labels: list[str]) -> str:
    """'page 3' / 'these 3 pages of one document, in order: page 1, page 2, page 7'."""
    if len(labels) == 1:
        return f"this page ({labels[0]}) of a document"
    return f"these {len(labels)} pages of one document, in order: {', '.join(labels)}"


def ask_prompt(question: str, labels: list[str]) -> str:
    """The prompt of a single call that sees every page it needs (ask's own instruction)."""
    from docvision.tasks.ask import build_prompt

    return build_prompt(question, labels)


def map_prompt(question: str, labels: list[str]) -> str:
    """The prompt of one chunk when the evidence spans more pages than one call takes."""
    return (f"The images show {pages_phrase(labels)}; other pages are read separately.\n"
            f"Write down briefly everything on these pages that helps answer the question, naming the "
            f"page. If nothing here helps, reply exactly: {NOT_FOUND}\n\nQuestion: {question}")


def combine_prompt(question: str, notes: list[tuple[list[str], str]]) -> str:
    """The text-only prompt that turns per-chunk notes into one answer."""
    body = "\n\n".join(f"[{', '.join(labels)}]\n{text.strip()}" for labels, text in notes)
    return (f"Notes taken from different pages of one document, about the question below:\n\n{body}\n\n"
            f"Using only these notes, answer the question. Be concise.\n\nQuestion: {question}")


def is_not_found(text: str) -> bool:
    return text.strip().strip(".").upper().startswith(NOT_FOUND)


@dataclass
class Usage:
    """Tokens and model time summed over the calls of one source."""

    calls: int = 0
    prompt_tokens: int = 0
    visual_tokens: int = 0
    new_tokens: int = 0
    timings: dict = field(default_factory=dict)

    def add(self, generation: "Generation") -> "Generation":
        self.calls += 1
        self.prompt_tokens += generation.prompt_tokens
        self.visual_tokens += generation.visual_tokens
        self.new_tokens += generation.new_tokens
        for key, value in (generation.timings or {}).items():
            # durations add up; rates (tokens_per_s) do not
            if isinstance(value, (int, float)) and key.endswith("_s") and not key.endswith("per_s"):
                self.timings[key] = round(self.timings.get(key, 0.0) + value, 3)
        return generation

    def tokens(self) -> dict:
        return {"calls": self.calls, "prompt": self.prompt_tokens, "visual": self.visual_tokens,
                "new": self.new_tokens}


def answer(question: str, chunks: Iterable[Chunk], backend: "Backend", max_new_tokens: int = 512,
           on_text: Callable[[str], None] | None = None) -> tuple[str, list[Chunk], list[Chunk], Usage]:
    """Answer from the chunks (one call, or map then combine); return answer, chunks seen, evidence, usage."""
    usage = Usage()
    seen: list[Chunk] = []
    notes: list[tuple[int, list[str], str, Chunk]] = []
    for chunk in chunks:
        seen.append(chunk)
        if chunk.total <= 1:
            text = usage.add(backend.generate(chunk.views, ask_prompt(question, chunk.labels),
                                              max_new_tokens=max_new_tokens, on_text=on_text)).text
            drop_pixels(chunk)
            return text.strip(), seen, seen, usage
        text = usage.add(backend.generate(chunk.views, map_prompt(question, chunk.labels),
                                          max_new_tokens=max_new_tokens)).text
        notes.append((chunk.rank, chunk.labels, text, chunk))
        # Only the notes travel on, so a long document never sits in memory.
        drop_pixels(chunk)
    notes.sort(key=lambda n: n[0])
    useful = [n for n in notes if not is_not_found(n[2])]
    kept = useful or notes
    final = usage.add(text_call(backend, combine_prompt(question, [(n[1], n[2]) for n in kept]),
                                max_new_tokens=max_new_tokens, on_text=on_text)).text
    return final.strip(), seen, [n[3] for n in useful], usage


def drop_pixels(chunk: Chunk) -> None:
    """Forget a chunk's canvases once the model has seen them (plans and labels stay for the record)."""
    for view in chunk.views:
        view.image = None


def text_call(backend: "Backend", prompt: str, **options) -> "Generation":
    """A call about text only (combining notes): no page is sent, whatever the backend or family."""
    return backend.generate([], prompt, **options)


def evidence(chunks: Iterable[Chunk]) -> list[dict]:
    """Evidence entries of the given chunks, in page order."""
    entries = [entry for chunk in chunks for entry in chunk.evidence]
    return sorted(entries, key=lambda e: e["number"])
