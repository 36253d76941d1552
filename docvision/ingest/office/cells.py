"""The fallback when LibreOffice is missing: a workbook's cells drawn as HTML tables by the web ingestor.

In: an .xlsx/.xlsm/.csv path and IngestOptions. Out: a Document of kind "office" with one Page per
visible sheet (or "Sheet1 (segment i/n)" for tall ones) and a warning that charts, images and most
formatting are not shown. Each sheet becomes a temporary .html file that ``docvision.ingest.web``
captures; the files go when the Document closes.
"""

from __future__ import annotations

import csv
import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from docvision.document import Document, IngestOptions, Page, parse_page_range
from docvision.errors import EmptySource, ToolMissing
import docvision.ingest.office.workbook as workbook

TRIM_MARGIN = 24  # source pixels kept past the last word: the cell padding and border


def _csv_workbook(path: Path):
    """A CSV file as a one-sheet openpyxl workbook (numbers parsed, so they align right)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = path.stem[:31] or "Sheet1"
    with open(path, "r", encoding="utf-8", errors="replace", newline="") as fh:
        sample = fh.read(64 << 10)
        fh.seek(0)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
        for row in itertools.islice(csv.reader(fh, dialect), workbook.MAX_HTML_ROWS):
            sheet.append([_number(v) for v in row[: workbook.MAX_HTML_COLUMNS]])
    return book


def _number(text: str):
    try:
        return int(text) if text.strip().lstrip("-").isdigit() else float(text)
    except ValueError:
        return text


def load(path: Path, source: str, options: IngestOptions, missing: ToolMissing, tools) -> Document:
    """Render the visible sheets' cells through the web ingestor; warn that this is a fallback."""
    import docvision.ingest.web as web

    book = _csv_workbook(path) if path.suffix.lower() == ".csv" else workbook.open_workbook(path, source)
    sheets = [ws for ws in book.worksheets if ws.sheet_state == "visible" and workbook.has_cells(ws)]
    if not sheets:
        raise EmptySource("the workbook has no visible sheet with cells", source=source)
    warnings = ["LibreOffice is not available: showing the cells only, as a table; charts, images and "
                "most formatting are not shown (install LibreOffice for a faithful rendering)"]
    sheets = [sheets[i] for i in parse_page_range(options.pages, len(sheets), source, warnings)]
    folder = Path(tempfile.mkdtemp(prefix="docvision-office-"))
    docs: list[tuple[str, Document]] = []
    del missing  # the reason is in the warning's advice; the fallback itself needs nothing from it
    try:
        for i, ws in enumerate(sheets):
            page_html, cut = workbook.sheet_html(ws)
            if cut:
                warnings.append(f"sheet {ws.title!r} is cut to {workbook.MAX_HTML_ROWS} rows and "
                                f"{workbook.MAX_HTML_COLUMNS} columns in this fallback")
            html_path = folder / f"sheet{i}.html"
            html_path.write_text(page_html, encoding="utf-8")
            docs.append((ws.title, web.load(str(html_path), options_without_pages(options), tools)))
    except BaseException:
        _close(docs, folder)
        raise
    finally:
        book.close()
    return Document(source=source, kind="office", page_count=sum(d.page_count for _n, d in docs),
                    iter_pages=lambda: _pages(docs), warnings=warnings,
                    metadata={"converter": "cells as HTML (LibreOffice missing)"},
                    closer=lambda: _close(docs, folder))


def options_without_pages(options: IngestOptions) -> IngestOptions:
    """The options for one sheet's web capture: the page range was already applied to sheets."""
    from dataclasses import replace

    return replace(options, pages=None)


def _pages(docs: list[tuple[str, Document]]) -> Iterator[Page]:
    number = 1
    for name, doc in docs:
        for page in doc.pages():
            page.label = name if doc.page_count == 1 else f"{name} (segment {page.number}/{doc.page_count})"
            page.number = number
            number += 1
            yield _trimmed(page)


def _trimmed(page: Page) -> Page:
    """The page cut to its table's right and bottom edges (from the words' boxes), as a sheet is.

    A small table would otherwise sit in a corner of a whole browser window, wasting the tiles.
    """
    if not page.words:
        return page
    width, height = page.size
    right = min(width, round(max(w.box[2] for w in page.words) + TRIM_MARGIN))
    bottom = min(height, round(max(w.box[3] for w in page.words) + TRIM_MARGIN))
    if (right, bottom) == (width, height):
        return page
    draw = page.render

    def render(w: int, h: int):
        from PIL import Image

        # Draw the whole page at most at its natural size (never blow up a whole window to enlarge
        # a corner of it), keep the table's part, and scale that to w x h.
        zoom = min(1.0, w / right, h / bottom)
        full = draw(max(1, round(width * zoom)), max(1, round(height * zoom)))
        part = full.crop((0, 0, max(1, round(right * zoom)), max(1, round(bottom * zoom))))
        return part if part.size == (w, h) else part.resize((w, h), Image.Resampling.LANCZOS)

    page.size, page.render = (right, bottom), render
    return page


def _close(docs: list[tuple[str, Document]], folder: Path) -> None:
    for _name, doc in docs:
        doc.close()
    shutil.rmtree(folder, ignore_errors=True)
