"""The PDF worker process: MuPDF reads and draws pages here, where a page can be stopped without harm.

In: requests on a pipe from ``ingest.pdfpool`` (marshal-encoded tuples, each with a memory allowance and
a deadline), out: one reply per request on a second pipe. Requests: open a PDF, read a page (its visible
rectangle in points, its words in those points, whether it is a scan, MuPDF's complaints) and draw a page,
or any clip of it, at an exact pixel size into a shared buffer (a memfd the parent maps too).

Why a process: MuPDF has no time or memory bound of its own. A 6 KB PDF of 28 nested form XObjects, each
drawing the next twice, asks for 2^28 draws: in-process it ran past 180 s at 4.7 GB and growing. Here
each request runs under an address-space limit (RLIMIT_AS, the allowance the parent computed from the
page's pixels) and an alarm; the parent kills the process at the deadline anyway, the alarm only ends an
orphan. A worker whose parent is gone sees end of file on its request pipe and exits.

Runs as ``python -c`` (see ``pdfpool.BOOT``) and imports only PyMuPDF and the standard library, so it
starts in the time PyMuPDF takes to import (~0.3 s).
"""

from __future__ import annotations

import marshal
import math
import mmap
import os
import re
import resource
import signal
from collections import OrderedDict
from contextlib import contextmanager
from typing import Iterator

# A page counts as scanned when it has no words and one image covers at least this much of it.
SCANNED_COVERAGE = 0.6
# Display lists kept per worker: the page read last (to draw it without interpreting it again, ~20 %
# of a page's cost) and the one read ahead of it.
KEPT_LISTS = 2
# The alarm that ends a worker whose parent stopped watching: the request's deadline plus this.
ORPHAN_GRACE_S = 5
REQUESTS = ("open", "read", "draw")
_ALLOC_FAILED = re.compile(r"\b(?:m|c|re)alloc\b.*\bfailed|out of memory", re.IGNORECASE)


@contextmanager
def openable(path: str) -> Iterator[str]:
    """A name MuPDF can open for ``path``: the path itself, or /dev/fd/N of it when the name is not UTF-8.

    File names are bytes on Linux; Python hands a Latin-1 byte to us as a lone surrogate ("caf\\udce9"),
    which PyMuPDF cannot pass to MuPDF (its argument is UTF-8), so such a file is opened here by its
    bytes and MuPDF is given /dev/fd/N, the same file under a name it can take.
    """
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        fd = os.open(os.fsencode(path), os.O_RDONLY)
        try:
            yield f"/dev/fd/{fd}"
        finally:
            os.close(fd)
        return
    yield path


def is_memory_error(exc: BaseException) -> bool:
    """True for an allocation that failed (MuPDF raises FzErrorSystem "calloc (...) failed" then)."""
    return isinstance(exc, MemoryError) or bool(_ALLOC_FAILED.search(str(exc)))


def resident() -> int:
    """This process's resident memory in bytes."""
    with open("/proc/self/statm", "rb") as fh:
        return int(fh.read().split()[1]) * mmap.PAGESIZE


def _address_space() -> int:
    with open("/proc/self/statm", "rb") as fh:
        return int(fh.read().split()[0]) * mmap.PAGESIZE


