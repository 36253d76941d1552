"""Render workers: sources opened and prepared in processes of their own, so that every core renders.

In: the producer half of a task (its ``prepare``, with no callbacks), what ``prepare`` needs of the model
(``Shape``: tile size and visual-token count), the call's IngestOptions and render-cache choice; then
sources, one at a time per worker. Out: per source the messages the in-thread producer puts in its lane
("header", "item"..., then "end" or "error"), in order, as they are made (``engine.produce`` runs in the
worker). The engine hands sources out in input order, one per worker at a time, and writes records in
input order whatever finishes first: the records are the ones one render thread makes.

Each worker is a ``python -c`` process of its own -- a clean start, not a fork of a process that runs
threads and may hold a model -- with its own Tools: a PDF worker, a Chromium and a LibreOffice, each
started on first use and kept for the next source. Messages are pickled (they hold page images and
exceptions). A worker is our own child, running our own code on the same account, so reading its pickles
trusts nothing new; untrusted files are parsed in its PDF worker, browser and converter as before.

A worker ends when told to, when its request pipe reaches end of file (docvision went away), or on SIGTERM,
closing its tools first; Ctrl-C is docvision's to handle, so workers ignore it. ``Pool.kill`` (a run
stopped mid-source) sends SIGTERM, then SIGKILL to any worker still there after a grace period.

Memory: a worker holds one source's document (pages drawn one call at a time) and its tools; docvision
holds at most AHEAD calls' pages per source in flight, and ``workers + concurrency`` sources in flight.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Iterator

from docvision.document import IngestOptions
from docvision.errors import ExternalTimeout
from docvision.sources import Entry

BOOT = "import sys; sys.path.insert(0, {root!r}); from docvision.run.workers import main; main(sys.argv[1:])"
START_S = 120.0  # a worker's start is Python and docvision's imports: ~0.5 s idle, far more on a loaded machine
STOP_S = 15.0  # a worker told to stop closes its browser and converter; past this it is killed
POLL_S = 0.2


@dataclass(frozen=True)
class Job:
    """One source for a worker, with everything it needs to open and prepare it."""

    source: str
    task: Any  # the task's producer half (``render_half``)
    shape: Any  # docvision.models.base.Shape, or None without a model
    options: IngestOptions
    cache: bool  # through the render cache
    pixels: bool  # the cache keeps drawn pages (model tasks)


def count() -> int:
    """The default number of workers: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def render_half(task, sources: list[str]):
    """A copy of ``task`` a worker can take: no callbacks (they live in docvision), and view folders
    named here, in input order, so that two workers never pick the same name."""
    fields = {f.name for f in dataclasses.fields(task)}
    changes = {name: None for name in ("on_text", "announce", "evidence_out") if name in fields}
    folders = getattr(task, "folders", None)
    if folders is not None:
        for source in sources:
            folders.folder(source)  # settles each source's folder now (and clears its old views once)
    return dataclasses.replace(task, **changes)


