"""One run of a command over its sources, from the parsed options to the exit status.

In: a Plan (what the command decided: sources, task, ingest options, output, backend settings...), and
two callables from the CLI: ``emit`` (show a record) and ``say`` (one warning line). Out: the
ExitStatus, after every source got its record -- on stdout and appended to ``--output``.

Steps: expand the sources; lock and resume ``--output``; start the run's Tools (Chromium, LibreOffice,
started on first use) and announce the batch to them; load the model once (when the task needs one);
drive the engine; then stop the tools and the model whatever happened. Every command goes through
here, ``render`` included, so they all share source handling, the render cache, office batching,
``--output/--resume``, progress and exit statuses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import docvision.records as records
from docvision.document import IngestOptions
from docvision.errors import DocvisionError, UsageError
import docvision.run.engine as engine
from docvision.run.sink import OutputFile, RecordSink, resume
from docvision.run.status import ExitStatus, exit_status
from docvision.sources import Entry, expand, redact


@dataclass
class Plan:
    """Everything a command decided before anything runs."""

    sources: list[str]
    task: Any  # a docvision.run.engine.Task
    ingest: IngestOptions = field(default_factory=IngestOptions)
    recursive: bool = False
    output: Path | None = None
    resume: bool = False
    cache: bool = True
    timings: bool = True
    backend: Any = None  # docvision.models.LocalSettings | ServerSettings; None when the task needs no model
    engine: engine.Settings = field(default_factory=engine.Settings)
    keep: Callable[[Entry], bool] | None = None  # drops entries before the run (render's own views) ...
    left_out: str = "left out {n} source(s)"  # ... and says so, once


def execute(plan: Plan, emit: Callable[..., None], say: Callable[[str], None]) -> ExitStatus:
    """Run ``plan``; records go to ``emit`` (and --output), warnings to ``say``."""
    if plan.resume and plan.output is None:
        raise UsageError("--resume needs --output FILE (the file whose finished sources are skipped)")
    entries = expand(plan.sources, recursive=plan.recursive, say=say)
    if plan.keep is not None:
        kept = [e for e in entries if plan.keep(e)]
        if len(kept) < len(entries):
            say(plan.left_out.format(n=len(entries) - len(kept)))
        entries = kept
    if not entries:
        raise UsageError("no sources given")
    output = OutputFile(plan.output, say) if plan.output is not None else None
    sink = RecordSink(emit, output, timings=plan.timings, say=say)
    try:
        done = resume(output, plan.task.name, say) if plan.resume and output is not None else set()
        todo = _left(plan.task, entries, done)
        if done:
            say(f"resuming: {len(entries) - len(todo)} source(s) already done in {plan.output}")
        _run(plan, todo, sink)
    finally:
        sink.close()
    return exit_status(failed=sink.failed, output_lost=sink.output_lost is not None)


def _left(task, entries: list[Entry], done: set) -> list[Entry]:
    """The entries with records still to write; a task with several records per source (ask's questions)
    is told which of them a source still needs."""
    if not done:
        return entries
    keys = getattr(task, "keys", lambda source: [{}])
    left = []
    for entry in entries:
        wanted = keys(entry.source)
        missing = [k for k in wanted if (redact(entry.source), k.get("question")) not in done]
        if missing:
            if len(missing) < len(wanted):
                task.restrict(entry.source, missing)
            left.append(entry)
    return left


def _run(plan: Plan, todo: list[Entry], sink: RecordSink) -> None:
    """Start the tools and the model, run the engine, stop them again."""
    from docvision.cache import RenderCache
    from docvision.ingest import load
    from docvision.ingest.ocr import with_ocr
    from docvision.ingest.tools import Tools

    tools = Tools(plan.ingest)
    backend = None
    try:
        tools.expect([e.source for e in todo if e.error is None], {e.source: e.folder for e in todo if e.folder})
        if plan.cache:
            cache = RenderCache(pixels=plan.task.needs_model, say=sink.say)
            opener = lambda source: cache.open(source, plan.ingest, tools)  # noqa: E731
        else:
            opener = lambda source: with_ocr(load(source, plan.ingest, tools), plan.ingest.ocr,  # noqa: E731
                                             plan.ingest.lang)
        backend, load_s = _load(plan, todo, sink)
        engine.run(todo, plan.task, sink, opener=opener, backend=backend, settings=plan.engine,
                   load_s=load_s, finish=tools.close)
    finally:
        tools.close()
        if backend is not None:
            backend.close()


def _load(plan: Plan, todo: list[Entry], sink: RecordSink) -> tuple[Any, float]:
    """(backend, seconds it took) -- none when the task needs no model or no source can reach it.

    A model that cannot load leaves no answers: scripts still get a record per source, and people get
    the reason once, from whoever catches the re-raised error, not the same line once per source.
    """
    if not plan.task.needs_model or plan.backend is None or all(e.error is not None for e in todo):
        return None, 0.0
    from docvision.models import load_backend

    started = time.perf_counter()
    try:
        backend = load_backend(plan.backend)
    except UsageError:
        raise
    except DocvisionError as exc:
        for entry in todo:
            sink.write(records.error(entry.source, plan.task.name, entry.error or exc), say=entry.error is not None)
        raise
    return backend, time.perf_counter() - started
