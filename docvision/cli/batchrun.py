"""What the model commands (ask, summarize, extract) share: batch options, the run, human output.

In: the sources and options a command parsed, and its Task. Out: the exit code, after every record is
shown (human or JSON Lines on stdout) and appended to ``--output``. The model is loaded once per run.
"""

from __future__ import annotations

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
        from docvision.backends import load_backend

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
    from docvision import batch, ingest, output as out
    from docvision.cache import RenderCache
    from docvision.errors import UsageError
    from docvision.sources import expand

    if resume and output is None:
        raise UsageError("--resume needs --output FILE (the file whose finished sources are skipped)")
    entries = expand(sources, recursive=recursive)
    skip = out.resume(output, task.name) if resume else set()
    if no_cache:
        opener = lambda source: ingest.load(source, ingest_options)  # noqa: E731
    else:
        cache = RenderCache()
        opener = lambda source: cache.open(source, ingest_options)  # noqa: E731
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
    return batch.run(entries, task, sink, opener=opener, backend_factory=backend_factory(flags, config_file), skip=skip,
                     debug=debug, concurrency=concurrency, ordered=not unordered)


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
            common.say_error(f"{record['source']}: {record['error']['message']}")

    return emit


def human_emitter(streamed: Callable[[], bool] = lambda: False) -> Callable[[dict], None]:
    """Records for people: the answer (summary, data), then its evidence and what it cost, dimmed."""
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)

    def emit(record: dict, say: bool = True) -> None:
        if record["status"] != "ok":
            if say:
                common.say_error(f"{record['source']}: {record['error']['message']}")
            return
        shown = streamed()  # False; True: the answer was streamed; "header": the source's name was too
        if shown != "header":
            console.print(f"[bold]{_escape(record['source'])}[/bold]")
        if not shown:
            console.print(_escape(_main_text(record)))
        for line in _detail_lines(record):
            console.print(f"[dim]  {_escape(line)}[/dim]")
        for warning in record.get("warnings", []):
            common.say_warning(f"{record['source']}: {warning}")
        sys.stdout.flush()

    return emit


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _main_text(record: dict) -> str:
    if "answer" in record:
        return record["answer"]
    if "summary" in record:
        return record["summary"]
    import json

    return json.dumps(record.get("data"), ensure_ascii=False, indent=2)


def _detail_lines(record: dict) -> list[str]:
    """Evidence, then model, resolution and timings, one short line each."""
    lines = []
    evidence = record.get("evidence")
    if isinstance(evidence, list) and evidence:
        parts = []
        for entry in evidence[:12]:
            words = ", ".join(m["text"] for m in entry.get("matches", [])[:3])
            parts.append(entry["label"] + (f" ({words})" if words else ""))
        more = f" and {len(evidence) - 12} more" if len(evidence) > 12 else ""
        lines.append("evidence: " + "; ".join(parts) + more)
    elif isinstance(evidence, dict):
        lines.append("evidence: " + "; ".join(f"{k}: {v.get('page') or '-'}" for k, v in evidence.items()))
    res, model = record.get("resolution", {}), record.get("model", {})
    if res:
        lines.append(f"{model.get('id', '?')} · HD-{res['hd']} · {res['pages']} page(s) · "
                     f"{res['tokens']:,} visual tokens · {res.get('calls', 1)} call(s)")
    timings = record.get("timings")
    if timings:
        lines.append("time: " + ", ".join(f"{k[:-2]} {v:.2f} s" for k, v in timings.items()
                                          if k.endswith("_s") and not k.endswith("per_s")
                                          and isinstance(v, (int, float)) and (v or k != "load_s")))
    return lines
