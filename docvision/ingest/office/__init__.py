"""Office ingestor: spreadsheets, documents and presentations, rendered by LibreOffice as a person sees them.

In: a spreadsheet, document or presentation path (``formats.FORMATS``: OOXML and its templates, Office
97-2003, OpenDocument, CSV, RTF), IngestOptions and the run's Tools.
Out: a Document of kind "office" with one Page per visible sheet (labelled with the sheet's name), per
page ("page N") or per slide ("slide N"); sheets taller than a segment become "Sheet1 (segment i/n)".

Steps: ``officefile.check`` refuses what is certainly unreadable (not its container, encrypted, a zip
bomb) from the bytes alone, and everything else goes to LibreOffice, which has the last word; openpyxl
reads a workbook's structure where it can (``workbook.read_structure``: sheets, hidden sheets, merged
ranges, charts and series) into ``metadata["workbook"]``; the run's converter (``convert``, one warm
LibreOffice) lays the sheets out as a person reads them and writes a PDF with ``layout.json`` saying
which cells each page shows (``macro``); ``layout`` and ``segments`` turn the PDF pages into Pages
whose anchors are the displayed strings of the PDF text layer ("$1,234,567.89", "12.3%") with their
cells ("Sales!B3"), and whose facts describe the charts. Without UNO the per-call path (``percall``)
prints each sheet on one page and ``segments`` cuts it. The folder goes when the Document closes.
Without LibreOffice, workbooks and CSV files fall back to their cells drawn as an HTML table by the
web ingestor, with a warning that charts are not shown. See docs/office.md.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from docvision.document import Document, IngestOptions, parse_page_range
from docvision.errors import DamagedSource, EmptySource, ToolMissing
from docvision.ingest.checks import check_file
import docvision.ingest.office.convert as officeconvert
import docvision.ingest.office.files as officefile
import docvision.ingest.office.segments as segments
import docvision.ingest.office.sheets as sheetlist
import docvision.ingest.office.workbook as workbook
from docvision.ingest.office.formats import CALC, IMPRESS, WORKBOOKS, WRITER

EMPTY_PAGE_POINTS = 2.0  # LibreOffice exports an empty sheet as a 1 x 1 pt page
BLANK_INK = 0.002  # share of dark samples under which a sheet page without words counts as blank
_INK = bytes(1 if value < 200 else 0 for value in range(256))
# A document's or presentation's page is blank only when nothing on it differs from white: a pale
# picture (or a picture whose fill LibreOffice does not draw, over a light background) is content.
_ANY_INK = bytes(1 if value < 245 else 0 for value in range(256))
OPENPYXL_CHARTS = {"barChart": "BarDiagram", "bar3DChart": "BarDiagram", "lineChart": "LineDiagram",
                   "pieChart": "PieDiagram", "areaChart": "AreaDiagram", "scatterChart": "XYDiagram",
                   "doughnutChart": "DonutDiagram", "radarChart": "NetDiagram", "bubbleChart": "BubbleDiagram",
                   "stockChart": "StockDiagram"}


def load(source: str, options: IngestOptions, tools) -> Document:
    """Open an office file as a Document of rendered sheets, pages or slides."""
    import docvision.ingest.office.soffice as libreoffice

    path = check_file(source)
    named = path.suffix.lower()
    ext = officefile.check(path, named, source)  # the format the bytes are: a Word 97 file named .docm is a .doc
    tools.converter().expect([source])  # LibreOffice starts while openpyxl reads the workbook
    info = workbook.read_structure(path, source) if ext in WORKBOOKS else None
    if info is not None and info.get("empty"):
        raise EmptySource("the workbook has no cells with content and no charts", source=source)
    names = _sheet_names(path, ext, info, source)  # before converting: an encrypted .xls fails here
    try:
        libreoffice.find_soffice()
    except ToolMissing as missing:
        if ext in WORKBOOKS or ext == ".csv":
            import docvision.ingest.office.cells as cells

            return cells.load(path, source, options, missing, tools)
        raise
    converter = tools.converter()
    folder, pdf = converter.convert(path, options, source)
    try:
        document = _document(folder, pdf, ext, names, info, source, options, converter.take_notice())
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if ext != named:
        document.warnings.insert(0, f"the file is a {officefile.describe(ext)} named {named}; it was read as "
                                    "what it is")
    return document


def _document(folder: Path, pdf: Path, ext: str, names: list | None, info: dict | None, source: str,
              options: IngestOptions, notice: str | None) -> Document:
    """The Document over the converted PDF; the PDF and its folder go when it closes."""
    fitz = segments.fitz()
    try:
        doc = fitz.open(str(pdf), filetype="pdf")
    except (RuntimeError, ValueError):
        raise DamagedSource("LibreOffice wrote a PDF that cannot be read; the file may be damaged", source=source) from None
    try:
        warnings: list[str] = [notice] if notice else []
        layout_file = folder / officeconvert.LAYOUT
        groups = _groups(doc, ext, names, info, layout_file, warnings, source, options)
        number = 1
        for group in groups:  # numbered over the whole workbook, before the page range picks sheets
            for part in group:
                part.number, number = number, number + 1
        parts = [part for i in parse_page_range(options.pages, len(groups), source, warnings) for part in groups[i]]
        warnings += [w for part in parts for w in part.warnings]
    except BaseException:
        doc.close()
        raise
    metadata = {"converter": "LibreOffice" + (" (warm, UNO)" if layout_file.is_file() else ""),
                "format": officefile.describe(ext), "pdf_pages": doc.page_count}
    if info is not None:
        metadata["workbook"] = info

    def close() -> None:
        doc.close()
        shutil.rmtree(folder, ignore_errors=True)

    return Document(source=source, kind="office", page_count=len(parts),
                    iter_pages=lambda: segments.pages(doc, parts, options.render_dpi, warnings),
                    warnings=warnings, metadata=metadata, closer=close)


def _groups(doc, ext: str, names: list | None, info: dict | None, layout_file: Path, warnings: list[str],
            source: str, options: IngestOptions) -> list[list[segments.Part]]:
    """The Parts of each shown sheet (or page, or slide), in order."""
    if ext in CALC and layout_file.is_file():
        import docvision.ingest.office.layout as layout

        try:
            return [parts for _name, parts in layout.sheet_parts(doc, json.loads(layout_file.read_text()), warnings)]
        except layout.Mismatch as exc:
            warnings.append(f"{exc}; pages are labelled by number and cells are not named")
            names = None
    sheets = _sheets(doc, ext, names, info, warnings, source)
    groups = segments.lay_out(doc, sheets, options.render_dpi, options.segment_height, spreadsheet=ext in CALC)
    if info is not None:
        _openpyxl_facts(groups, sheets, info)
    return groups


def _openpyxl_facts(groups: list[list[segments.Part]], sheets: list[segments.Sheet], info: dict) -> None:
    """Chart facts from openpyxl's reading, for the per-call path (the warm one has LibreOffice's, with
    the series names and categories resolved): title, type and the series titles the file spells out."""
    from docvision.ingest.office.layout import chart_fact

    charts = {s["name"]: s["charts"] for s in info["sheets"]}
    for sheet, parts in zip(sheets, groups):
        for chart in charts.get(sheet.label, []):
            parts[0].facts.append(chart_fact({
                "title": chart["title"], "type": OPENPYXL_CHARTS.get(chart["type"], chart["type"]),
                "series": [s["title"] or "" for s in chart["series"]], "categories": chart.get("categories", [])}))


def _sheet_names(path: Path, ext: str, info: dict | None, source: str) -> list[tuple[str, bool]] | None:
    """(name, visible) per sheet in workbook order, where the format tells us cheaply."""
    if info is not None:
        return [(s["name"], s["state"] == "visible") for s in info["sheets"]]
    if ext == ".csv":
        return [(path.stem, True)]
    if ext == ".ods":
        return sheetlist.ods_sheets(path)
    if ext in (".xls", ".xlt"):
        return sheetlist.xls_sheets(path, source)
    return None


def _sheets(doc, ext: str, names: list | None, info: dict | None, warnings: list[str], source: str) -> list:
    """Which PDF pages to show under which labels; notes hidden and empty sheets in ``warnings``."""
    count = doc.page_count
    if count == 0:
        raise DamagedSource("LibreOffice produced no pages from this file", source=source)
    if ext in WRITER or ext in IMPRESS:
        word = "slide" if ext in IMPRESS else "page"
        if all(_is_blank(doc.load_page(i), faint=True) for i in range(count)):
            raise EmptySource(f"the {officefile.describe(ext)} has no content", source=source)
        return [segments.Sheet(i, f"{word} {i + 1}") for i in range(count)]
    pairs = _pair(names or [], count, warnings)
    _note(warnings, [name for _i, name, shown in pairs if not shown], "hidden sheet", "not shown")
    kinds = {s["name"]: s["kind"] for s in info["sheets"]} if info else {}
    blank, cut = {}, []
    for i, name, shown in pairs:
        if shown:
            page = doc.load_page(i)
            words = page.get_text("words")
            if _is_blank(page, words):
                blank[i] = name
            elif any(w[2] >= page.rect.x1 - 0.5 for w in words):
                cut.append(name)
    _note(warnings, [n for n in blank.values() if kinds.get(n) != "chartsheet"], "empty sheet", "not shown")
    _note(warnings, [n for n in blank.values() if kinds.get(n) == "chartsheet"], "chart sheet",
          "not drawn by LibreOffice and not shown (titles and series are in the metadata)")
    _note(warnings, cut, "sheet", "text running past the last used column is cut at the edge, as LibreOffice "
          "prints it")
    result = [segments.Sheet(i, name) for i, name, shown in pairs if shown and i not in blank]
    if not result:
        raise EmptySource("the workbook has no visible sheet with content", source=source)
    return result


def _pair(names: list[tuple[str, bool]], count: int, warnings: list[str]) -> list[tuple[int, str, bool]]:
    """(PDF page index, sheet name, visible) for each of ``count`` pages, given the workbook's sheets."""
    visible = [name for name, shown in names if shown]
    if len(names) == count:  # LibreOffice 7.4 exports hidden sheets too, one page each
        return [(i, name, shown) for i, (name, shown) in enumerate(names)]
    if len(visible) == count:
        return [(i, name, True) for i, name in enumerate(visible)]
    if names:
        warnings.append(f"LibreOffice made {count} pages for {len(names)} sheets; pages are labelled by number")
    return [(i, f"sheet {i + 1}", True) for i in range(count)]


def _note(warnings: list[str], names: list[str], what: str, why: str) -> None:
    if names:
        warnings.append(f"{what}{'s' if len(names) > 1 else ''} " + ", ".join(map(repr, names)) + f": {why}")


def _is_blank(page, words=None, faint: bool = False) -> bool:
    """True for LibreOffice's 1 x 1 pt page of an empty sheet, or a page that draws nothing but white
    (``faint``: nothing at all; else no more than a stray dot)."""
    rect = page.rect
    if rect.width <= EMPTY_PAGE_POINTS and rect.height <= EMPTY_PAGE_POINTS:
        return True
    if words is None:
        words = page.get_text("words")
    if words:
        return False
    if not page.get_bboxlog():
        return True
    # A page without words shows a chart or picture or nothing; a thumbnail tells which. LibreOffice
    # leaves a stray dot or two of a chart it could not place, so "blank" means almost no ink.
    zoom = min(1.0, 300 / max(rect.width, rect.height))
    samples = page.get_pixmap(matrix=segments.fitz().Matrix(zoom, zoom), alpha=False).samples
    if faint:
        return samples.translate(_ANY_INK).count(1) == 0
    return samples.translate(_INK).count(1) < BLANK_INK * len(samples)
