"""The one engine every command runs on: many sources in, one record per source out, nothing lost.

In: the sources to run (``sources.expand``), a Task, an ``opener`` (source -> Document, through the render
cache and the run's Tools) and the loaded backend (None for ``render``). Out: ``stream`` yields each
source with its records, in input order (or as finished, ``ordered=False``), the moment they are ready;
``run`` writes them to a RecordSink instead.

One render thread (the producer) opens and draws the sources in input order -- PyMuPDF, Pillow,
Playwright and LibreOffice are only ever driven from it -- and runs ahead of the model through bounded
per-source lanes, so memory holds a few calls' pages whatever the batch or document size. Model work
happens on ``concurrency`` workers; with concurrency 1 the one worker is the calling thread itself, so
Ctrl-C lands where the model runs and streamed answers never interleave with records. docs/architecture.md
draws the picture.

A Task has two halves: ``prepare(document, backend)`` runs on the producer and yields items (a model
call's pages; a rendered page for ``render``); ``finish(job, backend)`` runs on a worker, pulls the
job's items and returns the record body.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

import docvision.records as records
from docvision.document import Document
from docvision.errors import DamagedSource
from docvision.run.progress import Progress
from docvision.run.sink import RecordSink
from docvision.sources import Entry

AHEAD = 3  # items (one model call's pages each) a lane holds ahead of its worker
# A task without a model yields small items (a page's plan and text): its lanes are not bounded, so a render
# worker finishing source k+1 never waits for source k to be written (the window still bounds the sources).
POLL_S = 0.2  # how often blocked threads look up to see whether the run was stopped


class Task(Protocol):
    """What a command does with each source. A task may also have ``keys(source) -> [dict]``: what tells
    apart the several records it writes per source (ask's questions); by default one record each."""

    name: str
    needs_model: bool

    def prepare(self, document: Document, backend: Any) -> Iterator[Any]:
        """Producer side: route and draw; yield items."""

    def finish(self, job: "Job", backend: Any) -> dict:
        """Worker side: consume ``job.items()``, return the record body."""


@dataclass
class Job:
    """One source on its way through the model: its document facts and its items as they arrive."""

    source: str
    document: dict  # type, page_count, metadata (the header); damaged_pages once ended
    _pull: Callable[[], tuple]
    ended: dict | None = None  # the producer's closing facts: warnings, damaged pages, render_s
    waited_s: float = 0.0
    extra: dict = field(default_factory=dict)

    def items(self) -> Iterator[Any]:
        """What the producer drew for this source, in the order it drew it."""
        while self.ended is None:
            started = time.perf_counter()
            kind, payload = self._pull()
            self.waited_s += time.perf_counter() - started
            if kind == "item":
                yield payload
            elif kind == "end":
                self.ended = payload
            else:  # "error": the document failed while being drawn
                self.ended = {}
                raise payload

    chunks = items  # the model tasks' name for them: one chunk is one model call's pages

    def drain(self) -> None:
        for _ in self.items():
            pass


class Lanes:
    """One bounded queue per source, and a window of sources the producer may work on ahead."""

    def __init__(self, count: int, window: int, stop: threading.Event, depth: int = AHEAD):
        self.queues = [queue.Queue(maxsize=depth) for _ in range(count)]
        self.slots = threading.Semaphore(max(1, window))
        self.stop = stop

    def put(self, position: int, message: tuple) -> None:
        while not self.stop.is_set():
            try:
                self.queues[position].put(message, timeout=POLL_S)
                return
            except queue.Full:
                continue

    def admit(self) -> bool:
        """Wait for room to start another source; False once the run is stopping."""
        while not self.stop.is_set():
            if self.slots.acquire(timeout=POLL_S):
                return True
        return False

    def pull(self, position: int, producer: threading.Thread) -> tuple:
        while True:
            try:
                return self.queues[position].get(timeout=POLL_S)
            except queue.Empty:
                if not producer.is_alive() and self.queues[position].empty():
                    raise RuntimeError("the render thread stopped unexpectedly") from None


def produce(entry: Entry, task: Task, opener: Callable[[str], Document], backend: Any,
            stopped: Callable[[], bool] = lambda: False) -> Iterator[tuple[str, Any]]:
    """The producer's half of one source: its lane's messages, in order -- ("header", facts), ("item",
    item)..., then ("end", closing facts) or ("error", exception). Render time is what this takes while
    it runs; the time it is suspended (a full lane, a pipe to docvision) is not counted."""
    if entry.error is not None:
        yield "error", entry.error
        return
    started, waited = time.perf_counter(), 0.0
    try:
        with opener(entry.source) as document:
            messages = itertools.chain(
                [("header", {"type": document.kind, "page_count": document.page_count})],
                (("item", item) for item in task.prepare(document, backend)))
            for message in messages:
                suspended = time.perf_counter()
                yield message
                waited += time.perf_counter() - suspended
                if stopped():
                    return
            end = {"warnings": list(document.warnings), "damaged_pages": list(document.damaged),
                   "metadata": dict(document.metadata)}
        end["render_s"] = time.perf_counter() - started - waited
    except Exception as exc:  # noqa: BLE001 - any failure is this source's error record
        yield "error", exc
        return
    yield "end", end


class Producer(threading.Thread):
    """Opens and prepares the sources in input order: here, one after another, or in ``remote`` render
    processes (docvision.run.workers), as many at once as there are; ``finish`` runs when it is done."""

    def __init__(self, todo: list[Entry], task: Task, opener, backend, lanes: Lanes,
                 finish: Callable[[], None] | None = None, remote: Any = None):
        super().__init__(name="docvision-render", daemon=True)
        self.todo, self.task, self.opener, self.backend, self.lanes = todo, task, opener, backend, lanes
        self.finish, self.remote = finish, remote

    def run(self) -> None:
        try:
            if self.remote is not None:
                self._spread()
                return
            for position, entry in enumerate(self.todo):
                if not self.lanes.admit():
                    return
                for message in produce(entry, self.task, self.opener, self.backend, self.lanes.stop.is_set):
                    self.lanes.put(position, message)
        finally:
            if self.finish is not None:
                self.finish()  # the run's browser and converter are stopped from the thread that drove them

    def _spread(self) -> None:
        """Each render process takes the next source in input order once the window has room for it."""
        handing = threading.Lock()
        queue_ = iter(enumerate(self.todo))

        def slot(worker) -> None:
            while True:
                with handing:
                    if not self.lanes.admit():
                        return
                    taken = next(queue_, None)
                    if taken is None:
                        self.lanes.slots.release()  # nobody will use the room it took
                        return
                position, entry = taken
                for message in self.remote.render(worker, position, entry, self.lanes.stop.is_set):
                    self.lanes.put(position, message)

        threads = [threading.Thread(target=slot, args=(worker,), name=f"docvision-render-{n}", daemon=True)
                   for n, worker in enumerate(self.remote.workers(len(self.todo)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


@dataclass
class Settings:
    """How the engine runs: parallel model requests, record order, partial documents, debug output."""

    concurrency: int = 1
    ordered: bool = True
    partial_ok: bool = False  # a document with damaged pages is still an ok record
    progress: bool | None = None  # ``run`` only: None, a bar on a terminal for more than one source
    debug: Callable[[BaseException], None] | None = None  # shows a failed source's traceback


def stream(todo: list[Entry], task: Task, *, opener: Callable[[str], Document] | None, backend: Any = None,
           settings: Settings = Settings(), load_s: float = 0.0, finish: Callable[[], None] | None = None,
           abort: Callable[[], None] | None = None, remote: Any = None) -> Iterator[tuple[Entry, list[dict]]]:
    """Run ``task`` over ``todo``: each source with its records (failures included), in input order or,
    ``ordered=False``, as they finish.

    ``finish`` runs on the render thread when it has opened every source (a one-call run stops its
    browser and converter there, while the model still works); ``abort`` when the run stops mid-source
    (Ctrl-C, an error, the caller leaving the loop): it must end whatever the render thread waits on.
    ``remote`` (docvision.run.workers.Remote) renders in processes of their own instead of ``opener``.
    """
    if not todo:
        if finish is not None:
            finish()
        return
    workers = max(1, min(settings.concurrency, len(todo)))
    renderers = remote.count(len(todo)) if remote is not None else 1
    stop = threading.Event()
    # Sources in flight: one per model worker and one per renderer, so no renderer waits for room.
    lanes = Lanes(len(todo), window=workers + renderers, stop=stop, depth=AHEAD if task.needs_model else 0)
    producer = Producer(todo, task, opener, backend, lanes, finish, remote)
    producer.start()
    worker = _Worker(task, backend, lanes, producer, settings, load_s)
    try:
        if workers == 1:
            for position, entry in enumerate(todo):
                yield entry, worker.record(position, entry)
        else:
            yield from _parallel(todo, worker, workers, settings.ordered, stop)
    finally:
        stop.set()
        producer.join(timeout=1)
        if producer.is_alive() and abort is not None:
            # Stopped mid-source: stop the browser, converter and PDF workers from here, which ends
            # whatever the render thread waits on, instead of waiting for it.
            abort()
        producer.join(timeout=10)


def run(todo: list[Entry], task: Task, sink: RecordSink, *, opener: Callable[[str], Document],
        backend: Any = None, settings: Settings = Settings(), load_s: float = 0.0,
        finish: Callable[[], None] | None = None) -> None:
    """``stream`` written to ``sink`` as they come, with a progress bar on a terminal."""
    with Progress(len(todo), enabled=settings.progress) as bar:
        for entry, written in stream(todo, task, opener=opener, backend=backend, settings=settings,
                                      load_s=load_s, finish=finish, abort=finish):
            for record in written:
                sink.write(record)
            bar.advance(entry.source)


class _Worker:
    """Turns one source's lane into its record (on whichever thread calls ``record``)."""

    def __init__(self, task: Task, backend, lanes: Lanes, producer: Producer, settings: Settings, load_s: float):
        self.task, self.backend, self.lanes, self.producer = task, backend, lanes, producer
        self.settings, self.load_s = settings, load_s

    def record(self, position: int, entry: Entry) -> list[dict]:
        """The source's records (one, or one per key of the task)."""
        try:
            return self._records(position, entry)
        finally:
            self.lanes.slots.release()

    def _keys(self, entry: Entry) -> list[dict]:
        keys = getattr(self.task, "keys", None)
        return keys(entry.source) if keys is not None and entry.error is None else [{}]

    def _records(self, position: int, entry: Entry) -> list[dict]:
        pull = lambda: self.lanes.pull(position, self.producer)  # noqa: E731
        kind, payload = pull()
        if kind == "error":
            self._show(payload)
            return [records.error(entry.source, self.task.name, payload, **key) for key in self._keys(entry)]
        job = Job(entry.source, {"type": payload["type"], "page_count": payload["page_count"]}, pull)
        load_s, self.load_s = self.load_s, 0.0  # the load time goes on the first record that used the model
        started = time.perf_counter()
        try:
            bodies = self.task.finish(job, self.backend)
            job.drain()
        except Exception as exc:  # noqa: BLE001 - the source fails, the batch goes on
            if job.ended is None:
                try:
                    job.drain()
                except Exception:  # noqa: BLE001 - already failing; the first error is the one to report
                    pass
            self._show(exc)
            known = {**(getattr(exc, "body", None) or {}), "document": self._document(job)}
            return [records.error(entry.source, self.task.name, exc, **{**known, **key}) for key in self._keys(entry)]
        model_s = time.perf_counter() - started - job.waited_s
        bodies = bodies if isinstance(bodies, list) else [bodies]
        return [self._finished(entry, job, body, model_s / len(bodies), load_s if n == 0 else 0.0)
                for n, body in enumerate(bodies)]

    def _finished(self, entry: Entry, job: Job, body: dict, model_s: float, load_s: float) -> dict:
        ended = job.ended or {}
        timings = {"render_s": round(ended.get("render_s", 0.0), 3)}
        if self.task.needs_model:
            timings = {"load_s": round(load_s, 3), **timings, "model_s": round(model_s, 3)}
        body["timings"] = {**timings, **(body.get("timings") or {})}
        body["warnings"] = list(body.get("warnings") or []) + list(ended.get("warnings", []))
        body["document"] = self._document(job)
        damaged = ended.get("damaged_pages") or []
        if damaged and not self.settings.partial_ok:
            listed = ", ".join(map(str, damaged))
            err = DamagedSource(f"damaged page{'s' if len(damaged) > 1 else ''} {listed}: what survived was read "
                                "(--allow-partial accepts partial documents)", source=entry.source)
            return records.error(entry.source, self.task.name, err, **body)
        return records.ok(entry.source, self.task.name, **body)

    @staticmethod
    def _document(job: Job) -> dict:
        ended = job.ended or {}
        return {**job.document, "damaged_pages": ended.get("damaged_pages", []),
                "metadata": ended.get("metadata", {})}

    def _show(self, exc: BaseException) -> None:
        if self.settings.debug is not None:
            self.settings.debug(exc)


def _parallel(todo: list[Entry], worker: _Worker, count: int, ordered: bool,
              stop: threading.Event) -> Iterator[tuple[Entry, list[dict]]]:
    """``count`` worker threads; sources handed out in input order, or (``ordered=False``) as they finish."""
    positions = iter(range(len(todo)))
    taking = threading.Lock()
    results: queue.Queue = queue.Queue()

    def work() -> None:
        while not stop.is_set():
            with taking:
                position = next(positions, None)
            if position is None:
                return
            try:
                results.put((position, worker.record(position, todo[position])))
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which decides
                results.put((position, exc))

    # Daemon threads, not a ThreadPoolExecutor: Ctrl-C must not wait for requests in flight.
    for n in range(count):
        threading.Thread(target=work, name=f"docvision-request-{n}", daemon=True).start()
    waiting: dict[int, list[dict]] = {}
    next_position = 0
    for _ in range(len(todo)):
        while True:
            try:
                position, written = results.get(timeout=POLL_S * 2)  # a timeout keeps Ctrl-C responsive
                break
            except queue.Empty:
                continue
        if isinstance(written, BaseException):
            raise written
        if not ordered:
            yield todo[position], written
            continue
        waiting[position] = written
        while next_position in waiting:
            yield todo[next_position], waiting.pop(next_position)
            next_position += 1
