"""Runs inside LibreOffice, as a Python macro of our private profile: one office file in, one PDF out.

In: a JSON request (``convert``'s one argument): the file's and the PDF's URLs, the import filter,
the kind of document and the limits below. Out: a JSON string: for a spreadsheet, every sheet with
its state and, for each PDF page, the cells it shows (rows, columns and their edges in points, so
a word's position names its cell) and which cells hold something; or {"error": ..., "message": ...}.

A sheet is laid out as a person sees it in a spreadsheet program after widening the columns: every
column holding a number gets at least LibreOffice's optimal width (so no number is drawn as ###),
the print range runs from the real cells (not the used range a file claims) plus charts and
pictures, and is widened to the right until text overflowing into empty cells fits; each sheet gets
a page style of its own, as wide as its range and at most ``page_points`` tall, so a tall sheet is
paginated at row boundaries into segments instead of drawn on one page (LibreOffice 7.4 leaves all
but the first ~15,300 pt of such a page blank).

Why inside LibreOffice: each call from another process costs ~0.7 ms here over the pipe, and a sheet
needs a few calls per row (3000 rows: 8 s); in here the same calls take ~50 us. This file imports
nothing but the standard library and LibreOffice's own ``uno``: it is copied into the profile.
"""

import json

import uno
from com.sun.star.awt import Rectangle
from com.sun.star.beans import PropertyValue
from com.sun.star.table import CellRangeAddress

HMM_PER_POINT = 2540 / 72  # LibreOffice measures in 1/100 mm
CONTENT = 1 | 2 | 4 | 16  # CellFlags VALUE | DATETIME | STRING | FORMULA: cells that show something
SERVICES = {"calc": "com.sun.star.sheet.SpreadsheetDocument", "writer": "com.sun.star.text.TextDocument",
            "impress": "com.sun.star.presentation.PresentationDocument"}
EXPORTS = {"calc": "calc_pdf_Export", "writer": "writer_pdf_Export", "impress": "impress_pdf_Export"}
LEADING_BLANK = (20, 50)  # columns, rows: a range starts at A1 unless the first cell is further away
CHART_SHEET_SIZE = (25400, 17780)  # 10 x 7 in: the size a chart sheet's chart is drawn at
SLACK = 200  # 2 mm added to a page's width, so rounding never pushes the last column onto a page of its own
MAX_PAGE = 500000  # 5 m: LibreOffice's largest page side


def _props(**values):
    return tuple(PropertyValue(Name=k, Value=v) for k, v in values.items() if v is not None)


def convert(request_json):
    """Open, lay out, export, close; the JSON answer (never raises: errors come back as JSON)."""
    request = json.loads(request_json)
    try:
        doc = _load(request)
    except Exception as exc:  # IllegalArgumentException, IOException...: not loadable with this filter
        return json.dumps({"error": "load", "message": _message(exc)})
    if doc is None:
        return json.dumps({"error": "load", "message": "LibreOffice could not open the file"})
    try:
        if not doc.supportsService(SERVICES[request["kind"]]):
            return json.dumps({"error": "kind", "message": "LibreOffice opened it as another kind of document"})
        answer = _lay_out(doc, request) if request["kind"] == "calc" else {}
        if answer.get("error"):
            return json.dumps(answer)
        _export(doc, request)
        return json.dumps(answer)
    except Exception as exc:
        return json.dumps({"error": "convert", "message": _message(exc)})
    finally:
        doc.close(True)


def _message(exc):
    return (getattr(exc, "Message", "") or str(exc) or type(exc).__name__).strip().splitlines()[0][:300]


def _load(request):
    """The document, opened with the first of the request's filters that takes it (a .doc may be Word 97,
    95 or 6.0); the last filter's error when none does."""
    desktop = XSCRIPTCONTEXT.getDesktop()  # noqa: F821 -- set by LibreOffice's Python script provider
    failure = None
    for name in request["filters"]:
        # NEVER_EXECUTE (0) for macros, NO_UPDATE (0) for links: a document runs no code and fetches nothing.
        # A sheet is opened for editing: LibreOffice ignores OptimalWidth on a read-only one. It is our own
        # copy of the file, and only ever stored to the PDF.
        props = _props(Hidden=True, ReadOnly=request["kind"] != "calc", MacroExecutionMode=0, UpdateDocMode=0,
                       FilterName=name, FilterOptions=request.get("filter_options"))
        try:
            doc = desktop.loadComponentFromURL(request["input"], "_blank", 0, props)
        except Exception as exc:  # IllegalArgumentException, IOException...: not this version of the format
            failure = exc
            continue
        if doc is not None:
            return doc
    if failure is not None:
        raise failure
    return None


