"""Pages of a LibreOffice PDF as docvision Pages: labelled, trimmed to what was drawn, named down to the cell.

In: an open PyMuPDF document and ``Part``s saying which clip of which PDF page each Page shows, under
which label, with which cells. Out: Pages whose ``render(w, h)`` draws only their clip, straight at the
zoom that gives w x h pixels, with the words inside that clip as anchors; a word on a sheet carries
its cell ("Sales!B3") when the converter said where the cells are.

Two producers of Parts: ``layout`` (the warm converter paginated each sheet at row boundaries and
reported every cell edge), and ``lay_out`` here for PDFs from the per-call path, where a sheet is one
page of any height: it is cut into equal clips of at most ``segment`` pixels, after trimming the blank
tail LibreOffice 7.4 leaves on a page taller than ~15,300 pt.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field
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
# The most a sheet is enlarged: 400 % zoom on a 96 dpi screen (5.3 px per point), the most a spreadsheet
# program offers. A small sheet is shown at its own extent with fewer tiles instead of being blown up to
# fill the whole budget (a 3-cell sheet was drawn at 13x its 300 dpi size once) or padded to a square.
MAX_ZOOM_PX_PER_INCH = 4 * 96
_HASHES = re.compile(r"#{2,}")


@dataclass
class Sheet:
    """One PDF page to show: its 0-based index in the PDF and its label ("Sales", "slide 2")."""

    index: int
    label: str


@dataclass
class Cells:
    """The cells a PDF page shows, to name the cell under a word: edges in points from the page's top left."""

    sheet: str
    first_column: int
    first_row: int
    x: list[float]  # len = columns + 1; a hidden column has zero width
    y: list[float]
    filled: dict[int, list[tuple[int, int]]]  # row -> runs (first, last column) of cells that show something
    shapes: list[tuple[float, float, float, float]] = field(default_factory=list)  # charts, pictures: no cell

    def ref(self, box: tuple[float, float, float, float]) -> str | None:
        """The cell a word in ``box`` (page points) belongs to: "Sales!B3", or None outside the cells.

        The cell under the word's centre, or, when that cell is empty (text overflowing from its
        left, a merged cell's heading), the nearest cell in the row that shows something: left first,
        then right, then the nearest above in the column.
        """
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        if any(x0 <= cx <= x1 and y0 <= cy <= y1 for x0, y0, x1, y1 in self.shapes):
            return None
        j, i = bisect.bisect_right(self.x, cx) - 1, bisect.bisect_right(self.y, cy) - 1
        if not (0 <= j < len(self.x) - 1 and 0 <= i < len(self.y) - 1):
            return None
        row, column = self.first_row + i, self.first_column + j
        column = self._owner(row, column)
        if column is None:
            row, column = self._above(row, column if column is not None else self.first_column + j)
        return None if row is None else cell_ref(self.sheet, row, column)

    def _owner(self, row: int, column: int) -> int | None:
        runs = self.filled.get(row, [])
        if any(a <= column <= b for a, b in runs):
            return column
        left = [b for a, b in runs if b < column]
        if left:
            return max(left)
        right = [a for a, b in runs if a > column]
        return min(right) if right else None

    def _above(self, row: int, column: int) -> tuple[int | None, int | None]:
        for r in range(row - 1, max(row - 50, self.first_row - 1), -1):
            if any(a <= column <= b for a, b in self.filled.get(r, [])):
                return r, column
        return None, None


@dataclass
class Part:
    """One Page to be: a clip of PDF page ``index`` (points; past the page's edge it is white)."""

    index: int
    clip: tuple[float, float, float, float]
    label: str
    number: int = 0
    sheet: bool = False  # a spreadsheet's page: enlarged to 400 % zoom at most, checked for ###
    cells: Cells | None = None
    facts: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def fitz():
    """PyMuPDF, imported lazily and told not to print MuPDF's complaints on stderr."""
    return quiet_pymupdf()


def column_name(column: int) -> str:
    """0 -> "A", 27 -> "AB"."""
    name, column = "", column + 1
    while column:
        column, rest = divmod(column - 1, 26)
        name = chr(65 + rest) + name
    return name


def cell_ref(sheet: str, row: int, column: int) -> str:
    """"Sales!B3" for 0-based row 2, column 1; names other than letters, digits and _ are quoted as in Excel."""
    name = sheet if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", sheet) else "'" + sheet.replace("'", "''") + "'"
    return f"{name}!{column_name(column)}{row + 1}"


