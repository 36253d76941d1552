"""PDF ingestor (PyMuPDF): a PDF file in, a lazy Document of pages out.

The file is opened once; pages are produced one at a time. A page's source pixels are its size at
``options.render_dpi`` (300 by default: US Letter is 2550x3300), and its words come from the text
layer, scaled into those pixels. ``Page.render(w, h)`` draws the page straight at the zoom that
yields exactly w x h pixels, so nothing is rendered large and shrunk afterwards.

Traps on PyMuPDF 1.2x this module works around (docs/architecture.md, Bad input): a truncated file opens
silently (``is_repaired`` and MuPDF's warning buffer tell), an HTML page named .pdf opens as HTML
(magic bytes are checked first), ``pymupdf.FileNotFoundError`` is not the built-in one, and reading
``needs_pass`` after ``authenticate()`` blanks the decrypted pages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from docvision.document import Document, IngestOptions, Page, Word, parse_page_range
from docvision.errors import DamagedSource, EmptySource, PasswordRequired, SourceNotFound
from docvision.ingest.checks import check_content, check_file

if TYPE_CHECKING:
    import pymupdf
    from PIL import Image

POINTS_PER_INCH = 72.0
# A page counts as scanned when it has no words and one image covers at least this much of it.
SCANNED_COVERAGE = 0.6


# What a damaged file makes PyMuPDF raise. Some MuPDF errors (FzErrorFormat: "malformed page tree")
# come straight from its bindings as mupdf.FzErrorBase, which is neither RuntimeError nor ValueError;
# quiet_pymupdf() adds that class once PyMuPDF is imported.
MUPDF_ERRORS: tuple[type[BaseException], ...] = (RuntimeError, ValueError)


def quiet_pymupdf():
    """Import PyMuPDF quietly: MuPDF otherwise prints its errors straight to stderr."""
    global MUPDF_ERRORS
    import pymupdf

    MUPDF_ERRORS = (RuntimeError, ValueError, pymupdf.mupdf.FzErrorBase)
    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)
    return pymupdf


def _mupdf_messages(fitz) -> list[str]:
    """Drain MuPDF's warning buffer; return its distinct lines."""
    text = fitz.TOOLS.mupdf_warnings(reset=True)
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("...") and line not in lines:
            lines.append(line)
    return lines


def _open(fitz, source: str, options: IngestOptions) -> tuple["pymupdf.Document", bool]:
    """Open and unlock the PDF (and say whether it was encrypted); errors become one line."""
    path = check_file(source)
    check_content(path, "pdf", source)
    _mupdf_messages(fitz)  # start with an empty buffer so warnings below are this file's
    try:
        doc = fitz.open(str(path), filetype="pdf")
    except fitz.FileNotFoundError:  # PyMuPDF's own class, a RuntimeError, not the built-in one
        raise SourceNotFound("no such file", source=source) from None
    except (fitz.FileDataError, *MUPDF_ERRORS):
        raise DamagedSource("the PDF is damaged beyond repair and cannot be opened",
                            source=source) from None
    # Read needs_pass once, before authenticate(): reading it afterwards blanks decrypted pages.
    needs_pass = bool(doc.needs_pass)
    if needs_pass:
        if not options.password:
            doc.close()
            raise PasswordRequired("the PDF is encrypted: pass its password with --password",
                                   source=source)
        if not doc.authenticate(options.password):
            doc.close()
            raise PasswordRequired("wrong password for this encrypted PDF: check --password",
                                   source=source)
    return doc, needs_pass


def load(source: str, options: IngestOptions, tools=None) -> Document:
    """Open a PDF as a Document whose pages are produced lazily, one at a time."""
    fitz = quiet_pymupdf()
    doc, encrypted = _open(fitz, source, options)
    try:
        page_count = doc.page_count
        complaints = _mupdf_messages(fitz) if page_count == 0 else []
        if page_count == 0 and (doc.is_repaired or complaints):  # a lost page tree, not an empty PDF
            detail = f" ({complaints[0]})" if complaints else ""
            raise DamagedSource(f"the PDF is damaged: no page could be found{detail}", source=source)
        if page_count == 0:
            raise EmptySource("the PDF has no pages", source=source)
        indices = parse_page_range(options.pages, page_count, source)
    except Exception:
        doc.close()
        raise
    warnings = []
    repaired = bool(doc.is_repaired)
    if repaired:
        try:  # loading a page loads the (repaired) page tree, whose complaints are the file's
            doc.load_page(indices[0])
        except MUPDF_ERRORS:
            pass
    opening = _mupdf_messages(fitz)
    if repaired:
        detail = f" ({opening[0]})" if opening else ""
        warnings.append(f"the file is damaged and was repaired on opening{detail}")
    metadata = {key: value for key, value in (doc.metadata or {}).items() if value}
    metadata["encrypted"] = encrypted
    # _pages appends to the same warnings and damaged lists the Document holds, found as pages are read.
    damaged: list[int] = []
    return Document(source=source, kind="pdf", page_count=page_count,
                    iter_pages=lambda: _pages(fitz, doc, indices, options.render_dpi, warnings, damaged),
                    warnings=warnings, metadata=metadata, closer=doc.close, damaged=damaged)