def _export(doc, request):
    data = uno.Any("[]com.sun.star.beans.PropertyValue", _props(IsSkipEmptyPages=False, ExportNotes=False))
    doc.storeToURL(request["output"], _props(FilterName=EXPORTS[request["kind"]], FilterData=data, Overwrite=True))


# ---- spreadsheets ----------------------------------------------------------------------------------

def _lay_out(doc, request):
    """Lay out every sheet; the sheets' descriptions in tab order, each with its pages in PDF order."""
    sheets, described = doc.Sheets, []
    for index in range(sheets.Count):
        described.append(_sheet(doc, index, sheets.getByIndex(index), request))
    if not any(s["state"] == "shown" for s in described):
        return {"error": "empty", "message": "no visible sheet has cells or charts", "sheets": described}
    for index, entry in enumerate(described):
        if entry["state"] == "empty":
            sheets.getByIndex(index).IsVisible = False  # hidden sheets are not printed; neither are these
    for index, entry in _printed_pages(doc):
        sheet = sheets.getByIndex(index)
        described[index]["pages"].append(_page_cells(sheet, entry))
    return {"sheets": described}


def _sheet(doc, index, sheet, request):
    entry = {"name": sheet.Name, "state": "shown", "pages": [], "notes": []}
    if not sheet.IsVisible:
        entry["state"] = "hidden"
        return entry
    _redraw_chart_sheet(sheet)
    extent = _extent(sheet, request, entry["notes"])
    if extent is None:
        entry["state"] = "empty"
        return entry
    c0, r0, c1, r1 = extent
    data = sheet.getCellRangeByPosition(c0, r0, c1, r1).getDataArray()
    _widen_number_columns(sheet, data, c0)
    c1 = _overflow_end(sheet, data, c0, c1, request["max_columns"])
    sheet.setPrintAreas((CellRangeAddress(index, c0, r0, c1, r1),))
    _page_style(doc, sheet, index, c0, r0, c1, r1, request["page_points"])
    entry["filled"] = _filled(sheet.getCellRangeByPosition(c0, r0, c1, r1).getDataArray(), c0, r0)
    entry["charts"] = _charts(sheet)
    return entry


def _printed_pages(doc):
    """(sheet index, printed range) of each page the PDF export will write, in its order.

    Asked of LibreOffice's own page renderer rather than worked out from page breaks: it leaves out
    pages with nothing on them (a run of empty rows), whatever the print options say.
    """
    pages = []
    for i in range(doc.getRendererCount(doc, ())):
        printed = next((p.Value for p in doc.getRenderer(i, doc, ()) if p.Name == "SourceRange"), None)
        if printed is not None:
            pages.append((printed.Sheet, printed))
    return pages


def _page_cells(sheet, printed):
    """One PDF page: its rows and columns, their edges in points from the page's top left, and the
    boxes of the charts and pictures on it (their words belong to no cell)."""
    c0, r0, c1, r1 = printed.StartColumn, printed.StartRow, printed.EndColumn, printed.EndRow
    x = [sheet.getCellByPosition(c, r0).Position.X for c in range(c0, c1 + 2)]
    y = [sheet.getCellByPosition(c0, r).Position.Y for r in range(r0, r1 + 2)]
    shapes = [_box(sheet.DrawPage.getByIndex(i)) for i in range(sheet.DrawPage.Count)]
    return {
        "columns": [c0, c1], "rows": [r0, r1],
        "x": [_points(v - x[0]) for v in x], "y": [_points(v - y[0]) for v in y],
        "shapes": [[_points(a - x[0]), _points(b - y[0]), _points(c - x[0]), _points(d - y[0])]
                   for a, b, c, d in shapes if a < x[-1] and c > x[0] and b < y[-1] and d > y[0]],
    }