class Worker:
    """One open PDF, its last display lists and the pixel buffer; one method per request."""

    def __init__(self, fitz, pixels_fds: tuple[int, ...]) -> None:
        self.fitz = fitz
        self.errors = (RuntimeError, ValueError, fitz.mupdf.FzErrorBase)
        self.pixels_fds = pixels_fds
        self.pixels: list[mmap.mmap | None] = [None] * len(pixels_fds)
        self.doc = None
        self.lists: OrderedDict[int, tuple] = OrderedDict()
        self.path, self.password, self.engine = "", None, "mupdf"
        self.pdfium = None  # the second engine's view of the document, opened when first asked
        self.second: set[int] = set()  # pages PDFium reads and draws: MuPDF called them damaged

    def open(self, path: bytes, password: str | None, first: int, engine: str = "mupdf") -> int:
        """Open the PDF (the parent has already checked it opens); return its page count.

        ``engine`` "pdfium": the document is PDFium's alone (MuPDF cannot open it, or asks for a password
        that only its attachments need). A repaired file's page tree is loaded here, through page
        ``first``, so that MuPDF's complaints about the file are not taken for complaints about that page
        when it is read.
        """
        if self.doc is not None:
            self.doc.close()
        if self.pdfium is not None:
            self.pdfium.close()
        self.doc, self.pdfium, self.lists, self.second = None, None, OrderedDict(), set()
        self.path, self.password, self.engine = os.fsdecode(path), password, engine
        if engine == "pdfium":
            return len(self._pdfium())
        with openable(self.path) as name:
            doc = self.fitz.open(name, filetype="pdf")
        if doc.needs_pass:  # read once, before authenticate(): reading it after blanks decrypted pages
            doc.authenticate(password or "")
        self.doc = doc
        if doc.is_repaired:
            try:
                doc.load_page(first)
            except self.errors:
                pass
        return doc.page_count

    def read(self, index: int) -> tuple:
        """(visible rect in points, words [(x0, y0, x1, y1, text)] on it, scanned, MuPDF's complaints).

        A page MuPDF cannot load, or complains about, is read by PDFium instead when PDFium loads it and
        finds something on it: then it is not damaged, and PDFium draws it too."""
        if self.engine == "pdfium":
            return self._pdfium().read(index)
        self.lists.pop(index, None)
        self.second.discard(index)
        try:
            page = self.doc.load_page(index)
        except self.errors as exc:
            second = None if is_memory_error(exc) else self._second_read(index)
            if second is None:
                raise  # a page that neither engine can load fails the request
            return second
        damage = []
        try:
            # One display list per page: the content stream is interpreted once for the words and the
            # pixels (about 20 % faster than get_text + get_pixmap, measured), and its words come out on
            # the visible page, cropped and rotated like the pixels.
            drawing = page.get_displaylist()
            text = self.fitz.TextPage(drawing.get_textpage(flags=self.fitz.TEXTFLAGS_WORDS))
            words = [(x0, y0, x1, y1, word) for x0, y0, x1, y1, word, *_ in text.extractWORDS()]
        except self.errors as exc:
            if is_memory_error(exc):
                raise
            drawing, words = page, []  # draw straight from the page; it may still partly work
            damage.append(str(exc))
        damage += _complaints(self.fitz)
        second = self._second_read(index) if damage else None
        if second is not None:
            return second
        scanned = not words and self._mostly_image(page)
        self._keep(index, page, drawing)
        return tuple(page.rect), words, scanned, damage

    def _pdfium(self):
        """PDFium's view of the open document (opened now if need be)."""
        if self.pdfium is None:
            from docvision.ingest.pdfium import PdfiumDocument

            self.pdfium = PdfiumDocument(self.path, self.password)
        return self.pdfium

    def _second_read(self, index: int) -> tuple | None:
        """PDFium's reading of a page MuPDF called damaged, or None when PDFium cannot load it or finds
        nothing on it either."""
        try:
            engine = self._pdfium()
            if not engine.has_content(index):
                return None
            result = engine.read(index)
        except MemoryError:
            raise
        except Exception:  # noqa: BLE001 - PdfiumError and whatever else a broken page makes PDFium raise
            return None
        self.second.add(index)
        return result

    def _keep(self, index: int, page, drawing) -> None:
        self.lists[index] = (page, drawing)
        while len(self.lists) > KEPT_LISTS:
            self.lists.popitem(last=False)

    def draw(self, index: int, width: int, height: int, clip, slot: int, capacity: int,
             only_if=None) -> list | None:
        """Draw ``clip`` (points on the visible page; the whole page when None) at exactly width x height
        into pixel buffer ``slot``, packed RGB rows; white where nothing is drawn. Returns MuPDF's
        complaints; None, drawing nothing, when the page's rectangle is not ``only_if`` (a draw ahead
        of its turn, guessed from the page before)."""
        if self.engine == "pdfium" or index in self.second:
            return self._pdfium_draw(index, width, height, clip, slot, capacity, only_if)
        mupdf = self.fitz.mupdf
        if index not in self.lists:
            page = self.doc.load_page(index)
            self._keep(index, page, page)  # no display list: this page is drawn from its content
        page, drawing = self.lists[index]
        if only_if is not None and tuple(page.rect) != tuple(only_if):
            return None
        x0, y0, x1, y1 = clip if clip is not None else tuple(page.rect)
        sx, sy = width / (x1 - x0), height / (y1 - y0)
        buffer = self._buffer(slot, capacity)
        # MuPDF draws straight into the shared buffer: no pixmap of its own, no copy on this side.
        pix = mupdf.fz_new_pixmap_with_bbox_and_data(mupdf.fz_device_rgb(), mupdf.FzIrect(0, 0, width, height),
                                                     mupdf.FzSeparations(), 0,
                                                     mupdf.python_mutable_buffer_data(buffer))
        mupdf.fz_clear_pixmap_with_value(pix, 255)
        device = mupdf.fz_new_draw_device(mupdf.FzMatrix(sx, 0, 0, sy, -x0 * sx, -y0 * sy), pix)
        failure = None
        try:
            if drawing is page:
                mupdf.fz_run_page(page.this, device, mupdf.FzMatrix(), mupdf.FzCookie())
            else:
                mupdf.fz_run_display_list(drawing.this, device, mupdf.FzMatrix(), mupdf.FzRect(x0, y0, x1, y1),
                                          mupdf.FzCookie())
        except self.errors as exc:
            failure = exc
        finally:
            mupdf.fz_close_device(device)  # before PDFium draws: closing flushes into the buffer
            del device, pix
        if failure is not None:
            if is_memory_error(failure) or not self._second_draw(index, width, height, clip, buffer):
                raise failure
            return []
        complaints = _complaints(self.fitz)
        if complaints and self._second_draw(index, width, height, clip, buffer):
            return []
        return complaints

    def _pdfium_draw(self, index: int, width: int, height: int, clip, slot: int, capacity: int, only_if) -> list | None:
        engine = self._pdfium()
        if only_if is not None and engine.read_rect(index) != tuple(only_if):
            return None
        engine.draw(index, width, height, clip, self._buffer(slot, capacity))
        return []

    def _second_draw(self, index: int, width: int, height: int, clip, buffer: mmap.mmap) -> bool:
        """Draw a page MuPDF failed to draw whole with PDFium instead, into the same buffer; False (the
        buffer untouched) when PDFium cannot load the page or finds nothing on it."""
        try:
            engine = self._pdfium()
            if not engine.has_content(index):
                return False
        except MemoryError:
            raise
        except Exception:  # noqa: BLE001 - PdfiumError and whatever else a broken page makes PDFium raise
            return False
        engine.draw(index, width, height, clip, buffer)
        self.second.add(index)
        return True

    def _buffer(self, slot: int, capacity: int) -> mmap.mmap:
        """Pixel buffer ``slot`` mapped at the size the parent gave it (it grows and shrinks it)."""
        mapped = self.pixels[slot]
        if mapped is None or len(mapped) != capacity:
            if mapped is not None:
                mapped.close()
                self.pixels[slot] = None
            try:
                self.pixels[slot] = mapped = mmap.mmap(self.pixels_fds[slot], capacity)
            except OSError as exc:  # ENOMEM: over this request's address-space limit
                raise MemoryError(f"cannot map {capacity:,} bytes of pixels ({exc.strerror})") from None
        return mapped

    def _mostly_image(self, page) -> bool:
        """True when one image on the page covers most of it (a scanned page has no text layer)."""
        area = abs(page.rect)
        if area <= 0:
            return False
        try:
            infos = page.get_image_info()
        except self.errors as exc:
            if is_memory_error(exc):
                raise
            return False
        for info in infos:
            box = page.rect & info["bbox"]  # the part of the image on the visible page
            if not box.is_empty and abs(box) >= SCANNED_COVERAGE * area:
                return True
        return False