def _pages(fitz, doc, indices: list[int], dpi: float, warnings: list[str], damaged: list[int]) -> Iterator[Page]:
    """Yield the selected pages; at the end, name the damaged ones in ``damaged`` and a document warning."""
    damaged.clear()  # a second pass over the pages finds them again
    for index in indices:
        _mupdf_messages(fitz)
        try:
            page = doc.load_page(index)
            page_obj = _make_page(fitz, page, index, dpi)
        except MUPDF_ERRORS as exc:
            damaged.append(index + 1)
            warnings.append(f"page {index + 1} cannot be read and was skipped ({exc})")
            continue
        _note_damage(fitz, page_obj)
        yield page_obj  # the consumer renders it before asking for the next one
        if page_obj.warnings:
            damaged.append(index + 1)
    if damaged:
        listed = ", ".join(map(str, damaged))
        warnings.append(f"damaged page{'s' if len(damaged) > 1 else ''}: {listed} "
                                 "(what survived is rendered)")


def _note_damage(fitz, page_obj: Page) -> None:
    """Turn MuPDF's complaints about this page (if any) into one page warning."""
    damage = _mupdf_messages(fitz)
    if damage and not any(w.startswith("damaged") for w in page_obj.warnings):
        page_obj.warnings.append(f"damaged: {damage[0]}")


def _make_page(fitz, page, index: int, dpi: float) -> Page:
    """A Page for one PyMuPDF page: size at ``dpi``, words in those pixels, a lazy renderer."""
    rect = page.rect  # the visible (cropped, rotated) page, origin at (0, 0), in points
    zoom = dpi / POINTS_PER_INCH
    size = (max(1, round(rect.width * zoom)), max(1, round(rect.height * zoom)))
    label = f"page {index + 1}"
    result = Page(label=label, number=index + 1, size=size, render=lambda w, h: None)
    try:
        # One display list per page: the content stream is interpreted once for both the text
        # layer and the pixels (about 20% faster than get_text + get_pixmap, measured), and its
        # words come out already on the visible page, cropped and rotated like the pixels.
        drawing = page.get_displaylist()
        result.words = _words(fitz, drawing, rect, size)
    except MUPDF_ERRORS as exc:
        drawing = page  # draw straight from the page; it may still partly work
        result.warnings.append(f"damaged: {exc}")
    result.scanned = not result.words and _mostly_image(page)
    result.render = lambda w, h: _render(fitz, drawing, rect, w, h, result)
    return result


def _words(fitz, drawing, rect, size: tuple[int, int]) -> tuple[Word, ...]:
    """The text layer's words, boxes mapped from points on the visible page into source pixels."""
    sx, sy = size[0] / rect.width, size[1] / rect.height
    text_page = fitz.TextPage(drawing.get_textpage(flags=fitz.TEXTFLAGS_WORDS))
    return tuple(Word(text, (x0 * sx, y0 * sy, x1 * sx, y1 * sy))
                 for x0, y0, x1, y1, text, *_ in text_page.extractWORDS())


def _mostly_image(page) -> bool:
    """True when one image on the page covers most of it (a scanned page has no text layer)."""
    area = abs(page.rect)
    if area <= 0:
        return False
    try:
        infos = page.get_image_info()
    except MUPDF_ERRORS:
        return False
    for info in infos:
        box = page.rect & info["bbox"]  # the part of the image on the visible page
        if not box.is_empty and abs(box) >= SCANNED_COVERAGE * area:
            return True
    return False


def _render(fitz, drawing, rect, width: int, height: int, page_obj: Page) -> "Image.Image":
    """Draw the page (``rect`` in points) at exactly width x height pixels, RGB, no alpha.

    The zoom differs per axis by at most a pixel's worth, so the page fills the image exactly.
    A page that fails to draw gets a warning and a white image instead of stopping the document.
    """
    from PIL import Image

    matrix = fitz.Matrix(width / rect.width, height / rect.height)
    try:  # drawing: the page's display list (or the page itself); both take these arguments
        pix = drawing.get_pixmap(matrix=matrix, clip=rect, alpha=False, colorspace=fitz.csRGB)
    except MUPDF_ERRORS as exc:
        page_obj.warnings.append(f"damaged: cannot be drawn, left blank ({exc})")
        return Image.new("RGB", (width, height), (255, 255, 255))
    _note_damage(fitz, page_obj)
    return pixmap_image(pix, width, height)


def pixmap_image(pix, width: int, height: int) -> "Image.Image":
    """A PyMuPDF RGB pixmap as a PIL image of exactly width x height.

    One copy: PIL unpacks MuPDF's packed RGB samples from the pixmap's memory into its own (RGB is
    not a mode PIL can map in place, so nothing points into the pixmap afterwards).
    """
    from PIL import Image

    image = Image.frombuffer("RGB", (pix.width, pix.height), pix.samples_mv, "raw", "RGB", pix.stride, 1)
    if image.size != (width, height):  # MuPDF may round a clip's pixel box outward by a pixel
        image = image.crop((0, 0, min(width, pix.width), min(height, pix.height)))
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
    return image
