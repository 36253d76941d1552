"""Answering from many pages: one call when they fit, map-reduce over chunks when they don't.

In: a question, the chunks of pages routing chose (docvision.tasks.pages) and a backend. Out: the answer,
the chunks seen and those that held evidence, and what the calls cost (Usage). ``docvision.tasks.ask``
wraps this into the ask task; summarize and extract share the prompts' phrasing and the text-only call.

One call when the routed pages fit the budget (``--max-pages``, visual tokens); otherwise each chunk of
pages is asked for notes ("map"), and a final text-only call combines the notes ("reduce"). A chunk
whose notes say NOT FOUND is not counted as evidence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import docvision.tasks.grounding as grounding
from docvision.tasks.base import Usage
from docvision.tasks.pages import Chunk

if TYPE_CHECKING:
    from docvision.models.base import Backend, Generation

NOT_FOUND = "NOT FOUND"
INSTRUCTION = ("Answer the question using only what the {what} show{s}. Be brief and exact: copy numbers and "
               "names as written. If the answer is not shown, say that it is not shown.")


def pages_phrase(labels: list[str]) -> str:
    """'page 3' / 'these 3 pages of one document, in order: page 1, page 2, page 7'."""
    if len(labels) == 1:
        return f"this page ({labels[0]}) of a document"
    return f"these {len(labels)} pages of one document, in order: {', '.join(labels)}"


def build_prompt(question: str, labels: Sequence[str] = (), context: str = "", facts: Sequence[str] = ()) -> str:
    """The text the model reads after the page images of a single call: an instruction, what the file
    itself says about the pages (a chart's title and series), the conversation so far (chat), then the
    question -- last, so every earlier part is a prefix the next question shares."""
    if len(labels) > 1:
        what, s = f"pages ({', '.join(labels)})", ""
    else:
        what, s = "page", "s"
    known = "\nThe file also says: " + "; ".join(facts) if facts else ""
    earlier = f"\nEarlier in this conversation:\n{context.strip()}" if context.strip() else ""
    return f"{INSTRUCTION.format(what=what, s=s)}{known}{earlier}\nQuestion: {' '.join(question.split())}"


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


def answer(question: str, chunks: Iterable[Chunk], backend: "Backend", max_new_tokens: int = 512,
           on_text: Callable[[str], None] | None = None, system: str | None = None,
           raw: bool = False, context: str = "", ground: str | None = None,
           keep_pixels: bool = False) -> tuple[str, list[Chunk], list[Chunk], Usage]:
    """Answer from the chunks (one call, or map then combine); return answer, chunks seen, evidence, usage.

    ``raw``: a single call gets the question verbatim, with no instruction around it (for reproducing a
    benchmark's own prompts); ``system`` replaces the model's system prompt in every call; ``context`` is
    the conversation so far (chat), shown before the question. ``ground`` (a box convention of
    tasks/grounding.py) asks a single call for the region it read the answer from: the regions land in
    ``chunk.extra["regions"]`` and the box leaves the answer's text. ``keep_pixels`` keeps the canvases of
    the chunks (for pictures of the evidence); the caller drops them.
    """
    usage = Usage()
    seen: list[Chunk] = []
    notes: list[tuple[int, list[str], str, Chunk]] = []
    for chunk in chunks:
        seen.append(chunk)
        if chunk.total <= 1:
            asked = grounding.prompt(question, chunk.labels, ground) if ground else question
            prompt = asked if raw else build_prompt(asked, chunk.labels, context, chunk.extra.get("facts", ()))
            text = usage.add(backend.generate(chunk.views, prompt, max_new_tokens=max_new_tokens,
                                              on_text=None if ground else on_text, system=system)).text
            if ground:
                words = chunk.extra.get("words", {})
                text, chunk.extra["regions"] = grounding.locate(
                    text, ground, [(v.label, v.plan, words.get(v.label, ())) for v in chunk.views])
                if on_text is not None:
                    on_text(text.strip())
            if not keep_pixels:
                drop_pixels(chunk)
            return text.strip(), seen, seen, usage
        asked = f"{context.strip()}\n{question}" if context.strip() else question
        text = usage.add(backend.generate(chunk.views, map_prompt(asked, chunk.labels),
                                          max_new_tokens=max_new_tokens, system=system)).text
        notes.append((chunk.rank, chunk.labels, text, chunk))
        if not keep_pixels:  # only the notes travel on, so a long document never sits in memory
            drop_pixels(chunk)
    notes.sort(key=lambda n: n[0])
    useful = [n for n in notes if not is_not_found(n[2])]
    kept = useful or notes
    asked = f"{context.strip()}\n{question}" if context.strip() else question
    final = usage.add(text_call(backend, combine_prompt(asked, [(n[1], n[2]) for n in kept]),
                                max_new_tokens=max_new_tokens, on_text=on_text, system=system)).text
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
    return sorted(entries, key=lambda e: e["page"])