def _redraw_chart_sheet(sheet):
    """Draw a chart sheet's chart anew, as LibreOffice would make it from the same cells, title and type.

    LibreOffice 7.4 imports the chart of an .xlsx chart sheet at 0 x 0 (and saves it as .ods at
    0.01 x 0.01 mm); given a size it draws only the title, stretched (its inner layout stays 0 x 0),
    so a new chart over the same ranges replaces it.
    """
    page, charts = sheet.DrawPage, sheet.getCharts()
    if page.Count != 1 or charts.Count != 1 or sheet.queryContentCells(CONTENT).getRangeAddresses():
        return
    size = page.getByIndex(0).Size
    if size.Width >= 1000 and size.Height >= 1000:  # 1 cm: LibreOffice's own round trip leaves 0.01 mm
        return
    old = charts.getByIndex(0)
    ranges, columns, rows = old.getRanges(), old.HasColumnHeaders, old.HasRowHeaders
    model = old.getEmbeddedObject()
    title = model.Title.String if model.HasMainTitle else None
    diagram = model.Diagram.getDiagramType()
    charts.removeByName(old.Name)
    charts.addNewByName("docvision", Rectangle(0, 0, *CHART_SHEET_SIZE), ranges, columns, rows)
    model = charts.getByName("docvision").getEmbeddedObject()
    model.Diagram = model.createInstance(diagram)
    if title:
        model.HasMainTitle = True
        model.Title.String = title


def _charts(sheet):
    """Title, type, series and categories of each chart on the sheet, with the cell at its top left."""
    found, page = [], sheet.DrawPage
    for i in range(page.Count):
        shape = page.getByIndex(i)
        try:
            model = shape.Model if shape.ShapeType == "com.sun.star.drawing.OLE2Shape" else None
            if model is None or not model.supportsService("com.sun.star.chart.ChartDocument"):
                continue
            data = model.Data
            found.append({
                "title": model.Title.String if model.HasMainTitle else None,
                "type": model.Diagram.getDiagramType().rsplit(".", 1)[-1],
                "series": [str(s) for s in data.getColumnDescriptions()],
                "categories": [str(c) for c in data.getRowDescriptions()],
                "column": _index_at(lambda c: sheet.getCellByPosition(c, 0).Position.X, shape.Position.X, 16383),
                "row": _index_at(lambda r: sheet.getCellByPosition(0, r).Position.Y, shape.Position.Y, 1048575),
            })
        except Exception:  # a chart we cannot read is still drawn; it just adds no facts
            continue
    return found


def _extent(sheet, request, notes):
    """(first column, first row, last column, last row) of what the sheet shows, within the limits.

    From the cells that hold something and the drawing objects, not from the used range the file
    claims (a fill on XFD1048576 made it the whole sheet). Cells past ``max_rows`` and ``max_columns``
    from the first are left out, with a note saying so.
    """
    boxes = [(a.StartColumn, a.StartRow, a.EndColumn, a.EndRow)
             for a in sheet.queryContentCells(CONTENT).getRangeAddresses()]
    boxes += [box for box in map(lambda i: _shape_cells(sheet, sheet.DrawPage.getByIndex(i)),
                                 range(sheet.DrawPage.Count)) if box is not None]
    if not boxes:
        return None
    c0, r0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    c0 = 0 if c0 < LEADING_BLANK[0] else c0
    r0 = 0 if r0 < LEADING_BLANK[1] else r0
    last_c, last_r = c0 + request["max_columns"] - 1, r0 + request["max_rows"] - 1
    inside = [(min(b[2], last_c), min(b[3], last_r)) for b in boxes if b[0] <= last_c and b[1] <= last_r]
    c1, r1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    if (c1, r1) != (min(c1, last_c), min(r1, last_r)):
        notes.append("cells past row {:,} or column {} are not drawn: the sheet uses {}, and at most {:,} rows and "
                     "{} columns are drawn".format(last_r + 1, _column_name(last_c), _range_name(c0, r0, c1, r1),
                                                  request["max_rows"], request["max_columns"]))
    if not inside:
        return None
    return _with_merges(sheet, c0, r0, max(c for c, _r in inside), max(r for _c, r in inside), last_c, last_r)


def _with_merges(sheet, c0, r0, c1, r1, last_c, last_r):
    """The range grown to hold every merged area that starts inside it: LibreOffice does not draw a
    merged cell cut by the print range (a number merged over B2:B3 vanished when the range ended at 2)."""
    cursor = sheet.createCursorByRange(sheet.getCellRangeByPosition(c0, r0, c1, r1))
    cursor.collapseToMergedArea()
    grown = cursor.RangeAddress
    return c0, r0, min(max(c1, grown.EndColumn), last_c), min(max(r1, grown.EndRow), last_r)