def _cells_named(words: list[Word]) -> str:
    """"cells B3, B4" where every word knows its cell, else "3 cells"."""
    if not all(w.ref for w in words):
        return f"{len(words)} cell{'s' if len(words) > 1 else ''}"
    refs = list(dict.fromkeys(w.ref.split("!", 1)[1] for w in words))
    shown = ", ".join(refs[:10]) + (f" and {len(refs) - 10} more" if len(refs) > 10 else "")
    return f"cell{'s' if len(refs) > 1 else ''} {shown}"


# ---- PDFs from the per-call path: one page per sheet, of any height ----------------------------------

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


def clips(area: "pymupdf.Rect", dpi: float, segment: int) -> list[tuple[float, float, float, float]]:
    """Cut ``area`` into a grid of equal clips of at most ``segment`` source pixels a side, row-major."""
    zoom = dpi / POINTS_PER_INCH
    cols = max(1, math.ceil(area.width * zoom / segment))
    rows = max(1, math.ceil(area.height * zoom / segment))
    w, h = area.width / cols, area.height / rows
    return [(area.x0 + c * w, area.y0 + r * h, area.x0 + (c + 1) * w, area.y0 + (r + 1) * h)
            for r in range(rows) for c in range(cols)]


def lay_out(doc: "pymupdf.Document", sheets: list[Sheet], dpi: float, segment: int,
            spreadsheet: bool) -> list[list[Part]]:
    """Each shown page's Parts (measured, not drawn, so the page count is known up front)."""
    result = []
    for sheet in sheets:
        area, note = drawn_area(doc.load_page(sheet.index))
        parts = clips(area, dpi, segment)
        result.append([
            Part(sheet.index, clip,
                 sheet.label if len(parts) == 1 else f"{sheet.label} (segment {i + 1}/{len(parts)})",
                 sheet=spreadsheet, warnings=[note] if note and i == 0 else [])
            for i, clip in enumerate(parts)])
    return result


# ---- drawing and words ------------------------------------------------------------------------------

def _words(page: "pymupdf.Page", part: Part, zoom: float) -> tuple[Word, ...]:
    """Words whose centre lies in the part's clip, boxes in the clip's source pixels, cells named."""
    x0c, y0c, x1c, y1c = part.clip
    words = []
    for x0, y0, x1, y1, text, *_ in page.get_text("words", clip=fitz().Rect(part.clip), sort=False):
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        if x0c <= cx < x1c and y0c <= cy < y1c:
            box = (max(x0, x0c) - x0c, max(y0, y0c) - y0c, min(x1, x1c) - x0c, min(y1, y1c) - y0c)
            ref = part.cells.ref((x0, y0, x1, y1)) if part.cells is not None else None
            words.append(Word(text, tuple(v * zoom for v in box), ref))
    return tuple(words)


def _render(doc: "pymupdf.Document", part: Part, width: int, height: int) -> "Image.Image":
    """Draw the part's clip at exactly width x height pixels, RGB; white where the clip leaves the page."""
    from PIL import Image

    pm = fitz()
    page = doc.load_page(part.index)
    clip = pm.Rect(part.clip)
    sx, sy = width / clip.width, height / clip.height
    inside = clip & page.rect
    if inside == clip:
        pix = page.get_pixmap(matrix=pm.Matrix(sx, sy), clip=clip, alpha=False, colorspace=pm.csRGB)
        return pixmap_image(pix, width, height)
    board = Image.new("RGB", (width, height), (255, 255, 255))
    if not inside.is_empty:
        w, h = max(1, round(inside.width * sx)), max(1, round(inside.height * sy))
        pix = page.get_pixmap(matrix=pm.Matrix(sx, sy), clip=inside, alpha=False, colorspace=pm.csRGB)
        board.paste(pixmap_image(pix, w, h), (round((inside.x0 - clip.x0) * sx), round((inside.y0 - clip.y0) * sy)))
    return board


def pages(doc: "pymupdf.Document", parts: list[Part], dpi: float, warnings: list[str]) -> Iterator[Page]:
    """Yield one Page per Part; a sheet part whose text shows ### adds a warning naming its cells."""
    zoom = dpi / POINTS_PER_INCH
    for part in parts:
        page = doc.load_page(part.index)
        x0, y0, x1, y1 = part.clip
        words = _words(page, part, zoom)
        hashes = [w for w in words if _HASHES.fullmatch(w.text)] if part.sheet else []
        if hashes:
            warnings.append(f"{part.label}: {_cells_named(hashes)} drawn as ### (too narrow for the number)")
        yield Page(
            label=part.label, number=part.number,
            size=(max(1, round((x1 - x0) * zoom)), max(1, round((y1 - y0) * zoom))),
            render=lambda w, h, part=part: _render(doc, part, w, h),
            words=words, warnings=list(part.warnings), facts=list(part.facts),
            max_scale=MAX_ZOOM_PX_PER_INCH / dpi if part.sheet else None,
        )
