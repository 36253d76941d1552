"""One call of a Session over its sources, as an iterator of records: the library and the CLI run here.

In: a Plan (what the call decided: sources, task, ingest options, output...) and the Resources of the
Session that runs it (its tools, its loaded model). Out: a Run, an iterator of records in input order (or
as they finish), each appended to ``--output`` before it is handed out, so finished work is never lost;
its ``status`` once it ended.

Steps, when the first record is asked for: lock and resume ``--output``; announce the batch to the
Session's Tools (Chromium, LibreOffice, PDF workers, started on first use); get the model from the
Session (loaded once, on the first call that needs it); drive the engine. Every command goes through
here, ``render`` included, so they all share source handling, the render cache, office batching,
``--output/--resume``, progress and exit statuses. The sources are expanded when the Run is made, so a
call that names nothing readable fails before anything starts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import docvision.records as records
from docvision.document import IngestOptions
from docvision.errors import DocvisionError, UsageError
import docvision.run.engine as engine
from docvision.run.sink import OutputDir, OutputFile, RecordSink, resume
from docvision.run.status import ExitStatus, exit_status
from docvision.sources import Entry, expand, redact

Progress = Callable[[int, int, str], None]  # (sources done, sources to do, the source just done or "")


@dataclass
class Plan:
    """Everything a call decided before anything runs."""

    sources: list[str]
    task: Any  # a docvision.run.engine.Task
    ingest: IngestOptions = field(default_factory=IngestOptions)
    recursive: bool = False
    output: Path | None = None
    output_dir: Path | None = None  # records as JSON Lines shards in this folder instead of one file
    resume: bool = False
    cache: bool = True
    timings: bool = True
    engine: engine.Settings = field(default_factory=engine.Settings)
    keep: Callable[[Entry], bool] | None = None  # drops entries before the run (render's own views) ...
    left_out: str = "left out {n} source(s)"  # ... and says so, once
    stdin: Any = None  # where ``-`` reads its sources (None: sys.stdin)
    workers: int = 1  # sources rendered at once, each in a render worker process (docvision.run.workers)
    cluster: Any = None  # docvision.run.cluster.Cluster: the call runs on Ray


class Resources(Protocol):
    """What a Session lends a Run: its Tools and its model, kept between calls."""

    def begin(self, run: "Run") -> None:
        """The run starts (a Session runs one call at a time)."""

    def end(self, run: "Run") -> None:
        """The run is over."""

    def tools(self, options: IngestOptions) -> Any:
        """The Tools for these options (started on first use)."""

    def pool(self, size: int) -> Any:
        """The render workers (docvision.run.workers.Pool) of this size."""

    def backend(self, task: str) -> Any:
        """The loaded model backend (loaded now if need be, for a call of ``task``; raises its
        DocvisionError)."""

    def backend_settings(self, task: str) -> Any:
        """The settings the backend is loaded with (LocalSettings or ServerSettings), for Ray's actors."""

    def ray(self, cluster: Any) -> None:
        """Ray started or connected (docvision.run.cluster.start), once for the Session."""

    def release(self) -> None:
        """The call is over: tools or workers it stopped are not lent again."""

    @property
    def single_call(self) -> bool:
        """Whether the Session makes only this call (its tools may stop as soon as rendering ends)."""