def _shape_cells(sheet, shape):
    """The cells a drawing object (chart, picture) covers, or None for an empty one."""
    pos, size = shape.Position, shape.Size
    if size.Width <= 0 and size.Height <= 0:
        return None
    return (_index_at(lambda c: sheet.getCellByPosition(c, 0).Position.X, pos.X, 16383),
            _index_at(lambda r: sheet.getCellByPosition(0, r).Position.Y, pos.Y, 1048575),
            _index_at(lambda c: sheet.getCellByPosition(c, 0).Position.X, pos.X + size.Width, 16383),
            _index_at(lambda r: sheet.getCellByPosition(0, r).Position.Y, pos.Y + size.Height, 1048575))


def _index_at(start_of, position, last):
    """The last column or row whose start is at or before ``position`` (binary search)."""
    lo, hi = 0, last
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if start_of(mid) <= position:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _widen_number_columns(sheet, data, c0):
    """Optimal width for every visible column holding a number or date; never narrower than it was."""
    numeric = {j for row in data for j, value in enumerate(row) if isinstance(value, float)}
    columns = sheet.Columns
    for j in sorted(numeric):
        column = columns.getByIndex(c0 + j)
        if not column.IsVisible:
            continue
        before = column.Width
        column.OptimalWidth = True
        if column.Width < before:
            column.Width = before


def _overflow_end(sheet, data, c0, c1, max_columns):
    """The last column the range needs so that text overflowing from the row's last cell shows whole.

    A text cell that is its row's last can flow into the empty cells to its right; its column's
    optimal width (measured, then the width put back) bounds how far. The page is trimmed to what was
    drawn afterwards, so a generous bound costs nothing but a few empty columns in the PDF.
    """
    ends = set()
    for row in data:
        for j in range(len(row) - 1, -1, -1):
            if row[j] != "":
                if isinstance(row[j], str):
                    ends.add(c0 + j)
                break
    columns, reach = sheet.Columns, 0
    for c in ends:
        column = columns.getByIndex(c)
        if not column.IsVisible:
            continue
        before = column.Width
        column.OptimalWidth = True
        reach = max(reach, sheet.getCellByPosition(c, 0).Position.X + column.Width)
        column.Width = before
    last = min(c0 + max_columns - 1, 16383)
    while c1 < last and sheet.getCellByPosition(c1 + 1, 0).Position.X < reach:
        c1 += 1
    return c1


def _page_style(doc, sheet, index, c0, r0, c1, r1, page_points):
    """A page style of the sheet's own: no margins, headers or footers, 100 %, its range's width."""
    styles = doc.StyleFamilies.getByName("PageStyles")
    style = doc.createInstance("com.sun.star.style.PageStyle")
    name = "docvision{}".format(index)
    styles.insertByName(name, style)
    first, past = sheet.getCellByPosition(c0, r0).Position, sheet.getCellByPosition(c1 + 1, r1 + 1).Position
    width = min(past.X - first.X + SLACK, int(page_points[0] * HMM_PER_POINT), MAX_PAGE)
    height = min(past.Y - first.Y + SLACK, int(page_points[1] * HMM_PER_POINT), MAX_PAGE)
    for key, value in (("Width", max(width, 1000)), ("Height", max(height, 1000)), ("LeftMargin", 0),
                       ("RightMargin", 0), ("TopMargin", 0), ("BottomMargin", 0), ("HeaderIsOn", False),
                       ("FooterIsOn", False), ("PageScale", 100), ("ScaleToPages", 0), ("PrintHeaders", False),
                       ("PrintGrid", False), ("PrintAnnotations", False), ("PrintDownFirst", False),
                       ("CenterHorizontally", False), ("CenterVertically", False)):
        style.setPropertyValue(key, value)
    sheet.PageStyle = name


def _box(shape):
    pos, size = shape.Position, shape.Size
    return pos.X, pos.Y, pos.X + size.Width, pos.Y + size.Height


def _points(hmm):
    return round(hmm / HMM_PER_POINT, 2)


def _filled(data, c0, r0):
    """Which cells show something: [row, [[first column, last column], ...]] for each non-empty row."""
    rows = []
    for i, row in enumerate(data):
        runs, start = [], None
        for j, value in enumerate(list(row) + [""]):
            if value != "" and start is None:
                start = j
            elif value == "" and start is not None:
                runs.append([c0 + start, c0 + j - 1])
                start = None
        if runs:
            rows.append([r0 + i, runs])
    return rows


def _column_name(c):
    name = ""
    c += 1
    while c:
        c, rest = divmod(c - 1, 26)
        name = chr(65 + rest) + name
    return name


def _range_name(c0, r0, c1, r1):
    return "{}{}:{}{}".format(_column_name(c0), r0 + 1, _column_name(c1), r1 + 1)


g_exportedScripts = (convert,)
