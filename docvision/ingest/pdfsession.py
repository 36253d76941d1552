"""One PDF's pages, read and drawn by a worker process under a deadline and a memory limit.

In: a PDF's path and password, a Budget (from IngestOptions.timeout), page indices and pixel sizes. Out:
a page's visible rectangle and words (``Session.read``), its pixels as an exact-size RGB PIL image
(``Session.draw``, of the whole page or of any clip of it), or PageFailed with one line saying why:
too slow, too much memory, the reader stopped, or MuPDF's own error. The processes are
``ingest.pdfpool``'s; what runs in them is ``ingest.pdfworker``.

Cost: pixels travel through buffers MuPDF draws into directly, so the only copy is the one into the
PIL image, which in-process rendering makes too. While docvision copies the pixels of page N, the worker
already reads the next two pages (and draws them, for a caller drawing page after page), so the two
processes overlap. Waiting on the worker's pipe does not hold the GIL: pages are drawn while a model
runs in this process. Measured costs are in docs/pdf.md.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from docvision.ingest.pdfpool import KEEP_BUFFER, TIMED_OUT, Pool, Worker, ending

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
# Pages asked for ahead of their turn (read, and drawn at the last page's size when theirs is the same):
# with two, the worker always has the next request queued when it finishes one, and never waits for
# this process to wake up and ask (milliseconds on a loaded machine). Each needs a pixel buffer
# (pdfpool.BUFFERS = AHEAD + 1: one more is being copied).
AHEAD = 2
CLOSE_GRACE_S = 1.0  # how long a closing document waits for work ahead before stopping its worker


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


@dataclass
class _Asked:
    """A request sent whose reply has not been taken yet."""

    key: tuple  # ("open",), ("read", index) or ("draw", index, width, height, clip, slot)
    what: str  # "open", "read" or "draw", for messages
    seconds: float
    allowance: int
    sent: float  # time.monotonic()


class Session:
    """One PDF's pages, read and drawn by a worker leased at the first request; ``close`` gives it back.

    ``order`` is the page indices in the order the document will ask for them; ``pools()`` gives the
    run's Pool, or None (then the session starts a pool of its own); ``engine`` "pdfium" has PDFium read
    every page (MuPDF cannot open the document), else MuPDF does with PDFium's second opinion.

    Ahead of their turn: once page N is drawn, the worker reads pages N+1 and N+2 and, when the caller
    draws page after page, draws those that are the size of page N at the same pixel size into other
    buffers, while this process copies page N's pixels and its caller works on them. A guess that
    turns out wrong costs at most those draws.
    """

    def __init__(self, path: str, password: str | None, budget: Budget, order: list[int],
                 pools: Callable[[], Pool | None], engine: str = "mupdf") -> None:
        self.key = (os.fsencode(os.path.abspath(path)), password, engine)  # engine: "mupdf", or "pdfium" alone
        self.budget, self._pools = budget, pools
        self._next = dict(zip(order, order[1:]))
        self._first = order[0] if order else 0
        self._lock = threading.Lock()
        self._pool: Pool | None = None
        self._own_pool = False
        self._worker: Worker | None = None
        self._asked: deque[_Asked] = deque()  # in the order the worker answers them
        # key -> PageInfo, damage list, None (a draw ahead declined) or PageFailed
        self._done: dict[tuple, object] = {}
        self._last = 0.0  # when the last reply was taken: the next request started no earlier
        self._guesses: dict[int, tuple] = {}  # page index -> the key of its draw ahead of its turn
        self._drawn: int | None = None  # the page drawn last
        self._rects: dict[int, tuple] = {}

    def read(self, index: int) -> PageInfo:
        """Read a page: its rectangle, words, whether it is a scan, MuPDF's complaints."""
        seconds, allowance = self.budget.read()
        with self._lock:
            found = self._result(("read", index), "read", seconds, allowance,
                                 lambda worker: ("read", allowance, seconds, index))
            if isinstance(found, PageInfo):
                self._rects[index] = tuple(found.rect)
        if isinstance(found, PageFailed):
            raise found
        return found

    def draw(self, index: int, width: int, height: int, clip=None) -> tuple["Image.Image", list[str]]:
        """Draw a page (or ``clip``, points on the visible page, which may reach past it: white there) at
        exactly width x height pixels; return the image and MuPDF's complaints while drawing."""
        seconds, allowance = self.budget.draw(width, height)
        clip = None if clip is None else tuple(map(float, clip))
        with self._lock:
            guess = self._guesses.pop(index, None)
            result = self._take(guess) if guess is not None else None
            hit = guess is not None and guess[1:5] == (index, width, height, clip)
            if hit and isinstance(result, (list, PageFailed)):
                slot = guess[5]
            else:
                for other in list(self._guesses.values()):  # off the sequence: the other guesses are wrong too
                    self._take(other)
                self._guesses.clear()
                slot = 0
                result = self._result(
                    ("draw", index, width, height, clip, slot), "draw", seconds, allowance,
                    lambda worker: ("draw", allowance, seconds, index, width, height, clip, slot,
                                    worker.buffers[slot].reserve(width * height * 3)))
            if isinstance(result, PageFailed):
                raise result
            worker = self._worker
            if clip is None:
                # Draws are guessed only for a caller drawing page after page (a render, a summary), not
                # for one picking pages here and there (routed questions): its guesses would be waste.
                sequential = self._drawn is not None and self._next.get(self._drawn) == index
                self._drawn = index
                self._ahead(worker, index, width, height, slot, guess=sequential)
            image = worker.buffers[slot].image(width, height)
            worker.buffers[slot].trim()
        return image, result

    def close(self) -> None:
        """Give the worker back (stopped instead when it is still busy ahead after a short wait)."""
        with self._lock:
            worker, self._worker = self._worker, None
            until = time.monotonic() + CLOSE_GRACE_S
            while worker is not None and self._asked:
                self._asked.popleft()
                if not isinstance(worker.receive(until - time.monotonic()), tuple):
                    worker.kill()
                    break
            self._asked.clear()
            self._done.clear()
            self._guesses.clear()
            if worker is not None:
                self._pool.release(worker)
            if self._own_pool:
                self._pool.close()

    # -- inside the lock --------------------------------------------------------------------------------

    def _result(self, key: tuple, what: str, seconds: float, allowance: int, request: Callable[[Worker], tuple]):
        """The result for ``key``: taken if it was asked ahead, else asked now (again, when it was lost
        with a worker that failed an earlier request)."""
        for _ in range(2):
            if not self._pending(key):
                worker = self._ready()
                self._send(worker, key, what, seconds, allowance, request(worker))
            found = self._take(key)
            if found is not _LOST:
                return found
        return PageFailed(f"the PDF reader stopped while {_DOING[what]}")

    def _pending(self, key: tuple) -> bool:
        return key in self._done or any(asked.key == key for asked in self._asked)

    def _send(self, worker: Worker, key: tuple, what: str, seconds: float, allowance: int, request: tuple) -> None:
        if worker.send(request):
            self._asked.append(_Asked(key, what, seconds, allowance, time.monotonic()))

    def _take(self, key: tuple):
        """Wait for the replies up to ``key``'s (the worker answers in order) and return its result, or
        _LOST when it was lost with a worker that failed an earlier request.

        A request started no earlier than it was sent nor than the reply before it was taken, so its
        deadline counts from the later of the two: never too early, at worst late by the requests
        still out ahead of it.
        """
        while key not in self._done:
            if not any(asked.key == key for asked in self._asked):
                return _LOST
            asked = self._asked.popleft()
            reply = self._worker.receive(max(asked.sent, self._last) + asked.seconds - time.monotonic())
            self._last = time.monotonic()
            self._done[asked.key] = self._outcome(reply, asked)
        return self._done.pop(key)

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
            self._send(worker, ("open",), "open", seconds, allowance,
                       ("open", allowance, seconds, *self.key[:2], self._first, self.key[2]))
            result = self._take(("open",))
            if isinstance(result, PageFailed):
                raise result
            if result is _LOST or self._worker is not worker:
                raise PageFailed("the PDF reader stopped while opening the file")
            worker.opened = self.key
        return worker

    def _ahead(self, worker: Worker, index: int, width: int, height: int, slot: int, guess: bool) -> None:
        """Ask for the reads of the next AHEAD pages and, with ``guess``, their draws at this size where
        they turn out to be this page's size, into buffers other than ``slot`` (being copied) and those
        of guesses still out; guesses for pages no longer ahead are dropped."""
        upcoming, following = [], index
        for _ in range(AHEAD):
            following = self._next.get(following)
            if following is None:
                break
            upcoming.append(following)
        for page in [page for page in self._guesses if page not in upcoming]:
            self._take(self._guesses.pop(page))  # answered already: the worker answers in order
        rect = self._rects.get(index)
        guess = guess and rect is not None and width * height * 3 <= KEEP_BUFFER  # large draws: memory
        taken = {slot, *(key[5] for key in self._guesses.values())}
        for following in upcoming:
            if not worker.alive:
                return
            seconds, allowance = self.budget.read()
            key = ("read", following)
            if not self._pending(key):
                self._send(worker, key, "read", seconds, allowance, ("read", allowance, seconds, following))
            free = [n for n in range(len(worker.buffers)) if n not in taken]
            if not guess or following in self._guesses or not free:
                continue
            taken.add(free[0])
            seconds, allowance = self.budget.draw(width, height)
            key = ("draw", following, width, height, None, free[0])
            capacity = worker.buffers[free[0]].reserve(width * height * 3)
            self._send(worker, key, "draw", seconds, allowance,
                       ("draw", allowance, seconds, following, width, height, None, free[0], capacity, rect))
            self._guesses[following] = key

    def _outcome(self, reply, asked: _Asked):
        """A reply's result, or a PageFailed saying why; a worker that timed out, ran out of memory or
        died is dropped (the next request starts a fresh one) with the requests it still had."""
        if isinstance(reply, tuple) and reply[0] == "ok":
            return PageInfo(*reply[1]) if asked.what == "read" else reply[1]
        if isinstance(reply, tuple) and reply[0] == "error":
            return PageFailed(plain(reply[1]))
        code = self._drop()
        if self._pool is not None and self._pool.closed:
            raise ending()
        doing = _DOING[asked.what]
        if reply == TIMED_OUT or code == -signal.SIGALRM:
            return PageFailed(f"{doing} took over {asked.seconds:g} s, the limit --timeout sets: too complex, "
                              "or made to exhaust readers")
        if isinstance(reply, tuple):  # "memory": the worker's allocation failed at its limit
            return PageFailed(f"{doing} needed over {asked.allowance / 2**20:,.0f} MB of memory, the limit for "
                              "a page: too complex, or made to exhaust readers")
        return PageFailed(f"the PDF reader stopped while {doing} ({_how(code)})")

    def _drop(self) -> int | None:
        """Stop the worker (its unanswered requests are lost); return its exit status."""
        worker, self._worker = self._worker, None
        self._asked.clear()
        self._guesses.clear()
        if worker is None:
            return None
        worker.kill()
        self._pool.release(worker)
        return worker.process.returncode


_DOING = {"open": "opening the file", "read": "reading it", "draw": "drawing it"}
# MuPDF's complaints, by what they mention, in a reader's words (its own text is for its developers).
_PLAIN = (
    (("cycle", "recursion", "recursive"), "a drawing on it refers to itself"),
    (("page tree", "find page", "number of pages", "kids", "page object"), "the file's list of pages is damaged"),
    (("font", "glyph", "cmap"), "a font in it is damaged"),
    (("image", "jpx", "jbig2", "jpeg", "dct", "flate", "zlib", "lzw", "ascii", "filter", "decode", "inflate",
      "stream"), "compressed data in it is damaged or cut short"),
    (("xref", "object", "trailer", "indirect"), "parts of the file it refers to are missing or damaged"),
    (("syntax", "keyword", "operator", "token", "content", "expected", "unknown"), "its drawing instructions are "
     "malformed"),
)


def plain(message: str) -> str:
    """What a PDF reader's complaint means for the page, in a reader's words."""
    lowered = message.lower()
    for words, meaning in _PLAIN:
        if any(word in lowered for word in words):
            return meaning
    return "its content is malformed"
_LOST = object()  # a request that went with a worker stopped before answering it


def _how(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"
