"""One PDF's pages, read and drawn by a worker process under a deadline and a memory limit.

In: a PDF's path and password, a Budget (from IngestOptions.timeout), page indices and pixel sizes. Out:
a page's visible rectangle and words (``Session.read``), its pixels as an exact-size RGB PIL image
(``Session.draw``, of the whole page or of any clip of it), or PageFailed with one line saying why:
too slow, too much memory, the reader stopped, or MuPDF's own error. The processes are
``ingest.pdfpool``'s; what runs in them is ``ingest.pdfworker``.

Cost: pixels travel through a buffer MuPDF draws into directly, so the only copy is the one into the
PIL image, which in-process rendering makes too. While docvision copies the pixels of page N, the worker
already reads page N+1 (the read ahead), so the two processes overlap. Waiting on the worker's pipe
does not hold the GIL: pages are drawn while a model runs in this process.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from docvision.ingest.pdfpool import TIMED_OUT, Pool, Worker, ending

if TYPE_CHECKING:
    from PIL import Image

# A draw of at most this many pixels (US Letter at 300 dpi) gets the whole --timeout; a larger one gets
# more in proportion: drawing time grows with the pixels.
REFERENCE_PIXELS = 2550 * 3300
# Memory a page may use beyond what the worker holds: 2 GiB for its content (decoded images, fonts, the
# display list) -- measured worker peaks: 69 MB for a 50-page vector report drawn at HD-55, 192 MB for a
# 600 dpi Letter JPEG scan, 402 MB for the same scan stored with Flate (MuPDF keeps the decoded 100 MB
# image and its scaled copies) --, plus 16 bytes per drawn pixel (the 3-byte output and transparency
# groups' 4-byte layers). The issue's XObject bomb grows ~26 MB/s: the 60 s --timeout ends it first.
READ_BYTES = 2 << 30
PIXEL_BYTES = 16
CLOSE_GRACE_S = 1.0  # how long a closing document waits for a read ahead before stopping its worker


class PageFailed(Exception):
    """A page could not be read or drawn; the message says why in a few words."""


@dataclass(frozen=True)
class Budget:
    """What one request may take: seconds and bytes, for a read and for a draw of a given size."""

    seconds: float
    read_bytes: int = READ_BYTES
    pixel_bytes: int = PIXEL_BYTES

    def read(self) -> tuple[float, int]:
        return self.seconds, self.read_bytes

    def draw(self, width: int, height: int) -> tuple[float, int]:
        pixels = width * height
        return self.seconds * max(1.0, pixels / REFERENCE_PIXELS), self.read_bytes + self.pixel_bytes * pixels


@dataclass
class PageInfo:
    """A read page: visible rectangle and words in points, scanned, MuPDF's complaints."""

    rect: tuple[float, float, float, float]
    words: list[tuple[float, float, float, float, str]]
    scanned: bool
    damage: list[str]