def _complaints(fitz) -> list[str]:
    """Drain MuPDF's warning buffer; return its distinct lines."""
    lines: list[str] = []
    for line in fitz.TOOLS.mupdf_warnings(reset=True).splitlines():
        line = line.strip()
        if line and not line.startswith("...") and line not in lines:
            lines.append(line)
    return lines


@contextmanager
def _bounded(allowance: int, seconds: float) -> Iterator[None]:
    """Run one request under an address-space limit (what the process has now plus ``allowance``)."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space() + allowance
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    signal.alarm(math.ceil(seconds) + ORPHAN_GRACE_S)  # SIGALRM's default action ends the process
    try:
        yield
    finally:
        signal.alarm(0)
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


def _answer(worker: Worker, request: tuple) -> tuple:
    """One reply: ("ok", result), ("error", message) or ("memory", message)."""
    op, allowance, seconds, *args = request
    if op not in REQUESTS:
        return ("error", f"unknown request {op!r}", resident())
    _complaints(worker.fitz)  # start with an empty buffer: what MuPDF says below is about this request
    try:
        with _bounded(allowance, seconds):
            result = getattr(worker, op)(*args)
        complaints = _complaints(worker.fitz)
        if op == "read":
            result[3].extend(complaints)
        elif op == "draw" and result is not None:
            result = result + complaints
        return ("ok", result, resident())
    except (MemoryError, *worker.errors) as exc:
        if is_memory_error(exc):
            return ("memory", " ".join(str(exc).split())[:200], resident())
        return ("error", " ".join(str(exc).split())[:300], resident())


def serve(requests_fd: int, replies_fd: int, *pixels_fds: int) -> None:
    """Answer requests until the parent closes its end of the pipe."""
    from multiprocessing.connection import Connection

    import pymupdf

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash leaves no core file of a bomb's memory
    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)
    worker = Worker(pymupdf, pixels_fds)
    inbox = Connection(requests_fd, writable=False)
    outbox = Connection(replies_fd, readable=False)
    outbox.send_bytes(marshal.dumps(("ok", "ready", resident())))
    while True:
        try:
            request = marshal.loads(inbox.recv_bytes())
        except EOFError:
            return
        outbox.send_bytes(marshal.dumps(_answer(worker, request)))


def main(argv: list[str]) -> None:
    serve(*map(int, argv))