class Run:
    """The records of one call: iterate it (or ``list()`` it); ``status`` once it is exhausted.

    Nothing runs until the first record is asked for. ``failure`` is set when the model could not be
    loaded: every source then got an error record saying so, and a caller that reports errors per
    batch says it once. Close it (or use ``with``) to stop a call before its end.
    """

    def __init__(self, plan: Plan, resources: Resources, say: Callable[[str], None],
                 progress: Progress | None = None):
        if plan.resume and plan.output is None and plan.output_dir is None:
            raise UsageError("--resume needs --output FILE or --output-dir DIR (where the finished sources are)")
        if plan.output is not None and plan.output_dir is not None:
            raise UsageError("give --output FILE or --output-dir DIR, not both")
        self.plan, self.resources, self.say, self.progress = plan, resources, say, progress
        entries = expand(plan.sources, recursive=plan.recursive, stdin=plan.stdin, say=say)
        if plan.keep is not None:
            kept = [e for e in entries if plan.keep(e)]
            if len(kept) < len(entries):
                say(plan.left_out.format(n=len(entries) - len(kept)))
            entries = kept
        if not entries:
            raise UsageError("no sources given")
        self.entries = entries
        self.failure: DocvisionError | None = None
        self.sink: RecordSink | None = None
        self._records: Iterator[dict] | None = None
        self.finished = False

    @property
    def task(self) -> str:
        return self.plan.task.name

    @property
    def status(self) -> ExitStatus:
        """How the call ended, as an exit status: 0 all ok, 1 a source failed, 74 --output lost."""
        if self.sink is None:
            return ExitStatus.OK
        return exit_status(failed=self.sink.failed or self.failure is not None,
                           output_lost=self.sink.output_lost is not None)

    def __iter__(self) -> "Run":
        return self

    def __next__(self) -> dict:
        if self._records is None:
            if self.finished:
                raise StopIteration
            self._records = self._generate()
        return next(self._records)

    def close(self) -> None:
        """Stop the call (what is finished stays written); safe to call twice."""
        if self._records is not None:
            self._records.close()
        self.finished = True

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _generate(self) -> Iterator[dict]:
        self.resources.begin(self)
        try:
            output = (OutputFile(self.plan.output, self.say) if self.plan.output is not None
                      else OutputDir(self.plan.output_dir, self.say) if self.plan.output_dir is not None else None)
        except BaseException:
            self.finished = True
            self.resources.end(self)
            raise
        self.sink = RecordSink(None, output, timings=self.plan.timings, say=self.say)
        try:
            done = resume(output, self.task, self.say) if self.plan.resume and output is not None else set()
            todo = _left(self.plan.task, self.entries, done)
            if done:
                where = self.plan.output or self.plan.output_dir
                self.say(f"resuming: {len(self.entries) - len(todo)} source(s) already done in {where}")
            yield from self._run(todo)
        finally:
            self.finished = True
            self.sink.close()
            self.resources.end(self)

    def _run(self, todo: list[Entry]) -> Iterator[dict]:
        """Set up the rendering (here, or in render workers), get the model, run the engine."""
        plan, sink = self.plan, self.sink
        if self.progress is not None:
            self.progress(0, len(todo), "")
        readable = [e for e in todo if e.error is None]
        if plan.cluster is not None:
            yield from self._on_cluster(todo)
            return
        try:
            remote = min(plan.workers, len(readable)) > 1
            render = self._in_workers(readable) if remote else self._here(readable)
            backend, load_s = self._load(todo)
            if self.failure is not None:
                for entry in todo:
                    yield sink.keep(records.error(entry.source, self.task, entry.error or self.failure))
                return
            opener, finish, stop, pool = render
            remote_spec = None
            if pool is not None:
                import docvision.run.workers as workers
                from docvision.models.base import Shape

                remote_spec = workers.Remote(pool, workers.render_half(plan.task, [e.source for e in readable]),
                                             Shape.of(backend), plan.ingest, plan.cache, plan.task.needs_model)

            for done, (entry, written) in enumerate(engine.stream(
                    todo, plan.task, opener=opener, backend=backend, settings=plan.engine, load_s=load_s,
                    finish=finish if self.resources.single_call else None, abort=stop, remote=remote_spec),
                    start=1):
                for record in written:
                    yield sink.keep(record)
                if self.progress is not None:
                    self.progress(done, len(todo), entry.source)
        finally:
            self.resources.release()

    def _here(self, readable: list[Entry]) -> tuple:
        """(opener, finish, stop, None): sources opened by the Session's own Tools, on the render thread."""
        from docvision.cache import RenderCache
        from docvision.ingest import load
        from docvision.ingest.ocr import with_ocr

        plan = self.plan
        tools = self.resources.tools(plan.ingest)
        tools.expect([e.source for e in readable], {e.source: e.folder for e in readable if e.folder})
        if plan.cache:
            cache = RenderCache(pixels=plan.task.needs_model, say=self.say)
            opener = lambda source: cache.open(source, plan.ingest, tools)  # noqa: E731
        else:
            opener = lambda source: with_ocr(load(source, plan.ingest, tools), plan.ingest.ocr,  # noqa: E731
                                             plan.ingest.lang)
        return opener, tools.close, tools.close, None

    def _in_workers(self, readable: list[Entry]) -> tuple:
        """(None, finish, stop, pool): sources opened in the Session's render workers, started now so that
        their start overlaps the model's load."""
        pool = self.resources.pool(self.plan.workers)
        pool.workers(len(readable))
        return None, pool.close, pool.kill, pool

    def _on_cluster(self, todo: list[Entry]) -> Iterator[dict]:
        """The call on Ray: the model is checked here (an error record per source when it cannot be had),
        loaded by the cluster's actors."""
        import docvision.run.cluster as cluster

        plan = self.plan
        self.resources.ray(plan.cluster)
        settings = self.resources.backend_settings(self.task) if plan.task.needs_model else None
        shape = None
        if settings is not None and any(e.error is None for e in todo):
            try:
                shape = cluster.check_model(settings)
            except UsageError:
                raise
            except DocvisionError as exc:
                self.failure = exc
                for entry in todo:
                    yield self.sink.keep(records.error(entry.source, self.task, entry.error or exc))
                return
        for done, (entry, written) in enumerate(cluster.stream(
                todo, plan.task, options=plan.ingest, cache=plan.cache, backend_settings=settings,
                settings=plan.engine, cluster=plan.cluster, shape=shape), start=1):
            for record in written:
                yield self.sink.keep(record)
            if self.progress is not None:
                self.progress(done, len(todo), entry.source)

    def _load(self, todo: list[Entry]) -> tuple[Any, float]:
        """(backend, seconds its load took now) -- none when the task needs no model or no source can
        reach it. A model that cannot load leaves an error record per source, and ``failure`` set."""
        if not self.plan.task.needs_model or all(e.error is not None for e in todo):
            return None, 0.0
        started = time.perf_counter()
        try:
            backend = self.resources.backend(self.task)
        except UsageError:
            raise
        except DocvisionError as exc:
            self.failure = exc
            return None, 0.0
        return backend, time.perf_counter() - started


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