class Worker:
    """One render process: a request pipe in, a message pipe out."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[2])
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", BOOT.format(root=root), str(request_r), str(reply_w)],
                pass_fds=(request_r, reply_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        except BaseException:
            os.close(request_w)
            os.close(reply_r)
            raise
        finally:
            os.close(request_r)
            os.close(reply_w)
        self._requests = Connection(request_w, readable=False)
        self._replies = Connection(reply_r, writable=False)
        self.ready = False
        self.broken = False

    @property
    def alive(self) -> bool:
        return not self.broken and self.process.poll() is None

    def render(self, job: Job, stopped: Callable[[], bool]) -> Iterator[tuple[str, Any]]:
        """The messages of ``job``'s source, ending with "end" or "error"; a worker that died or was
        stopped ends it with an error."""
        try:
            self._requests.send(job)
            if not self.ready:
                self._wait(START_S, stopped)
                self._replies.recv()  # "ready", after the worker's imports
                self.ready = True
            while True:
                self._wait(None, stopped)
                kind, payload = self._replies.recv()
                yield kind, payload
                if kind in ("end", "error"):
                    return
        except (EOFError, OSError, ValueError, pickle.UnpicklingError, _Stopped):
            self.broken = True
            yield "error", ExternalTimeout("the render worker stopped before it finished this source",
                                           source=job.source)

    def _wait(self, seconds: float | None, stopped: Callable[[], bool]) -> None:
        waited = 0.0
        while not self._replies.poll(POLL_S):
            waited += POLL_S
            if stopped() or self.process.poll() is not None or (seconds is not None and waited > seconds):
                raise _Stopped()

    def stop(self) -> None:
        """Ask the worker to close its tools and end (it reads None as the last request)."""
        try:
            self._requests.send(None)
        except (OSError, ValueError):
            pass

    def kill(self) -> None:
        """SIGTERM now (the worker closes its tools), SIGKILL if it is still there after STOP_S."""
        self.broken = True
        if self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGTERM)
            except OSError:
                pass

    def close(self) -> None:
        """Wait for the worker to end (killing it past STOP_S), then free the pipes."""
        try:
            self.process.wait(STOP_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for closing in (self._requests.close, self._replies.close):
            try:
                closing()
            except OSError:
                pass


class _Stopped(Exception):
    """The run stopped, or the worker died or never answered, while a source was being rendered."""


class Pool:
    """The render workers of a Session: started when a call first needs them, kept for the next call."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._workers: list[Worker] = []
        self._lock = threading.Lock()
        self.closed = False

    def workers(self, wanted: int) -> list[Worker]:
        """``wanted`` live workers (at most the pool's size); dead ones are replaced."""
        with self._lock:
            if self.closed:
                raise ExternalTimeout("the render workers were stopped: the run is ending")
            live = [w for w in self._workers if w.alive]
            for gone in (w for w in self._workers if not w.alive):
                gone.kill()
                gone.close()
            while len(live) < min(wanted, self.size):
                live.append(Worker())
            self._workers = live
            return live[: min(wanted, self.size)]

    def close(self) -> None:
        """Tell every worker to end, then wait for them (the browser and converter close first)."""
        self._end(Worker.stop)

    def kill(self) -> None:
        """Stop every worker now (a run stopped mid-source); safe from any thread."""
        self._end(Worker.kill)

    def _end(self, how) -> None:
        """No more workers: ``how`` each of them (all at once, so they end in parallel), then reap them."""
        with self._lock:
            self.closed = True
            workers, self._workers = self._workers, []
        for worker in workers:
            how(worker)
        for worker in workers:
            worker.close()


@dataclass
class Remote:
    """What the engine's producer needs to render a call's sources in the pool's workers."""

    pool: Pool
    task: Any  # render_half of the call's task
    shape: Any
    options: IngestOptions
    cache: bool
    pixels: bool

    def count(self, sources: int) -> int:
        return max(1, min(self.pool.size, sources))

    def workers(self, sources: int) -> list[Worker]:
        return self.pool.workers(self.count(sources))

    def render(self, worker: Worker, position: int, entry: Entry,
               stopped: Callable[[], bool]) -> Iterator[tuple[str, Any]]:
        if entry.error is not None:
            yield "error", entry.error
            return
        job = Job(entry.source, self.task, self.shape, self.options, self.cache, self.pixels)
        yield from worker.render(job, stopped)


# -- in the worker ------------------------------------------------------------------------------------------
def _terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _opener(job: Job, tools) -> Callable[[str], Any]:
    from docvision.cache import RenderCache
    from docvision.ingest import load
    from docvision.ingest.ocr import with_ocr

    if job.cache:
        cache = RenderCache(pixels=job.pixels)
        return lambda source: cache.open(source, job.options, tools)
    return lambda source: with_ocr(load(source, job.options, tools), job.options.ocr, job.options.lang)


def _sendable(message: tuple[str, Any]) -> tuple[str, Any]:
    """The message, or an error saying what could not be sent (a bug: every item is plain data)."""
    try:
        pickle.dumps(message)
        return message
    except Exception as exc:  # noqa: BLE001 - whatever pickling raised, the source fails, the worker goes on
        return "error", RuntimeError(f"the render worker could not send its {message[0]}: {type(exc).__name__}: {exc}")


def serve(requests_fd: int, replies_fd: int) -> None:
    """Render sources until docvision says stop or goes away; tools closed on the way out."""
    import docvision.run.engine as engine
    from docvision.ingest.tools import Tools

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: docvision decides
    signal.signal(signal.SIGTERM, _terminate)
    requests = Connection(requests_fd, writable=False)
    replies = Connection(replies_fd, readable=False)
    tools = None
    try:
        replies.send(("ready", None))
        while True:
            try:
                job = requests.recv()
            except EOFError:
                return
            if job is None:
                return
            wanted = dataclasses.replace(job.options, pages=None, password=None)
            if tools is None or tools.options != wanted:
                if tools is not None:
                    tools.close()
                tools = Tools(wanted)
            for message in engine.produce(Entry(job.source), job.task, _opener(job, tools), job.shape):
                replies.send(_sendable(message))
    except (BrokenPipeError, EOFError):
        return  # docvision went away
    finally:
        if tools is not None:
            tools.close()


def main(argv: list[str]) -> None:
    serve(*map(int, argv))
