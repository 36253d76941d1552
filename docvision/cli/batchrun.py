"""What the model commands (ask, summarize, extract) share: batch options, the run, human output.

In: the sources and options a command parsed, and its Task. Out: the exit code, after every record is
shown (human or JSON Lines on stdout) and appended to ``--output``. The model is loaded once per run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from docvision.cli import common

OUTPUT_OPTION = typer.Option(None, "--output", "-O", help="Also append records as JSON Lines to this file.")
RESUME_OPTION = typer.Option(False, "--resume", help="Skip sources already done (status ok) in --output.")
NO_TIMINGS_OPTION = typer.Option(
    False, "--no-timings",
    help="Leave timings out of records so JSON Lines are byte-identical across runs (or DOCVISION_NO_TIMINGS=1).")
NO_CACHE_OPTION = typer.Option(False, "--no-cache", help="Neither read nor write the render cache.")
MAX_PAGES_OPTION = typer.Option(4, "--max-pages", min=1, max=64, help="Pages shown to the model per call.")
MODEL_OPTION = typer.Option(None, "--model", "-m", help="Model alias, hub id or local folder (or DOCVISION_MODEL).")
QUANT_OPTION = typer.Option(None, "--quant", help="auto (4-bit on CUDA, bf16 on CPU), 4bit, 8bit or none.")
DEVICE_OPTION = typer.Option(None, "--device", help="auto, cpu or cuda.")
MAX_NEW_TOKENS_OPTION = typer.Option(None, "--max-new-tokens", min=1, help="Most tokens the model writes per call.")


def settings(flags: dict[str, Any], config_file: str | None = None):
    """Effective settings: flags over DOCVISION_* variables over the config file over defaults."""
    from docvision.config import resolve

    return resolve({k: v for k, v in flags.items() if v is not None}, config=config_file)


def backend_factory(flags: dict[str, Any], config_file: str | None = None) -> Callable[[], Any]:
    """Loads the backend the settings name; the batch calls it once, when a source needs a model."""
    def load():
        from docvision.models import load_backend

        chosen = settings(flags, config_file)
        return load_backend(chosen.backend, **chosen.backend_kwargs())

    return load


def execute(
    sources: list[str],
    task: Any,
    *,
    flags: dict[str, Any],
    ingest_options: Any,
    config_file: str | None = None,
    recursive: bool = False,
    no_cache: bool = False,
    output: Optional[Path] = None,
    resume: bool = False,
    json_out: bool = False,
    no_timings: bool = False,
    debug: bool = False,
    human: Callable[[dict], None] | None = None,
    unordered: bool = False,
) -> int:
    """Expand the sources, open them through the render cache, run ``task`` over them in a batch."""
    from docvision import ingest
    from docvision.run import engine as batch, sink as out
    from docvision.cache import RenderCache
    from docvision.errors import UsageError
    from docvision.sources import expand

    if resume and output is None:
        raise UsageError("--resume needs --output FILE (the file whose finished sources are skipped)")
    entries = expand(sources, recursive=recursive)
    skip = out.resume(output, task.name) if resume else set()
    from docvision.ingest.tools import Tools

    tools = Tools(ingest_options)
    tools.expect([e.source for e in entries if e.error is None])
    if no_cache:
        opener = lambda source: ingest.load(source, ingest_options, tools)  # noqa: E731
    else:
        cache = RenderCache()
        opener = lambda source: cache.open(source, ingest_options, tools)  # noqa: E731
    emit = json_emitter() if json_out else (human or human_emitter())
    sink = out.RecordSink(emit, output, timings=batch.timings_wanted(no_timings))
    if skip:
        common.say_warning(f"resuming: {len(skip & {e.source for e in entries})} source(s) already done "
                           f"in {output}")
    chosen = settings(flags, config_file)
    concurrency = chosen.concurrency
    if concurrency > 1 and chosen.backend != "openai":
        common.say_warning("--concurrency is for --backend openai (a model server); a local model answers one at a time")
        concurrency = 1
    try:
        return batch.run(entries, task, sink, opener=opener, backend_factory=backend_factory(flags, config_file),
                         skip=skip, debug=debug, concurrency=concurrency, ordered=not unordered)
    finally:
        tools.close()


class Streamer:
    """Streams answers to a terminal as the model writes them: the source's name, then the text."""

    def __init__(self):
        self.streamed = False

    def start(self, source: str) -> None:
        self.streamed = False
        self.source = source

    def write(self, text: str) -> None:
        if not self.streamed:
            self.streamed = True
            sys.stdout.write(f"{self.source}\n")
        sys.stdout.write(text)
        # Under a progress bar stdout is rich's line proxy: a flush would end the line mid-answer.
        if not hasattr(sys.stdout, "rich_proxied_file"):
            sys.stdout.flush()

    def done(self) -> str | bool:
        """"header" (once per source) when the name and answer were streamed: the record then adds only
        the details; False when nothing was streamed."""
        streamed, self.streamed = self.streamed, False
        if streamed:
            sys.stdout.write("\n")
        return "header" if streamed else False


