"""Records for people: render's per-page table, and each answer, summary or data with its evidence.

In: records as the run writes them. Out: text on stdout. On a terminal an answer is followed by dimmed
lines (evidence pages and the words that matched, the model and resolution, where the time went),
wrapped to the terminal with a hanging indent; to a pipe only the answer itself is written, so
``docvision ask f.pdf q > answer.txt`` holds the answer and nothing else. NO_COLOR is honoured. Lines
are rendered to a string and written with ``sys.stdout.write`` (not by a rich Console, which writes to
the terminal behind a progress bar's back), so a bar on stderr moves them above itself.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Callable

from docvision.cli.console import clear_status, failed_line, release_status, safe, say_error, say_warning


def emitter(task: str, streamed: Callable[[], bool | str] = lambda: False,
            several: bool = False, sources: int = 1) -> Callable[..., None]:
    """The human emitter for a task's records (``several``: several questions per source, so each answer
    is headed by its question). To a pipe, answers of several ``sources`` are each headed by a line
    ``==> SOURCE <==`` (as ``head`` and ``tail`` head files), a single one stays bare."""
    if task == "render":
        return _render_emitter()
    count = 0

    def emit(record: dict, say: bool = True) -> None:
        nonlocal count
        if record["status"] != "ok":
            if say:
                say_error(failed_line(record))
            return
        shown = streamed()  # False; True: the answer was streamed; "header": the source's name was too
        terminal = sys.stdout.isatty()
        parts = []
        if shown != "header" and terminal:
            parts.append((safe(record["source"]), "bold"))
        elif not terminal and (sources > 1 or several):
            parts += [("", "")] if count else []  # a blank line between answers
            parts += [(f"==> {safe(record['source'])} <==", "")] if sources > 1 else []
        if shown != "header" and record.get("question") and several:
            parts.append((f"Q: {safe(record['question'])}", "bold"))
        count += 1
        if not shown:
            parts.append((main_text(record), ""))
        if terminal:
            parts += [(line, "dim") for line in detail_lines(record)]
        _print(parts)
        for warning in record.get("warnings") or []:
            say_warning(f"{record['source']}: {warning}")

    return emit


def _print(parts: list[tuple[str, str]]) -> None:
    """Write (text, style) parts to stdout; on a terminal wrapped to its width and styled unless NO_COLOR."""
    from rich.console import Console
    from rich.text import Text

    terminal = sys.stdout.isatty()
    clear_status()
    width = shutil.get_terminal_size((100, 24)).columns if terminal else None
    buffer = io.StringIO()
    styled = terminal and "NO_COLOR" not in os.environ  # NO_COLOR: plain text, no bold or dim either
    console = Console(file=buffer, force_terminal=styled, no_color=not styled, highlight=False,
                      soft_wrap=not terminal, width=width or 100)
    for text, style in parts:
        if style == "dim" and width:
            text = textwrap.fill(text, width=width - 1, initial_indent="  ", subsequent_indent="    ",
                                 break_on_hyphens=False)
        elif style == "dim":
            text = "  " + text
        console.print(Text(text, style=style))
    sys.stdout.write(buffer.getvalue())
    sys.stdout.flush()


def main_text(record: dict) -> str:
    if record["task"] == "ask":
        return record["answer"]
    if record["task"] == "summarize":
        return record["summary"]
    return json.dumps(record.get("data"), ensure_ascii=False, indent=2)


def shown_words(words: list[str]) -> list[str]:
    """Matched words as a person reads them: punctuation of the text layer trimmed, each word once."""
    shown: dict[str, str] = {}
    for text in words:
        word = text.strip(".,;:!?()[]{}\"'")
        if word:
            shown.setdefault(word.lower(), word)
    return list(shown.values())


def detail_lines(record: dict) -> list[str]:
    """Evidence, then model, resolution and timings, one short line each."""
    lines = []
    evidence = record.get("evidence") or []
    if evidence:
        parts = []
        for entry in evidence[:12]:
            region = entry.get("region")
            said = region["words"] if region else entry.get("words") or []
            words = ", ".join(shown_words(said)[:3])
            name = f"{entry['field']}: {entry['label']}" if entry.get("field") else entry["label"]
            where = "region: " if region else ""
            parts.append(name + (f" ({where}{words})" if words else " (region)" if region else ""))
        more = f" and {len(evidence) - 12} more" if len(evidence) > 12 else ""
        lines.append("evidence: " + "; ".join(parts) + more)
        files = [e["pictures"]["page"] for e in evidence if e.get("pictures")]
        if files:
            lines.append("pictures: " + ", ".join(safe(f) for f in files[:4]) + (" ..." if len(files) > 4 else ""))
    res, model, usage = record.get("resolution"), record.get("model") or {}, record.get("usage") or {}
    if res:
        lines.append(f"{_short_model(model.get('id') or '?')} · HD-{res['hd']} · {_count(res['pages'], 'page')} · "
                     f"{res['visual_tokens']:,} visual tokens · {_count(usage.get('calls', 1), 'call')}")
    timings = record.get("timings")
    if timings and _time_line(timings) != "time: ":
        lines.append(_time_line(timings))
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _short_model(model_id: str) -> str:
    """A local folder by its name (the record keeps the whole path); a hub id as it is."""
    return Path(model_id).name if model_id.startswith(("/", "./", "~")) else model_id


def _time_line(timings: dict) -> str:
    """Where the time went, short enough for one 80-column line: load, render, model, first token."""
    shown = []
    for key, name in (("load_s", "load"), ("render_s", "render"), ("model_s", "model")):
        value = timings.get(key)
        if isinstance(value, (int, float)) and (value or key != "load_s"):
            shown.append(f"{name} {value:.2f} s")
    first = timings.get("first_token_s", timings.get("prefill_s"))
    if isinstance(first, (int, float)):
        shown.append(f"first token {first:.2f} s")
    return "time: " + ", ".join(shown)


class Streamer:
    """Streams answers to a terminal as the model writes them: the source's name, then the text."""

    def __init__(self, questions: int = 1):
        self.streamed = False
        self.source = self.question = ""
        self.questions = questions  # with several, each answer is headed by its question

    def start(self, source: str, question: str = "") -> None:
        self.streamed = False
        self.source, self.question = source, question

    def write(self, text: str) -> None:
        if not self.streamed:
            self.streamed = True
            clear_status(hold=True)  # the answer takes the line; no status inside it
            header = f"{safe(self.source)}" + (f"\nQ: {safe(self.question)}" if self.questions > 1 else "")
            sys.stdout.write(header + "\n")
        sys.stdout.write(text)
        # Under a progress bar stdout is rich's line proxy: a flush would end the line mid-answer.
        if not hasattr(sys.stdout, "rich_proxied_file"):
            sys.stdout.flush()

    def done(self) -> str | bool:
        """"header" (once per source) when the name and answer were streamed: the record then adds only
        the details; False when nothing was streamed."""
        streamed, self.streamed = self.streamed, False
        release_status()
        if streamed:
            sys.stdout.write("\n")
        return "header" if streamed else False