class Session:
    """One PDF's pages, read and drawn by a worker leased at the first request; ``close`` gives it back.

    ``order`` is the page indices in the order the document will ask for them (for the read ahead);
    ``pools()`` gives the run's Pool, or None (then the session starts a pool of its own).
    """

    def __init__(self, path: str, password: str | None, budget: Budget, order: list[int],
                 pools: Callable[[], Pool | None]) -> None:
        self.key = (os.fsencode(os.path.abspath(path)), password)
        self.budget, self._pools = budget, pools
        self._next = dict(zip(order, order[1:]))
        self._first = order[0] if order else 0
        self._lock = threading.Lock()
        self._pool: Pool | None = None
        self._own_pool = False
        self._worker: Worker | None = None
        self._ahead: tuple[int, float] | None = None  # the page read ahead: index, deadline (monotonic)
        self._read: dict[int, PageInfo | PageFailed] = {}

    def read(self, index: int) -> PageInfo:
        """Read a page: its rectangle, words, whether it is a scan, MuPDF's complaints."""
        with self._lock:
            self._collect()
            found = self._read.pop(index, None)
            if found is None:
                worker = self._ready()
                seconds, allowance = self.budget.read()
                worker.send(("read", allowance, seconds, index))
                found = self._outcome(worker, seconds, "read", allowance)
        if isinstance(found, PageFailed):
            raise found
        return found

    def draw(self, index: int, width: int, height: int, clip=None) -> tuple["Image.Image", list[str]]:
        """Draw a page (or ``clip``, points on the visible page, which may reach past it: white there) at
        exactly width x height pixels; return the image and MuPDF's complaints while drawing."""
        seconds, allowance = self.budget.draw(width, height)
        with self._lock:
            self._collect()
            worker = self._ready()
            worker.reserve(width * height * 3)
            clip = None if clip is None else tuple(map(float, clip))
            worker.send(("draw", allowance, seconds, index, width, height, clip, worker.capacity))
            result = self._outcome(worker, seconds, "draw", allowance)
            if isinstance(result, PageFailed):
                raise result
            self._read_ahead(worker, index)
            image = worker.image(width, height)
            worker.trim()
        return image, result

    def close(self) -> None:
        """Give the worker back (stopping it if it is still busy reading ahead after a short wait)."""
        with self._lock:
            worker, self._worker = self._worker, None
            if worker is not None and self._ahead is not None:
                if not isinstance(worker.receive(min(CLOSE_GRACE_S, self._ahead[1] - time.monotonic())), tuple):
                    worker.kill()
            self._ahead = None
            if worker is not None:
                self._pool.release(worker)
            if self._own_pool:
                self._pool.close()

    # -- inside the lock --------------------------------------------------------------------------------

    def _ready(self) -> Worker:
        """A live worker with this document open."""
        if self._worker is not None and not self._worker.alive:
            self._drop()
        if self._worker is None:
            if self._pool is None:
                self._pool = self._pools()
                if self._pool is None or self._pool.closed:
                    self._pool, self._own_pool = Pool(), True
            self._worker = self._pool.lease()
        worker = self._worker
        if worker.opened != self.key:
            seconds, allowance = self.budget.read()
            worker.send(("open", allowance, seconds, *self.key, self._first))
            result = self._outcome(worker, seconds, "open", allowance)
            if isinstance(result, PageFailed):
                raise result
            worker.opened = self.key
        return worker

    def _read_ahead(self, worker: Worker, index: int) -> None:
        following = self._next.get(index)
        if following is None or following in self._read or self._ahead is not None:
            return
        seconds, allowance = self.budget.read()
        if worker.send(("read", allowance, seconds, following)):
            self._ahead = (following, time.monotonic() + seconds)

    def _collect(self) -> None:
        """Take the reply of the read ahead, if one is out, before asking anything else."""
        if self._ahead is None:
            return
        index, deadline = self._ahead
        self._ahead = None
        self._read[index] = self._outcome(self._worker, deadline - time.monotonic(), "read",
                                          self.budget.read_bytes, seconds=self.budget.seconds)

    def _outcome(self, worker: Worker, wait: float, what: str, allowance: int, seconds: float | None = None):
        """The reply's result, or a PageFailed saying why; a worker that timed out, ran out of memory or
        died is dropped (the next request starts a fresh one)."""
        reply = worker.receive(wait)
        if isinstance(reply, tuple) and reply[0] == "ok":
            return PageInfo(*reply[1]) if what == "read" else reply[1]
        if isinstance(reply, tuple) and reply[0] == "error":
            return PageFailed(reply[1])
        self._drop()
        if self._pool is not None and self._pool.closed:
            raise ending()
        doing = {"open": "opening the file", "read": "reading it", "draw": "drawing it"}[what]
        if reply == TIMED_OUT:
            return PageFailed(f"{doing} took over {seconds or wait:g} s, the limit --timeout sets: too complex, "
                              "or made to exhaust readers")
        if isinstance(reply, tuple):  # "memory": the worker's allocation failed at its limit
            return PageFailed(f"{doing} needed over {allowance / 2**20:,.0f} MB of memory, the limit for a page: "
                              "too complex, or made to exhaust readers")
        return PageFailed(f"the PDF reader stopped while {doing} ({_how(worker.process.returncode)})")

    def _drop(self) -> None:
        worker, self._worker = self._worker, None
        self._ahead = None
        if worker is not None:
            worker.kill()
            self._pool.release(worker)


def _how(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"
