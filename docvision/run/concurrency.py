"""The batch runner with several model requests in flight (``--concurrency N``, for model servers).

In: what ``batch.run`` has once the backend is loaded, plus N and whether records keep input order.
Out: the same records and exit code as ``batch.run``; with ``ordered`` the same bytes in the same order,
so ``--resume`` works as before. Without it (``--unordered``) each record is written the moment its
source finishes; a rerun with ``--resume`` still skips exactly the finished ones, since every record is
one whole flushed line.

How: the one render thread of ``batch`` (PyMuPDF and friends stay on one thread) draws sources in
input order and runs ahead of the requests; a router thread hands each source's messages to that
source's lane; N worker threads each take the next source, pull its chunks from its lane and call
the model (``batch._one``, unchanged). Rendering runs ahead of the requests by one source beyond the N
in flight (plus the render queue); lanes are bounded, so memory stays a few calls' pages per worker.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

from docvision.run import engine as batch
from docvision.document import Document
from docvision.run.sink import Progress, RecordSink
from docvision.sources import Entry


class _Lane:
    """One source's messages, as ``batch._one`` pulls them (it needs ``.queue`` and ``.is_alive()``)."""

    def __init__(self, router: "_Router", size: int):
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, size))
        self._router = router

    def is_alive(self) -> bool:
        return self._router.is_alive()


class _Router(threading.Thread):
    """Moves the render thread's messages, which come in input order, to their sources' lanes."""

    def __init__(self, producer: batch._Producer, indexes: list[int], lane_size: int, window: int):
        super().__init__(name="docvision-router", daemon=True)
        self.producer = producer
        self.lanes = {index: _Lane(self, lane_size) for index in indexes}
        self.remaining = len(indexes)  # sources whose last message ("end" or "error") is still to come
        # Sources whose messages may be routed before their record is done: bounds memory to a few
        # sources' pages however long the batch. Workers release a slot when they finish a source.
        self.slots = threading.Semaphore(window)

    def run(self) -> None:
        admitted: set[int] = set()
        while self.remaining and not self.producer.stop.is_set():
            try:
                message = batch._pull(self.producer)
            except RuntimeError:
                return  # the render thread died; workers see the router gone and fail their sources
            if message[1] not in admitted:
                while not self.slots.acquire(timeout=0.2):
                    if self.producer.stop.is_set():
                        return
                admitted.add(message[1])
            lane = self.lanes[message[1]]
            while not self.producer.stop.is_set():
                try:
                    lane.queue.put(message, timeout=0.2)
                    break
                except queue.Full:
                    continue
            if message[0] in ("end", "error"):
                self.remaining -= 1


def run(
    todo: list[tuple[int, Entry]],
    task: batch.Task,
    sink: RecordSink,
    *,
    opener: Callable[[str], Document],
    backend: Any,
    concurrency: int = 4,
    ordered: bool = True,
    ahead: int = batch.AHEAD,
    progress: bool | None = None,
    debug: bool = False,
    load_s: float = 0.0,
) -> int:
    """``batch.run``'s loop with ``concurrency`` sources at the model at once; return the exit code.

    ``todo`` is (input index, entry) for the sources to run, ``backend`` already loaded (``batch.run``
    does both, then hands over here).
    """
    producer = batch._Producer(todo, task, opener, backend, ahead)
    router = _Router(producer, [i for i, _ in todo], ahead, window=concurrency + 1)
    work: queue.Queue = queue.Queue()
    for position, (index, entry) in enumerate(todo):
        work.put((position, index, entry))
    results: queue.Queue = queue.Queue()

    def worker() -> None:
        while not producer.stop.is_set():
            try:
                position, index, entry = work.get_nowait()
            except queue.Empty:
                return
            try:  # the load time goes on the first record, as in batch.run
                record = batch._one(entry, task, router.lanes[index], backend, debug,
                                    load_s if position == 0 else 0.0)
            except BaseException as exc:  # noqa: BLE001 - hand it to the main thread, which decides
                record = exc
            router.slots.release()
            results.put((position, entry, record))

    # Daemon threads, not a ThreadPoolExecutor: Ctrl-C must not wait for requests in flight.
    workers = [threading.Thread(target=worker, name=f"docvision-request-{n}", daemon=True)
               for n in range(min(concurrency, len(todo)))]
    producer.start()
    router.start()
    for thread in workers:
        thread.start()
    try:
        with Progress(len(todo), enabled=progress) as bar:
            _collect(results, len(todo), sink, bar, ordered)
    finally:
        producer.stop.set()
        sink.close()
    return 1 if sink.failed else 0


def _collect(results: queue.Queue, total: int, sink: RecordSink, bar: Progress, ordered: bool) -> None:
    """Write records as workers finish them: in input order, or (``ordered=False``) at once."""
    waiting: dict[int, tuple[Entry, dict]] = {}
    next_position = 0
    for _ in range(total):
        while True:
            try:
                position, entry, record = results.get(timeout=0.5)  # a timeout keeps Ctrl-C responsive
                break
            except queue.Empty:
                continue
        if isinstance(record, BaseException):
            raise record
        if not ordered:
            sink.write(record)
            bar.advance(entry.source, record["status"] == "ok")
            continue
        waiting[position] = (entry, record)
        while next_position in waiting:
            entry, record = waiting.pop(next_position)
            sink.write(record)
            bar.advance(entry.source, record["status"] == "ok")
            next_position += 1
