"""Pages of a LibreOffice PDF as docvision Pages: labelled, trimmed to what was drawn, cut into segments.

In: an open PyMuPDF document, which of its pages to show under which labels, the resolution and the
largest segment side in source pixels. Out: Pages whose ``render(w, h)`` draws only their clip of the
PDF page, straight at the zoom that gives w x h pixels, with the words inside that clip as anchors.

Why not the PDF ingestor's pages: a sheet rendered on one page can be tens of thousands of pixels
tall, and the model needs it in segments ("Sheet1 (segment 2/5)") drawn one clip at a time; and
LibreOffice 7.4 draws only the first ~15,300 points of a taller single-page sheet (the rest of the
page stays blank), so such a page is trimmed to its drawn part and the cut is reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from docvision.document import Page, Word
from docvision.ingest.pdf import pixmap_image, quiet_pymupdf

if TYPE_CHECKING:
    import pymupdf
    from PIL import Image

POINTS_PER_INCH = 72.0
# Pages longer than this (the PDF 1.x page-size limit, past which LibreOffice scales by UserUnit)
# are checked for an undrawn blank tail.
LONG_PAGE_POINTS = 14400.0
TRIM_MARGIN_POINTS = 12.0


@dataclass
class Sheet:
    """One PDF page to show: its 0-based index in the PDF and its label ("Sales", "slide 2")."""

    index: int
    label: str


def fitz():
    """PyMuPDF, imported lazily and told not to print MuPDF's complaints on stderr."""
    return quiet_pymupdf()


def drawn_area(page: "pymupdf.Page") -> tuple["pymupdf.Rect", str | None]:
    """The part of the page worth showing, and a warning when LibreOffice left a long page's tail undrawn."""
    rect = page.rect
    if rect.height <= LONG_PAGE_POINTS and rect.width <= LONG_PAGE_POINTS:
        return rect, None
    boxes = [box for _kind, box in page.get_bboxlog()]
    if not boxes:
        return rect, None
    right = min(rect.x1, max(b[2] for b in boxes) + TRIM_MARGIN_POINTS)
    bottom = min(rect.y1, max(b[3] for b in boxes) + TRIM_MARGIN_POINTS)
    area = type(rect)(rect.x0, rect.y0, right, bottom)
    shown = (area.width * area.height) / (rect.width * rect.height)
    if shown > 0.95:
        return rect, None
    note = (f"LibreOffice drew only the top-left {bottom / rect.height:.0%} of the height and "
            f"{right / rect.width:.0%} of the width of this very large sheet; the rest is not shown")
    return area, note


def clips(area: "pymupdf.Rect", dpi: float, segment: int) -> list["pymupdf.Rect"]:
    """Cut ``area`` into a grid of equal clips of at most ``segment`` source pixels a side, row-major."""
    zoom = dpi / POINTS_PER_INCH
    cols = max(1, math.ceil(area.width * zoom / segment))
    rows = max(1, math.ceil(area.height * zoom / segment))
    w, h = area.width / cols, area.height / rows
    rect = type(area)
    return [rect(area.x0 + c * w, area.y0 + r * h, area.x0 + (c + 1) * w, area.y0 + (r + 1) * h)
            for r in range(rows) for c in range(cols)]


def _words(page: "pymupdf.Page", clip: "pymupdf.Rect", zoom: float) -> tuple[Word, ...]:
    """Words whose centre lies in ``clip``, boxes in the clip's source pixels."""
    words = []
    for x0, y0, x1, y1, text, *_ in page.get_text("words", clip=clip, sort=False):
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        if clip.x0 <= cx < clip.x1 and clip.y0 <= cy < clip.y1:
            box = (max(x0, clip.x0) - clip.x0, max(y0, clip.y0) - clip.y0,
                   min(x1, clip.x1) - clip.x0, min(y1, clip.y1) - clip.y0)
            words.append(Word(text, tuple(v * zoom for v in box)))
    return tuple(words)


def _render(doc: "pymupdf.Document", index: int, clip: "pymupdf.Rect", width: int, height: int) -> "Image.Image":
    """Draw ``clip`` of page ``index`` at exactly width x height pixels, RGB."""
    pm = fitz()
    page = doc.load_page(index)
    matrix = pm.Matrix(width / clip.width, height / clip.height)
    pix = page.get_pixmap(matrix=matrix, clip=clip, alpha=False, colorspace=pm.csRGB)
    return pixmap_image(pix, width, height)


@dataclass
class Layout:
    """Where each shown PDF page goes: its clips and the number of its first Page."""

    sheet: Sheet
    clips: list
    first_number: int
    note: str | None


def lay_out(doc: "pymupdf.Document", sheets: list[Sheet], dpi: float, segment: int) -> list[Layout]:
    """Measure every shown page once (cheap: no drawing) so the page count is known up front."""
    layouts, number = [], 1
    for sheet in sheets:
        area, note = drawn_area(doc.load_page(sheet.index))
        parts = clips(area, dpi, segment)
        layouts.append(Layout(sheet, parts, number, note))
        number += len(parts)
    return layouts


def pages(doc: "pymupdf.Document", layouts: list[Layout], dpi: float) -> Iterator[Page]:
    """Yield one Page per clip, labelled "Sheet" or "Sheet (segment i/n)", numbered in layout order."""
    zoom = dpi / POINTS_PER_INCH
    for layout in layouts:
        page = doc.load_page(layout.sheet.index)
        total = len(layout.clips)
        for i, clip in enumerate(layout.clips):
            label = layout.sheet.label if total == 1 else f"{layout.sheet.label} (segment {i + 1}/{total})"
            size = (max(1, round(clip.width * zoom)), max(1, round(clip.height * zoom)))
            index = layout.sheet.index
            yield Page(
                label=label, number=layout.first_number + i, size=size,
                render=lambda w, h, index=index, clip=clip: _render(doc, index, clip, w, h),
                words=_words(page, clip, zoom),
                warnings=[layout.note] if layout.note and i == 0 else [],
            )
