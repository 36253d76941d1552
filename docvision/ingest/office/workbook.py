"""What a workbook holds, read with openpyxl: sheets, hidden sheets, merged ranges, charts and their series.

In: the path of an .xlsx/.xlsm/.xltx/.xltm file (already checked by ``officefile``). Out: a plain dict for
``Document.metadata["workbook"]``, or None when openpyxl cannot read it (best effort: LibreOffice has the
last word); and, for the fallback without LibreOffice, each visible sheet as an HTML table with values
formatted as displayed.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import warnings
import zipfile
from pathlib import Path

from docvision.errors import DamagedSource

# openpyxl's full mode builds every cell object (measured here: 8 MiB of sheet XML, 200k cells, took
# 5-15 s) but is the only mode that reads merged ranges; past this much sheet XML, cells are read in
# streaming mode, charts straight from the drawing parts, and merged ranges are left out.
FULL_LOAD_LIMIT = 2 << 20
MAX_HTML_ROWS = 2000
MAX_HTML_COLUMNS = 100


def _sheet_xml_size(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        return sum(m.file_size for m in archive.infolist() if m.filename.startswith("xl/worksheets/"))


def open_workbook(path: Path, source: str, read_only: bool | None = None):
    """The openpyxl workbook (full mode unless the sheets are very large); DamagedSource if it won't open."""
    import openpyxl

    if read_only is None:
        read_only = _sheet_xml_size(path) > FULL_LOAD_LIMIT
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "extension not supported" notes are no business of the user
            return openpyxl.load_workbook(path, read_only=read_only, data_only=False)
    except Exception:  # noqa: BLE001 - openpyxl raises KeyError, ValueError, TypeError... on parts it does not know
        raise DamagedSource("the workbook's cells could not be read without LibreOffice (an unusual or damaged "
                            "file); install LibreOffice to read it", source=source) from None


def _rich_text(text) -> str | None:
    """Plain text of an openpyxl chart Title/SeriesLabel, or its cell reference."""
    if text is None:
        return None
    tx = getattr(text, "tx", text)
    if getattr(tx, "rich", None) is not None:
        return "".join(run.t or "" for p in tx.rich.p for run in (p.r or [])) or None
    if getattr(tx, "strRef", None) is not None:
        return tx.strRef.f
    return getattr(tx, "v", None)


def _ref(data) -> str | None:
    if data is None:
        return None
    for attr in ("numRef", "strRef"):
        ref = getattr(data, attr, None)
        if ref is not None and ref.f:
            return ref.f
    return None


def _chart_info(chart) -> dict:
    anchor = getattr(getattr(chart, "anchor", None), "_from", None)
    series = []
    for s in chart.series:
        label = s.tx
        series.append({
            "title": getattr(label, "v", None) if label is not None and label.strRef is None else None,
            "title_ref": label.strRef.f if label is not None and label.strRef is not None else None,
            "values": _ref(s.val) or _ref(getattr(s, "yVal", None)),
            "categories": _ref(s.cat) or _ref(getattr(s, "xVal", None)),
        })
    info = {"type": chart.tagname, "title": _rich_text(chart.title), "series": series}
    if anchor is not None:
        from openpyxl.utils import get_column_letter

        info["anchor"] = f"{get_column_letter(anchor.col + 1)}{anchor.row + 1}"
    return info


def _resolved(wb, chart: dict) -> dict:
    """The chart with its series names and categories read from the cells they refer to, where the
    workbook was loaded whole (series "title" and chart "categories"; left as they are otherwise)."""
    if getattr(wb, "read_only", False):
        return chart
    for series in chart["series"]:
        if series["title"] is None and series["title_ref"]:
            values = _cell_values(wb, series["title_ref"])
            series["title"] = str(values[0]) if values else None
    refs = [s["categories"] for s in chart["series"] if s["categories"]]
    if refs:
        chart["categories"] = [str(v) for v in _cell_values(wb, refs[0]) if v is not None]
    return chart


