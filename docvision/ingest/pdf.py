"""PDF ingestor (PyMuPDF): a PDF file in, a lazy Document of pages out.

The file is opened here to check it (damage, password, page tree) and read its metadata; its pages
are read and drawn by a worker process (``ingest.pdfsession``), one at a time, each under a deadline
(``--timeout``) and a memory limit, because MuPDF has neither: a page built to exhaust it becomes that
page's damage, never a hang or docvision killed for memory (docs/pdf.md). A page's source pixels are
its size at ``options.render_dpi`` (300 by default: US Letter is 2550x3300), and its words come from
the text layer, scaled into those pixels. ``Page.render(w, h)`` draws the page straight at the zoom
that yields exactly w x h pixels, so nothing is rendered large and shrunk afterwards.

Traps on PyMuPDF 1.2x this module works around (docs/architecture.md, Bad input): a truncated file opens
silently (``is_repaired`` and MuPDF's warning buffer tell), an HTML page named .pdf opens as HTML
(magic bytes are checked first), ``pymupdf.FileNotFoundError`` is not the built-in one, and reading
``needs_pass`` after ``authenticate()`` blanks the decrypted pages; a file name that is not UTF-8
cannot be given to MuPDF at all (``pdfworker.openable``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

from docvision.document import Document, IngestOptions, Page, Word, parse_page_range
from docvision.errors import DamagedSource, DocvisionError, EmptySource, PasswordRequired, SourceNotFound
from docvision.ingest.checks import check_content, check_file
from docvision.ingest.pdfsession import Budget, PageFailed, PageInfo, Session, plain
from docvision.ingest.pdfworker import openable
import docvision.ingest.xfa as xfa

if TYPE_CHECKING:
    import pymupdf
    from PIL import Image

POINTS_PER_INCH = 72.0
REPAIRED_BY_PDFIUM = "the file is damaged; its pages were read by a second PDF engine"
DYNAMIC_XFA = ("the PDF is a dynamic XFA form, which only Adobe Reader draws: its pages show what the file shows "
               "other readers (often 'Please wait...'); the form's text and field values are read from the file "
               "as facts of the first page")


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


@dataclass
class _Opened:
    """What opening the file told: its pages, warnings and metadata, and which engine reads its pages."""

    page_count: int
    warnings: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    engine: str = "mupdf"  # "pdfium": MuPDF cannot open it (or wants a password only attachments need)
    facts: list[str] = field(default_factory=list)  # a dynamic XFA form's words, for the first page


def _inspect(fitz, path, source: str, options: IngestOptions) -> _Opened:
    """Open and unlock the PDF, check its page tree, read its metadata; errors become one line.

    Where MuPDF gives up on the whole file (damaged beyond its repair, a page tree it cannot find, a
    password that only the attachments need), PDFium is asked before the file is called damaged or
    locked; when PDFium opens it, PDFium reads every page (``_Opened.engine``)."""
    _mupdf_messages(fitz)  # start with an empty buffer so warnings below are this file's
    try:
        with openable(str(path)) as name:
            doc = fitz.open(name, filetype="pdf")
    except fitz.FileNotFoundError:  # PyMuPDF's own class, a RuntimeError, not the built-in one
        raise SourceNotFound("no such file", source=source) from None
    except (fitz.FileDataError, *MUPDF_ERRORS):
        return _or_pdfium(path, options, REPAIRED_BY_PDFIUM,
                          DamagedSource("the PDF is damaged beyond repair and cannot be opened", source=source))
    try:
        return _checked(fitz, doc, path, source, options)
    except MUPDF_ERRORS:  # a page tree MuPDF trips over while counting or loading pages
        return _or_pdfium(path, options, REPAIRED_BY_PDFIUM,
                          DamagedSource("the PDF is damaged: its page tree cannot be read", source=source))
    finally:
        doc.close()  # the worker opens the file again; nothing here interprets a page's content


def _checked(fitz, doc, path, source: str, options: IngestOptions) -> _Opened:
    # Read needs_pass once, before authenticate(): reading it afterwards blanks decrypted pages.
    needs_pass = bool(doc.needs_pass)
    if needs_pass and not options.password:
        return _or_pdfium(path, options, _unlocked_note(doc),
                          PasswordRequired("the PDF is encrypted: pass its password with --password", source=source),
                          encrypted=True)
    if needs_pass and not doc.authenticate(options.password):
        raise PasswordRequired("wrong password for this encrypted PDF: check --password", source=source)
    page_count = doc.page_count
    complaints = _mupdf_messages(fitz) if page_count == 0 else []
    if page_count == 0 and (doc.is_repaired or complaints):  # a lost page tree, not an empty PDF
        return _or_pdfium(path, options, REPAIRED_BY_PDFIUM,
                          DamagedSource("the PDF is damaged: no page could be found", source=source))
    if page_count == 0:  # a page tree MuPDF finds empty; PDFium may find the pages (a wrong /Count)
        return _or_pdfium(path, options, "the file's list of pages is damaged; its pages were read by a second "
                          "PDF engine", EmptySource("the PDF has no pages", source=source))
    opened = _Opened(page_count)
    if doc.is_repaired:
        first = parse_page_range(options.pages, page_count, source)[0]
        try:  # loading a page loads the (repaired) page tree, whose complaints are the file's
            doc.load_page(first)
        except MUPDF_ERRORS:
            pass
        _mupdf_messages(fitz)
        opened.warnings.append("the file is damaged and was repaired on opening")
    opened.metadata = {key: value for key, value in (doc.metadata or {}).items() if value}
    opened.metadata["encrypted"] = needs_pass
    form = xfa.kind(doc)
    if form is not None:
        opened.metadata["xfa"] = form
        if form == "dynamic":  # its pages hold a placeholder: the form's words become page 1's facts
            opened.warnings.append(DYNAMIC_XFA)
            opened.facts = xfa.facts(doc)
    return opened


def _or_pdfium(path, options: IngestOptions, note: str, refusal: DocvisionError, encrypted: bool = False) -> _Opened:
    """The file as PDFium opens it (all its pages read by PDFium, ``note`` the warning saying so); ``refusal``,
    MuPDF's verdict, when PDFium cannot open it either."""
    from docvision.ingest.pdfium import opens

    count = opens(str(path), options.password)
    if not count:
        raise refusal
    return _Opened(count, [note], {"encrypted": encrypted, "engine": "PDFium"}, engine="pdfium")