# -- render: one table per source ------------------------------------------------------------------------

NUMBERS = ("source px", "scale", "canvas px", "grid", "tiles", "tokens", "words")


def _render_emitter() -> Callable[..., None]:
    from rich.console import Console

    console = Console(highlight=False)

    def emit(record: dict, say: bool = True) -> None:
        if record["status"] != "ok":
            if say:
                say_error(failed_line(record))
            if not record.get("pages"):
                return
        clear_status()
        _render_table(console, record)
        for warning in record.get("warnings") or []:
            say_warning(f"{record['source']}: {warning}")
        sys.stdout.flush()

    return emit


def _render_table(console, record: dict) -> None:
    from rich import box
    from rich.table import Table

    res = record["resolution"]
    # Paths are never wrapped by us (soft_wrap): they stay whole for copying.
    console.print(f"{safe(record['source'])}  (HD-{res['hd']}, tile {res['tile']} px)", soft_wrap=True, markup=False)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    # Numbers never wrap or shrink; the label wraps; a note is a short flag here and its full text a
    # line under the table, so an 80-column terminal shows one readable row per page.
    table.add_column("page", overflow="fold", min_width=6)
    for column in NUMBERS:
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("notes", no_wrap=True, overflow="ellipsis")
    details = []
    for page in record["pages"]:
        p = page["plan"]
        notes = ["scanned"] if page["scanned"] else []
        if page.get("warnings"):
            notes.append("warning")
            details += [f"{page['label']}: {w}" for w in page["warnings"]
                        if not any(w in doc_warning for doc_warning in record.get("warnings") or [])]
        table.add_row(safe(page["label"]), "x".join(map(str, p["source_size"])), f"{p['scale']:.3f}",
                      "x".join(map(str, p["canvas_size"])), "x".join(map(str, p["grid"])),
                      str(p["tiles"]), str(p["visual_tokens"]), str(page["words"]), ", ".join(notes))
    console.print(table)
    for detail in details:
        console.print(f"  {safe(detail)}", overflow="fold", markup=False)
    timings = record.get("timings") or {}
    took = f" in {timings['render_s']:.2f} s" if "render_s" in timings else ""
    console.print(f"  {res['pages']} page(s), {res['tiles']} tiles, {res['visual_tokens']} visual tokens{took}")
    files = record["pages"][0].get("files") if record["pages"] else None
    if files:
        console.print(f"  views written to {safe(str(Path(files['canvas']).parent))} (page-NNN.canvas.png is what "
                      "the model sees; .overview.png is annotated for people)", soft_wrap=True, markup=False)
