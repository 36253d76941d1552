"""A workbook's PDF from the warm converter as Parts: which sheet, segment and cells each PDF page shows.

In: the macro's answer (``layout.json``: sheets in tab order, each with its state, its PDF pages and
their cell edges, which cells show something, its charts) and the open PDF. Out: for each shown sheet
its Parts (labelled "Sales" or "Tall (segment 2/23)", cells named, chart facts on the part that holds
the chart), and warnings for hidden, empty and cut sheets.
"""

from __future__ import annotations

from docvision.ingest.office.segments import TRIM_MARGIN_POINTS, Cells, Part

CHART_KINDS = {"BarDiagram": "bar", "LineDiagram": "line", "PieDiagram": "pie", "AreaDiagram": "area",
               "XYDiagram": "scatter", "DonutDiagram": "donut", "NetDiagram": "radar",
               "FilledNetDiagram": "filled radar", "StockDiagram": "stock", "BubbleDiagram": "bubble"}
LISTED_CATEGORIES = 8  # more than this are given as first-last (count)


class Mismatch(Exception):
    """The PDF's pages are not the ones the layout describes."""


def sheet_parts(doc, answer: dict, warnings: list[str]) -> list[tuple[str, list[Part]]]:
    """(sheet name, its Parts) for every shown sheet in tab order; notes in ``warnings``.

    Raises Mismatch when the PDF has another number of pages than the layout says.
    """
    result, index, hidden, empty = [], 0, [], []
    for sheet in answer["sheets"]:
        name = sheet["name"]
        warnings.extend(f"{name}: {note}" for note in sheet.get("notes", []))
        if sheet["state"] != "shown":
            (hidden if sheet["state"] == "hidden" else empty).append(name)
            continue
        parts = _parts(doc, sheet, index)
        index += len(parts)
        _place_facts(parts, sheet)
        result.append((name, parts))
    if index != doc.page_count:
        raise Mismatch(f"LibreOffice made {doc.page_count} pages where the layout has {index}")
    _note(warnings, hidden, "hidden sheet", "not shown")
    _note(warnings, empty, "empty sheet", "not shown")
    return result


def _parts(doc, sheet: dict, first_index: int) -> list[Part]:
    filled = {row: [tuple(run) for run in runs] for row, runs in sheet.get("filled", [])}
    total, parts = len(sheet["pages"]), []
    for i, page in enumerate(sheet["pages"]):
        cells = Cells(sheet["name"], page["columns"][0], page["rows"][0], page["x"], page["y"], filled,
                      [tuple(box) for box in page.get("shapes", [])])
        clip = _trimmed(doc.load_page(first_index + i), page["x"][-1], page["y"][-1])
        label = sheet["name"] if total == 1 else f"{sheet['name']} (segment {i + 1}/{total})"
        parts.append(Part(first_index + i, clip, label, sheet=True, cells=cells))
    return parts


def _trimmed(page, width: float, height: float) -> tuple[float, float, float, float]:
    """The cells' area pulled in to what was drawn: the range was widened for text that might
    overflow, and a page cut from a tall sheet may end in empty rows."""
    right, bottom = width, height
    boxes = [box for _kind, box in page.get_bboxlog()]
    if boxes:
        right = min(width, max(box[2] for box in boxes) + TRIM_MARGIN_POINTS)
        bottom = min(height, max(box[3] for box in boxes) + TRIM_MARGIN_POINTS)
    return (0.0, 0.0, max(1.0, min(right, page.rect.width)), max(1.0, min(bottom, page.rect.height)))


def _place_facts(parts: list[Part], sheet: dict) -> None:
    """One line per chart, on the part showing the chart's top-left cell (else the sheet's first)."""
    for chart in sheet.get("charts", []):
        home = next((p for p in parts if _shows(p, chart["row"], chart["column"])), parts[0])
        home.facts.append(chart_fact(chart))


def _shows(part: Part, row: int, column: int) -> bool:
    cells = part.cells
    return (cells.first_row <= row < cells.first_row + len(cells.y) - 1
            and cells.first_column <= column < cells.first_column + len(cells.x) - 1)


def chart_fact(chart: dict) -> str:
    """"chart 'Revenue by region' (bar): series East, West; categories Q1, Q2, Q3, Q4"."""
    kind = CHART_KINDS.get(chart.get("type", ""), chart.get("type", "").removesuffix("Diagram").lower() or "chart")
    title = f"chart {chart['title']!r}" if chart.get("title") else "chart"
    parts = []
    series = [s for s in chart.get("series", []) if s]
    if series:
        parts.append("series " + ", ".join(series))
    categories = [c for c in chart.get("categories", []) if c]
    if len(categories) > LISTED_CATEGORIES:
        parts.append(f"categories {categories[0]}-{categories[-1]} ({len(categories)})")
    elif categories:
        parts.append("categories " + ", ".join(categories))
    return f"{title} ({kind})" + (": " + "; ".join(parts) if parts else "")


def _note(warnings: list[str], names: list[str], what: str, why: str) -> None:
    if names:
        warnings.append(f"{what}{'s' if len(names) > 1 else ''} " + ", ".join(map(repr, names)) + f": {why}")