def _cell_values(wb, ref: str, limit: int = 200) -> list:
    """The values of a reference such as 'Sales'!$A$3:$A$6 (at most ``limit``), or [] if unreadable."""
    sheet, _, cells = ref.rpartition("!")
    try:
        found = wb[sheet.strip("'").replace("''", "'")][cells.replace("$", "")]
    except (KeyError, ValueError):
        return []
    rows = found if isinstance(found, tuple) else ((found,),)
    values = [c.value for row in rows for c in (row if isinstance(row, tuple) else (row,))]
    return values[:limit]


def has_cells(ws) -> bool:
    """True when the worksheet has at least one non-empty cell."""
    if hasattr(ws, "_cells"):
        return any(c.value is not None and c.value != "" for c in ws._cells.values())
    return any(v is not None and v != "" for row in ws.iter_rows(values_only=True) for v in row)


def describe_sheets(wb) -> list[dict]:
    """One dict per sheet in workbook order: name, kind, state, size, merged ranges, charts."""
    from openpyxl.chartsheet import Chartsheet

    sheets = []
    for ws in (wb[name] for name in wb.sheetnames):  # worksheets and chart sheets, in tab order
        is_chartsheet = isinstance(ws, Chartsheet)
        entry = {
            "name": ws.title,
            "kind": "chartsheet" if is_chartsheet else "worksheet",
            "state": ws.sheet_state,
            "charts": [_resolved(wb, _chart_info(c)) for c in getattr(ws, "_charts", [])],
        }
        if not is_chartsheet:
            try:
                entry["dimensions"] = ws.calculate_dimension()
            except ValueError:  # a read-only sheet whose file does not declare its size
                entry["dimensions"] = None
            entry["rows"], entry["columns"] = ws.max_row, ws.max_column
            merged = getattr(ws, "merged_cells", None)  # None: a read-only sheet, whose ranges are not read
            entry["merged"] = [str(r) for r in merged.ranges] if merged is not None else None
            entry["has_cells"] = has_cells(ws)
        sheets.append(entry)
    return sheets


def _charts_by_sheet(path: Path) -> dict[str, list]:
    """Charts per sheet name read from the drawing parts alone (for workbooks opened read-only).

    Uses openpyxl's reader pieces the way its full load does; any surprise yields no charts.
    """
    from openpyxl.drawing.spreadsheet_drawing import SpreadsheetDrawing
    from openpyxl.packaging.relationship import get_dependents, get_rels_path
    from openpyxl.reader.drawings import find_images
    from openpyxl.reader.excel import ExcelReader

    found: dict[str, list] = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = ExcelReader(str(path), read_only=True)
            reader.read_manifest()
            reader.read_workbook()
            names = set(reader.archive.namelist())
            for sheet, rel in reader.parser.find_sheets():
                rels_path = get_rels_path(rel.target)
                if rels_path not in names:
                    continue
                for drawing in get_dependents(reader.archive, rels_path).find(SpreadsheetDrawing._rel_type):
                    found.setdefault(sheet.name, []).extend(find_images(reader.archive, drawing.target)[0])
            reader.archive.close()
    except Exception:  # charts are a bonus in metadata; never fail a workbook over them
        return {}
    return found


def _drawn_parts(path: Path) -> bool:
    """True when the package holds parts a sheet can show besides cells."""
    with zipfile.ZipFile(path) as archive:
        return any(name.startswith(("xl/drawings/", "xl/media/", "xl/charts/", "xl/embeddings/", "xl/chartsheets/"))
                   for name in archive.namelist())