def _unlocked_note(doc) -> str:
    """The warning for an encrypted PDF whose pages open without a password."""
    stream = doc.xref_get_key(-1, "Encrypt/StmF")[1]
    if doc.xref_get_key(-1, "Encrypt/EFF")[0] != "null" and stream in ("/Identity", "null"):
        return "the PDF's attachments are encrypted (they need a password) and were not read; its pages are shown"
    return "the PDF is encrypted but its pages open without a password"


def load(source: str, options: IngestOptions, tools=None) -> Document:
    """Open a PDF as a Document whose pages are read and drawn lazily, one at a time, by a worker process."""
    fitz = quiet_pymupdf()
    path = check_file(source)
    check_content(path, "pdf", source)
    opened = _inspect(fitz, path, source, options)
    indices = parse_page_range(options.pages, opened.page_count, source, opened.warnings)
    session = Session(source, options.password, Budget(options.timeout), indices,
                      pools=lambda: tools.pdf_workers() if tools is not None else None, engine=opened.engine)
    # _pages appends to the same warnings and damaged lists the Document holds, found as pages are read.
    damaged: list[int] = []
    warnings = opened.warnings
    return Document(source=source, kind="pdf", page_count=opened.page_count,
                    iter_pages=lambda: _pages(session, indices, options.render_dpi, warnings, damaged, source,
                                              opened.facts),
                    warnings=warnings, metadata=opened.metadata, closer=session.close, damaged=damaged)


def _pages(session: Session, indices: list[int], dpi: float, warnings: list[str], damaged: list[int],
           source: str, facts: list[str] = ()) -> Iterator[Page]:
    """Yield the selected pages; at the end, name the damaged ones in ``damaged`` and a document warning.

    A page the worker cannot read (MuPDF's error, or past its deadline or memory limit) is skipped and
    named; the pages after it are still read. When no page at all could be read, the first one's reason
    is the source's error.
    """
    damaged.clear()  # a second pass over the pages finds them again
    reasons = []
    for index in indices:
        try:
            info = session.read(index)
        except PageFailed as exc:
            damaged.append(index + 1)
            reasons.append(f"page {index + 1}: {exc}")
            warnings.append(f"page {index + 1} cannot be read and was skipped ({exc})")
            continue
        page_obj = _make_page(session, info, index, dpi)
        if index == indices[0]:
            page_obj.facts = list(facts)
        yield page_obj  # the consumer renders it before asking for the next one
        if page_obj.warnings:
            damaged.append(index + 1)
    if len(reasons) == len(indices):
        more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
        raise DamagedSource(f"no page could be read; {reasons[0]}{more}", source=source)
    if damaged:
        listed = ", ".join(map(str, damaged))
        warnings.append(f"damaged page{'s' if len(damaged) > 1 else ''}: {listed} "
                        "(what survived is rendered)")


def _make_page(session: Session, info: PageInfo, index: int, dpi: float) -> Page:
    """A Page from a read page: size at ``dpi``, words scaled into those pixels, a renderer."""
    x0, y0, x1, y1 = info.rect  # the visible (cropped, rotated) page, origin at (0, 0), in points
    zoom = dpi / POINTS_PER_INCH
    size = (max(1, round((x1 - x0) * zoom)), max(1, round((y1 - y0) * zoom)))
    sx, sy = size[0] / (x1 - x0), size[1] / (y1 - y0)
    words = tuple(Word(text, (a * sx, b * sy, c * sx, d * sy)) for a, b, c, d, text in info.words)
    result = Page(label=f"page {index + 1}", number=index + 1, size=size, render=lambda w, h: None,
                  words=words, scanned=info.scanned)
    _note_damage(result, info.damage)
    result.render = lambda w, h: _render(session, index, w, h, result)
    return result


def _note_damage(page_obj: Page, damage: list[str]) -> None:
    """Turn MuPDF's complaints about this page (if any) into one page warning."""
    if damage and not any(w.startswith("damaged") for w in page_obj.warnings):
        page_obj.warnings.append(f"damaged: {plain(damage[0])}")


def _render(session: Session, index: int, width: int, height: int, page_obj: Page) -> "Image.Image":
    """Draw the page at exactly width x height pixels, RGB, no alpha (the worker stretches each axis
    to fill the image exactly). A page that fails to draw -- MuPDF's error, past its deadline or memory
    limit -- gets a warning and a white image instead of stopping the document."""
    from PIL import Image

    try:
        image, damage = session.draw(index, width, height)
    except PageFailed as exc:
        page_obj.warnings.append(f"damaged: cannot be drawn, left blank ({exc})")
        return Image.new("RGB", (width, height), (255, 255, 255))
    _note_damage(page_obj, damage)
    return image


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