def json_emitter() -> Callable[..., None]:
    """Records as JSON Lines on stdout, flushed one by one; an error also as a line on stderr unless the
    batch reports its reason once (``say=False``: the model failed to load)."""
    from docvision import records

    def emit(record: dict, say: bool = True) -> None:
        records.write(record, sys.stdout)
        if say and record["status"] != "ok":
            common.say_error(f"{common.shown(record)}: {record['error']['message']}")

    return emit


def human_emitter(streamed: Callable[[], bool] = lambda: False) -> Callable[..., None]:
    """Records for people: the answer (summary, data), then its evidence and what it cost, dimmed."""

    def emit(record: dict, say: bool = True) -> None:
        if record["status"] != "ok":
            if say:
                common.say_error(f"{common.shown(record)}: {record['error']['message']}")
            return
        shown = streamed()  # False; True: the answer was streamed; "header": the source's name was too
        parts = []
        if shown != "header":
            parts.append((record["source"], "bold"))
        if not shown:
            parts.append((_main_text(record), ""))
        parts += [(line, "dim") for line in _detail_lines(record)]
        _print(parts)
        for warning in record.get("warnings", []):
            common.say_warning(f"{common.shown(record)}: {warning}")

    return emit


def _print(parts: list[tuple[str, str]]) -> None:
    """Write (text, style) parts to stdout; on a terminal wrapped to its width (dim detail lines with a
    hanging indent) and styled unless NO_COLOR. Rendered to a string and written with sys.stdout.write,
    not by a rich Console (which writes to the terminal behind a progress bar's back), so a bar on
    stderr moves the lines above itself instead of drawing over them."""
    import io
    import shutil
    import textwrap

    from rich.console import Console
    from rich.text import Text

    terminal = sys.stdout.isatty()
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


def _main_text(record: dict) -> str:
    if "answer" in record:
        return record["answer"]
    if "summary" in record:
        return record["summary"]
    import json

    return json.dumps(record.get("data"), ensure_ascii=False, indent=2)


def _shown_words(matches: list[dict]) -> list[str]:
    """Matched words as a person reads them: punctuation of the text layer trimmed, each word once."""
    shown: dict[str, str] = {}
    for match in matches:
        word = match["text"].strip(".,;:!?()[]{}\"'")
        if word:
            shown.setdefault(word.lower(), word)
    return list(shown.values())


def _detail_lines(record: dict) -> list[str]:
    """Evidence, then model, resolution and timings, one short line each."""
    lines = []
    evidence = record.get("evidence")
    if isinstance(evidence, list) and evidence:
        parts = []
        for entry in evidence[:12]:
            words = ", ".join(_shown_words(entry.get("matches", []))[:3])
            parts.append(entry["label"] + (f" ({words})" if words else ""))
        more = f" and {len(evidence) - 12} more" if len(evidence) > 12 else ""
        lines.append("evidence: " + "; ".join(parts) + more)
    elif isinstance(evidence, dict):
        lines.append("evidence: " + "; ".join(f"{k}: {v.get('page') or '-'}" for k, v in evidence.items()))
    res, model = record.get("resolution", {}), record.get("model", {})
    if res:
        lines.append(f"{_short_model(model.get('id', '?'))} · HD-{res['hd']} · {_count(res['pages'], 'page')} · "
                     f"{res['tokens']:,} visual tokens · {_count(res.get('calls', 1), 'call')}")
    timings = record.get("timings")
    if timings:
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