def read_structure(path: Path, source: str) -> dict | None:
    """The workbook's structure for ``Document.metadata["workbook"]``, as openpyxl reads it; None when it
    cannot (a Strict OOXML workbook, whose namespaces openpyxl does not know, reads as empty; an unusual
    cell style makes it raise). These facts are a bonus: LibreOffice reads the workbook either way and has
    the last word on whether it holds anything, except for a workbook openpyxl read whole whose sheets hold
    no cell and whose package holds nothing else to show: ``{"empty": True}``. LibreOffice took 70 s to say
    so of one with 2,000 empty sheets; openpyxl takes seconds."""
    try:
        wb = open_workbook(path, source)
        try:
            sheets = describe_sheets(wb)
            read_only = bool(getattr(wb, "read_only", False))
        finally:
            wb.close()
        if read_only:
            for sheet, charts in zip(sheets, map(_charts_by_sheet(path).get, [s["name"] for s in sheets])):
                if charts and not sheet["charts"]:
                    sheet["charts"] = [_chart_info(c) for c in charts]
    except Exception:  # noqa: BLE001 - any surprise in openpyxl only costs the facts
        return None
    if not any(s.get("has_cells") or s["charts"] or s["kind"] == "chartsheet" for s in sheets):
        # Nothing openpyxl could see. Empty for sure only when it read the sheets and the package holds
        # nothing else a sheet can show (drawings, pictures, embedded objects); else LibreOffice decides
        # (a text box, a Strict OOXML workbook openpyxl reads as sheetless).
        return {"empty": True} if sheets and not _drawn_parts(path) else None
    return {
        "sheets": sheets,
        "hidden": [s["name"] for s in sheets if s["state"] != "visible"],
        "merged_read": not read_only,
    }


# ---- the fallback without LibreOffice: sheets as HTML tables ---------------------------------------

_CURRENCY = re.compile(r'"?([$€£¥])"?')


def display(value, number_format: str | None) -> str:
    """A cell value as a spreadsheet shows it, for the common number formats (%, thousands, currency)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if not isinstance(value, (int, float)):
        return str(value)
    fmt = (number_format or "General").split(";")[0]
    decimals = min(len(re.match(r"[0#]*", fmt.split(".", 1)[1]).group()), 10) if "." in fmt else 0
    if "%" in fmt:
        return f"{value * 100:.{decimals}f}%"
    if fmt == "General":
        return str(int(value)) if float(value).is_integer() else f"{value:.10g}"
    text = f"{abs(value):,.{decimals}f}" if "," in fmt else f"{abs(value):.{decimals}f}"
    currency = _CURRENCY.search(fmt)
    sign = "-" if value < 0 else ""
    return f"{sign}{currency.group(1) if currency else ''}{text}"


def sheet_html(ws) -> tuple[str, bool]:
    """One worksheet as an HTML page with a table (merged cells spanned); True when rows or columns were cut."""
    spans, covered = {}, set()
    for rng in ws.merged_cells.ranges if hasattr(ws, "merged_cells") else ():
        spans[(rng.min_row, rng.min_col)] = (rng.max_row - rng.min_row + 1, rng.max_col - rng.min_col + 1)
        covered.update((r, c) for r in range(rng.min_row, rng.max_row + 1)
                       for c in range(rng.min_col, rng.max_col + 1) if (r, c) != (rng.min_row, rng.min_col))
    rows = min(ws.max_row or MAX_HTML_ROWS, MAX_HTML_ROWS)
    cols = min(ws.max_column or MAX_HTML_COLUMNS, MAX_HTML_COLUMNS)
    lines = []
    for row in ws.iter_rows(min_row=1, max_row=rows, max_col=cols):
        cells = []
        for cell in row:
            if (cell.row, cell.column) in covered:
                continue
            attrs = ""
            if (cell.row, cell.column) in spans:
                rs, cs = spans[(cell.row, cell.column)]
                attrs = f' rowspan="{rs}" colspan="{cs}"'
            numeric = isinstance(cell.value, (int, float)) and not isinstance(cell.value, bool)
            style = "text-align:right;" if numeric else ""
            font = getattr(cell, "font", None)  # read-only empty cells have none
            if font is not None and font.b:
                style += "font-weight:bold;"
            text = html.escape(display(cell.value, cell.number_format))
            cells.append(f'<td{attrs} style="{style}">{text}</td>')
        lines.append("<tr>" + "".join(cells) + "</tr>")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><style>"
        "body{font-family:Carlito,Calibri,Arial,sans-serif;font-size:14px;margin:8px;background:#fff}"
        "table{border-collapse:collapse}td{border:1px solid #c8c8c8;padding:2px 6px;white-space:nowrap}"
        f"</style></head><body><table>{''.join(lines)}</table></body></html>"
    )
    return page, rows < (ws.max_row or 0) or cols < (ws.max_column or 0)
