"""PDFium (through pypdfium2): the second PDF engine, asked before a page MuPDF cannot draw is called damaged.

In: a PDF's path and password, page indices, exact pixel sizes and a pixel buffer. Out: what
``pdfworker`` answers for MuPDF, in the same terms: a page's visible rectangle in points (origin at its
top left, cropped and rotated as a viewer shows it), its words in those points, whether it is a scan;
and its pixels drawn straight into the worker's shared buffer as packed RGB rows.

Why a second engine: MuPDF gives up on pages that PDFium (Chrome's PDF engine) draws whole -- a Type3
glyph that draws itself, a filter chain of zero length -- and MuPDF will not open a document whose
attachments alone are encrypted, which PDFium opens without a password (docs/pdf.md). It runs in the
worker process only, inside the same request as MuPDF, so the request's deadline and memory limit
hold for both engines: a page PDFium chokes on ends like any other, with the worker.

Imports only pypdfium2 and the standard library. Pages are interpreted in the worker only; docvision
itself asks ``opens`` whether PDFium opens a file MuPDF will not (the xref and page tree, no content).
"""

from __future__ import annotations

import ctypes
import mmap
import os

# A page counts as scanned when it has no words and one image covers at least this much of it
# (pdfworker.SCANNED_COVERAGE, repeated: this module must not import the worker's).
SCANNED_COVERAGE = 0.6
_DEVICE = 1000  # FPDF_PageToDevice maps to whole device pixels: points are mapped at 1000 units per point
_SPACES = frozenset(" \t\r\n\x00\xa0\u2002\u2003\u2009\u200b\u3000")


