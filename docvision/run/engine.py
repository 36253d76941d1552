"""The batch runner every command uses: many sources in, one record per source out, nothing lost.

In: the expanded sources (``sources.expand``), a Task, a backend loaded once, and where records go.
Out: records written in input order, each appended and flushed the moment its source finishes; the
exit code (0 all ok, 1 a source failed). A backend that cannot load raises its error after every
source got its error record (one line for people, a record per source for scripts). Ctrl-C raises KeyboardInterrupt after the output is left
consistent (whole lines only); the CLI turns that into exit 130.

Overlap: a producer thread opens and draws the next sources (PyMuPDF, Pillow) while the model works on
the current one; torch releases the GIL while it computes. The producer runs ahead through a bounded
queue of chunks (a chunk is one model call's pages), so memory holds a few calls' pages whatever the
batch or document size. All of one document's PyMuPDF work stays on the producer thread.

A Task has two halves: ``prepare(document, backend)`` runs on the producer and yields chunks (routing,
drawing); ``finish(job, backend)`` runs on the caller's thread, pulls the job's chunks, calls the model
and returns the record body.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

from docvision import records
from docvision.document import Document
from docvision.errors import DocvisionError, UsageError
from docvision.run.sink import Progress, RecordSink
from docvision.sources import Entry

AHEAD = 3  # queue slots: chunks (one model call's pages each) drawn ahead of the model


class Task(Protocol):
    name: str

    def prepare(self, document: Document, backend: Any) -> Iterator[Any]:
        """Producer side: route and draw; yield chunks."""

    def finish(self, job: "Job", backend: Any) -> dict:
        """Model side: consume ``job.chunks()``, return the record body."""


@dataclass
class Job:
    """One source on its way through the model: its document facts and its chunks as they arrive."""

    index: int
    source: str
    document: dict  # kind, page_count
    _pull: Callable[[], tuple]
    ended: dict | None = None  # the producer's closing facts: warnings, render_s
    waited_s: float = 0.0
    extra: dict = field(default_factory=dict)

    def chunks(self) -> Iterator[Any]:
        """The chunks the producer drew for this source, in the order it drew them."""
        while self.ended is None:
            started = time.perf_counter()
            kind, _index, payload = self._pull()
            self.waited_s += time.perf_counter() - started
            if kind == "item":
                yield payload
            elif kind == "end":
                self.ended = payload
            else:  # "error": the document failed while being drawn
                self.ended = {}
                raise payload

    def drain(self) -> None:
        for _ in self.chunks():
            pass


class _Producer(threading.Thread):
    """Opens and prepares each source in turn, putting messages on a bounded queue."""

    def __init__(self, entries: list[tuple[int, Entry]], task: Task, opener, backend, ahead: int):
        super().__init__(name="docvision-render", daemon=True)
        self.entries, self.task, self.opener, self.backend = entries, task, opener, backend
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, ahead))
        self.stop = threading.Event()
        self.blocked = 0.0

    def put(self, message: tuple) -> None:
        started = time.perf_counter()
        while not self.stop.is_set():
            try:
                self.queue.put(message, timeout=0.2)
                break
            except queue.Full:
                continue
        self.blocked += time.perf_counter() - started

    def run(self) -> None:
        for index, entry in self.entries:
            if self.stop.is_set():
                return
            if entry.error is not None:
                self.put(("error", index, entry.error))
                continue
            self.blocked, started = 0.0, time.perf_counter()
            try:
                with self.opener(entry.source) as document:
                    self.put(("header", index, {"kind": document.kind, "page_count": document.page_count}))
                    for item in self.task.prepare(document, self.backend):
                        self.put(("item", index, item))
                        if self.stop.is_set():
                            return
                    warnings = list(document.warnings)
                render_s = time.perf_counter() - started - self.blocked
                self.put(("end", index, {"warnings": warnings, "render_s": render_s}))
            except Exception as exc:  # noqa: BLE001 - any failure is this source's error record
                self.put(("error", index, exc))


def run(
    entries: list[Entry],
    task: Task,
    sink: RecordSink,
    *,
    opener: Callable[[str], Document],
    backend_factory: Callable[[], Any] | None = None,
    skip: set[str] = frozenset(),
    ahead: int = AHEAD,
    progress: bool | None = None,
    debug: bool = False,
    concurrency: int = 1,
    ordered: bool = True,
) -> int:
    """Run ``task`` over ``entries`` (minus ``skip``), writing each record to ``sink``; return the exit code."""
    if not entries:
        raise UsageError("no sources given")
    todo = [(i, e) for i, e in enumerate(entries) if e.source not in skip]
    if not todo:
        return 0 if not sink.failed else 1
    backend, load_s = _load(todo, task, sink, backend_factory)
    if concurrency > 1:  # several requests in flight (model servers): docvision.concurrency
        from docvision.run import concurrency as inflight

        return inflight.run(todo, task, sink, opener=opener, backend=backend, concurrency=concurrency,
                            ordered=ordered, ahead=ahead, progress=progress, debug=debug, load_s=load_s)
    producer = _Producer(todo, task, opener, backend, ahead)
    producer.start()
    bar = Progress(len(todo), enabled=progress)
    try:
        with bar:
            for index, entry in todo:
                record = _one(entry, task, producer, backend, debug, load_s)
                load_s = 0.0
                sink.write(record)
                bar.advance(entry.source, record["status"] == "ok")
    finally:
        producer.stop.set()
        sink.close()
    return 1 if sink.failed else 0


def _load(todo: list[tuple[int, Entry]], task: Task, sink: RecordSink,
          backend_factory: Callable[[], Any] | None) -> tuple[Any, float]:
    """(backend, seconds it took) -- no backend when no source can reach the model anyway.

    A backend that cannot load leaves no answers: scripts still get a record per source, and people
    get the reason once, from whoever catches the re-raised error, not the same line once per source.
    """
    if backend_factory is None or all(e.error is not None for _, e in todo):
        return None, 0.0
    loading = time.perf_counter()
    try:
        backend = backend_factory()
    except UsageError:
        raise
    except DocvisionError as exc:
        for _, entry in todo:
            sink.write(records.error(entry.source, task.name, entry.error or exc), say=entry.error is not None)
        sink.close()
        raise
    return backend, time.perf_counter() - loading  # reported once, on the first record


def _pull(producer: _Producer) -> tuple:
    while True:
        try:
            return producer.queue.get(timeout=0.5)
        except queue.Empty:
            if not producer.is_alive() and producer.queue.empty():
                raise RuntimeError("the render thread stopped unexpectedly") from None


def _one(entry: Entry, task: Task, producer: _Producer, backend, debug: bool = False, load_s: float = 0.0) -> dict:
    """Take one source's messages off the queue and turn them into its record."""
    kind, index, payload = _pull(producer)
    if kind == "error":
        _show(payload, debug)
        return records.error(entry.source, task.name, payload)
    job = Job(index, entry.source, payload, lambda: _pull(producer))
    started = time.perf_counter()
    try:
        body = task.finish(job, backend)
        job.drain()
    except Exception as exc:  # noqa: BLE001 - the source fails, the batch goes on
        if job.ended is None:
            try:
                job.drain()
            except Exception:  # noqa: BLE001 - already failing; the first error is the one to report
                pass
        _show(exc, debug)
        return records.error(entry.source, task.name, exc, **job.document)
    model_s = time.perf_counter() - started - job.waited_s
    ended = job.ended or {}
    timings = {"load_s": round(load_s, 3), "render_s": round(ended.get("render_s", 0.0), 3),
               "model_s": round(model_s, 3),
               **body.pop("timings", {})}
    warnings = body.pop("warnings", []) + list(ended.get("warnings", []))
    return records.ok(entry.source, task.name, **job.document, **body, warnings=warnings, timings=timings)


def _show(exc: BaseException, debug: bool) -> None:
    """With --debug, the traceback of a failed source (the record keeps its one line)."""
    if debug:
        import traceback

        traceback.print_exception(exc)


def timings_wanted(flag: bool) -> bool:
    """Timings are on unless --no-timings or DOCVISION_NO_TIMINGS=1 (for byte-identical output)."""
    return not flag and os.environ.get("DOCVISION_NO_TIMINGS", "") not in ("1", "true", "yes")
