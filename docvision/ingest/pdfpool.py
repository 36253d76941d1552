"""PDF worker processes seen from docvision: start them, talk to them, lend them to documents, stop them.

In: nothing but the request tuples ``ingest.pdfsession`` builds. Out: ``Worker`` (one process of
``ingest.pdfworker``: a request pipe, a reply pipe, a shared pixel buffer MuPDF draws into) and ``Pool``
(the workers of one run, ``Tools.pdf_workers``): a document leases a worker at its first request and
gives it back when it closes, so the next document reuses it -- a start costs what Python and PyMuPDF's
import cost (~0.3 s on an idle machine). A worker that failed a page is stopped and not reused.
Requests and replies are marshal-encoded tuples (data only: nothing a reply holds can run code here).

A worker never outlives the run: ``Pool.close`` (the run's ``Tools.close``, also on Ctrl-C and SIGTERM)
kills every worker, leased or idle, which also wakes a render waiting on one; a worker whose parent died
exits on end of file when idle, or by its own alarm when busy.
"""

from __future__ import annotations

import marshal
import mmap
import os
import signal
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

from docvision.errors import ExternalTimeout, OutOfMemory

if TYPE_CHECKING:
    from PIL import Image

BOOT = "import sys; sys.path.insert(0, {root!r}); from docvision.ingest.pdfworker import main; main(sys.argv[1:])"
# A worker's start: Python and PyMuPDF's import, ~0.3 s idle, seconds on a loaded machine; not a page's time.
START_S = 60.0
BUFFERS = 3  # one being copied out by docvision, two drawn into ahead of their turn (pdfsession.AHEAD)
KEEP_BUFFER = 64 << 20  # a pixel buffer larger than this is given back after its draw
RETIRE_RSS = 1 << 30  # a worker holding more than this is stopped rather than reused
TIMED_OUT, GONE = "timed out", "gone"  # what Worker.receive says when no reply came


def ending() -> ExternalTimeout:
    """The error of a document whose worker was stopped because the run is ending."""
    return ExternalTimeout("PDF pages were not drawn: the run is stopping")