class PdfiumDocument:
    """One PDF opened by PDFium; pages are loaded when first asked for and kept while the document is open."""

    def __init__(self, path: str, password: str | None) -> None:
        import pypdfium2 as pdfium

        self.raw = pdfium.raw
        try:
            path.encode("utf-8")
            opened = path
        except UnicodeEncodeError:  # a name that is not UTF-8 (pdfworker.openable): PDFium reads the open file
            opened = open(os.fsencode(path), "rb")  # noqa: SIM115 - closed by PDFium's document (autoclose)
        self.doc = pdfium.PdfDocument(opened, password=password or None, autoclose=True)
        self.pages: dict[int, object] = {}

    def __len__(self) -> int:
        return len(self.doc)

    def page(self, index: int):
        """PDFium's page ``index`` (loaded now if need be); PdfiumError when PDFium cannot load it."""
        if index not in self.pages:
            while len(self.pages) >= 2:  # like the worker's display lists: the page read last and the one ahead
                self.pages.pop(next(iter(self.pages))).close()
            self.pages[index] = self.doc[index]
        return self.pages[index]

    def has_content(self, index: int) -> bool:
        """True when PDFium loads the page and finds something on it to draw (content or annotations)."""
        page = self.page(index).raw
        return self.raw.FPDFPage_CountObjects(page) > 0 or self.raw.FPDFPage_GetAnnotCount(page) > 0

    def read_rect(self, index: int) -> tuple[float, float, float, float]:
        """The visible page in points, origin at its top left."""
        width, height = self.page(index).get_size()
        return 0.0, 0.0, float(width), float(height)

    def read(self, index: int) -> tuple:
        """(visible rect in points, words [(x0, y0, x1, y1, text)] on it, scanned, complaints: none)."""
        page, rect = self.page(index), self.read_rect(index)
        words = self._words(page, rect[2], rect[3])
        scanned = not words and self._mostly_image(page, rect[2] * rect[3])
        return rect, words, scanned, []

    def draw(self, index: int, width: int, height: int, clip, buffer: mmap.mmap) -> None:
        """Draw ``clip`` (points on the visible page; the whole page when None) at exactly width x height
        into ``buffer`` as packed RGB rows, white where nothing is drawn."""
        raw, page = self.raw, self.page(index)
        x0, y0, x1, y1 = clip if clip is not None else (0.0, 0.0, *page.get_size())
        sx, sy = width / (x1 - x0), height / (y1 - y0)
        pointer = ctypes.c_char.from_buffer(buffer)  # PDFium draws straight into the shared buffer
        try:
            # BGR with the byte order reversed is packed RGB, the layout docvision reads.
            bitmap = raw.FPDFBitmap_CreateEx(width, height, raw.FPDFBitmap_BGR, ctypes.addressof(pointer), width * 3)
            if not bitmap:
                raise MemoryError(f"PDFium could not set up a {width}x{height} picture")
            try:
                raw.FPDFBitmap_FillRect(bitmap, 0, 0, width, height, 0xFFFFFFFF)
                matrix = raw.FS_MATRIX(sx, 0, 0, sy, -x0 * sx, -y0 * sy)
                box = raw.FS_RECTF(0, 0, width, height)
                raw.FPDF_RenderPageBitmapWithMatrix(bitmap, page.raw, matrix, box,
                                                    raw.FPDF_ANNOT | raw.FPDF_REVERSE_BYTE_ORDER)
            finally:
                raw.FPDFBitmap_Destroy(bitmap)
        finally:
            del pointer  # the buffer can be unmapped again once no pointer into it is left

    def close(self) -> None:
        for page in self.pages.values():
            page.close()
        self.pages.clear()
        self.doc.close()

    def _words(self, page, width: float, height: float) -> list[tuple[float, float, float, float, str]]:
        """The page's words on the visible page in points: characters between spaces, boxes joined."""
        raw = self.raw
        text = page.get_textpage()
        try:
            to_page = _PageMap(raw, page.raw, width, height)
            words, chars, box = [], [], None
            for i in range(text.count_chars()):
                char = chr(raw.FPDFText_GetUnicode(text.raw, i) or 32)
                if char in _SPACES or raw.FPDFText_IsGenerated(text.raw, i) == 1:
                    if chars:
                        words.append((*box, "".join(chars)))
                    chars, box = [], None
                    continue
                a = to_page(*text.get_charbox(i))
                box = a if box is None else (min(box[0], a[0]), min(box[1], a[1]), max(box[2], a[2]), max(box[3], a[3]))
                chars.append(char)
            if chars:
                words.append((*box, "".join(chars)))
            return words
        finally:
            text.close()

    def _mostly_image(self, page, area: float) -> bool:
        """True when one image on the page covers most of it (a scanned page has no text layer)."""
        if area <= 0:
            return False
        for image in page.get_objects(filter=[self.raw.FPDF_PAGEOBJ_IMAGE], max_depth=2):
            left, bottom, right, top = image.get_bounds()
            if (right - left) * (top - bottom) >= SCANNED_COVERAGE * area:
                return True
        return False


class _PageMap:
    """PDF user space (PDFium's character boxes) to points on the visible page, rotation and crop applied."""

    def __init__(self, raw, page, width: float, height: float) -> None:
        self.raw, self.page = raw, page
        self.size = (round(width * _DEVICE), round(height * _DEVICE))
        self.x, self.y = ctypes.c_int(), ctypes.c_int()

    def point(self, px: float, py: float) -> tuple[float, float]:
        self.raw.FPDF_PageToDevice(self.page, 0, 0, *self.size, 0, px, py, ctypes.byref(self.x), ctypes.byref(self.y))
        return self.x.value / _DEVICE, self.y.value / _DEVICE

    def __call__(self, left: float, bottom: float, right: float, top: float) -> tuple[float, float, float, float]:
        (ax, ay), (bx, by) = self.point(left, bottom), self.point(right, top)
        return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)


def opens(path: str, password: str | None) -> int | None:
    """The page count when PDFium opens the file (with ``password``, or none), else None."""
    try:
        document = PdfiumDocument(path, password)
    except Exception:  # noqa: BLE001 - PdfiumError for a file PDFium cannot open, or no pypdfium2
        return None
    try:
        return len(document)
    finally:
        document.close()