class Buffer:
    """A shared pixel buffer: a memfd the worker draws into and this process reads from."""

    def __init__(self) -> None:
        self.fd = os.memfd_create("docvision-pdf-pixels", os.MFD_CLOEXEC)
        self.capacity = 0
        self._view: mmap.mmap | None = None

    def reserve(self, nbytes: int) -> int:
        """Make it hold at least ``nbytes`` (rounded up to whole MiB); return its capacity."""
        if self.capacity < nbytes:
            self._unmap()
            capacity = -(-nbytes // (1 << 20)) * (1 << 20)
            try:
                os.ftruncate(self.fd, capacity)
                self._view = mmap.mmap(self.fd, capacity)
            except OSError as exc:
                # ENOMEM, or EFBIG under `ulimit -f`: the buffer stays empty, so no worker is ever told
                # to draw into pages the file does not have (a write there is a SIGBUS).
                self.capacity = 0
                os.ftruncate(self.fd, 0)
                raise OutOfMemory(f"no room for {capacity:,} bytes of page pixels ({exc.strerror})") from None
            self.capacity = capacity
        return self.capacity

    def image(self, width: int, height: int) -> "Image.Image":
        """The drawn pixels as a PIL image (a copy: PIL keeps RGB as 4 bytes a pixel, MuPDF packs 3)."""
        from PIL import Image

        image = Image.new("RGB", (width, height), None)  # None: not filled first (frombuffer fills with black)
        with memoryview(self._view) as whole, whole[: width * height * 3] as view:
            image.frombytes(view, "raw", "RGB")
        return image

    def trim(self) -> None:
        """Give a large buffer back to the system (the worker remaps at the next draw's capacity)."""
        if self.capacity > KEEP_BUFFER:
            self._unmap()
            self.capacity = 0
            os.ftruncate(self.fd, 0)

    def _unmap(self) -> None:
        if self._view is not None:
            self._view.close()
            self._view = None

    def close(self) -> None:
        self._unmap()
        os.close(self.fd)


class Worker:
    """One worker process: a request pipe, a reply pipe, shared pixel buffers (drawn into ahead while
    another is read)."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[2])
        self.buffers = tuple(Buffer() for _ in range(BUFFERS))
        fds = [str(b.fd) for b in self.buffers]
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", BOOT.format(root=root), str(request_r), str(reply_w), *fds],
                pass_fds=(request_r, reply_w, *(b.fd for b in self.buffers)), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except BaseException:
            os.close(request_w)
            os.close(reply_r)
            for buffer in self.buffers:
                buffer.close()
            raise
        finally:
            os.close(request_r)
            os.close(reply_w)
        self._requests = Connection(request_w, readable=False)
        self._replies = Connection(reply_r, writable=False)
        self._lock = threading.Lock()  # kill() may come from another thread than the one asking
        self.ready = False
        self.broken = False
        self.opened: tuple | None = None  # (path, password, engine) of the document it has open
        self.rss = 0
        self.peak_rss: int | None = None  # bytes, noted when it is stopped

    @property
    def alive(self) -> bool:
        return not self.broken and self.process.poll() is None

    def send(self, request: tuple) -> bool:
        """Send a request; False when the worker is gone."""
        try:
            self._requests.send_bytes(marshal.dumps(request))
            return True
        except (OSError, ValueError):  # BrokenPipeError: it died; ValueError: closed here
            self.broken = True
            return False

    def receive(self, seconds: float) -> tuple | str:
        """The next reply, or TIMED_OUT when none came within ``seconds``, or GONE when the worker died."""
        try:
            if not self.ready:  # the first message is the worker's "ready", after its imports
                if not self._replies.poll(START_S):
                    return TIMED_OUT
                self._replies.recv_bytes()
                self.ready = True
            if not self._replies.poll(max(0.0, seconds)):
                return TIMED_OUT
            reply = marshal.loads(self._replies.recv_bytes())
        except (EOFError, OSError, ValueError):
            self.broken = True
            return GONE
        self.rss = reply[2]
        return reply

    def kill(self) -> None:
        """Stop the process now, noting the peak memory it reached (safe from any thread; the owner still
        calls ``close``)."""
        with self._lock:
            self.broken = True
            if self.process.returncode is None:
                self.peak_rss = max(self.peak_rss or 0, _peak_of(self.process.pid))
                try:
                    self.process.send_signal(signal.SIGKILL)
                except OSError:
                    pass

    def close(self) -> None:
        """Kill, reap, and free the pipes and the buffers."""
        self.kill()
        with self._lock:
            self.process.wait()
        for closing in (self._requests.close, self._replies.close, *(b.close for b in self.buffers)):
            try:
                closing()
            except OSError:
                pass


class Pool:
    """The workers of one run: a document leases one, gives it back when closed; ``close`` stops them all."""

    IDLE = 1  # documents are opened one after another: one idle worker serves the next

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[Worker] = []
        self._leased: set[Worker] = set()
        self.closed = False
        self.started = 0  # workers started
        self.peak_rss = 0  # the most memory a stopped worker reached, bytes

    def warm(self) -> None:
        """Start a worker now, so that its start overlaps whatever the run does before its first PDF."""
        with self._lock:
            if not self.closed and not self._idle and not self._leased:
                self._idle.append(self._start())

    def lease(self) -> Worker:
        with self._lock:
            if self.closed:
                raise ending()
            worker = self._idle.pop() if self._idle else None
            if worker is not None and not worker.alive:
                self._stop(worker)
                worker = None
            worker = worker or self._start()
            self._leased.add(worker)
            return worker

    def release(self, worker: Worker) -> None:
        with self._lock:
            self._leased.discard(worker)
            if not self.closed and worker.alive and worker.rss < RETIRE_RSS and len(self._idle) < self.IDLE:
                self._idle.append(worker)
                return
        self._stop(worker)

    def close(self) -> None:
        """Stop every worker: idle ones now, leased ones by a kill that wakes whoever waits on them."""
        with self._lock:
            self.closed = True
            idle, leased = self._idle, list(self._leased)
            self._idle = []
        for worker in leased:
            worker.kill()
        for worker in idle:
            self._stop(worker)

    def _stop(self, worker: Worker) -> None:
        worker.close()
        self.peak_rss = max(self.peak_rss, worker.peak_rss or 0)

    def _start(self) -> Worker:
        self.started += 1
        return Worker()


def _peak_of(pid: int) -> int:
    """A live process's peak resident memory in bytes (VmHWM: its own since exec; getrusage's ru_maxrss
    would carry the RSS of the process it was forked from, a pytest or a docvision holding a model)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
