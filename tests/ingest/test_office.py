"""Workbooks as a person reads them: a workbook written by openpyxl with no column widths, through the
warm LibreOffice.

The workbook holds what scripts write and the per-call soffice path drew badly: currency and percent
columns (### there), a long note in A1 of a one-column sheet (cut there), a 3,000-row sheet (blank past
~1,000 rows there), a chart sheet (not drawn there) and a merged heading. Real LibreOffice renders it
once for the module; tesseract is the independent judge that each value is in the pixels, exactly as
displayed, and the anchors must hold the same strings with their cells.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from docvision import ingest, views
from docvision.document import IngestOptions
from docvision.ingest.tools import Tools
from docvision.tiling import plan
from tests.helpers import read_back, require_tool

pytestmark = pytest.mark.office

NOTE = "The whole note must be readable: payment is due on 31 January 2026 at the latest."
TALL_ROWS = 3000
SALES = [("North", 1234567.891, -0.034, 120), ("South", 800000, 0.25, 98765432), ("East", -45678.5, 0.4, 7),
         ("West", 950000, 0.227, 1)]
SHOWN = {"$1,234,567.89": "Sales!B3", "-3.4%": "Sales!C3", "$800,000.00": "Sales!B4", "25.0%": "Sales!C4",
         "98,765,432": "Sales!D4", "-$45,678.50": "Sales!B5", "40.0%": "Sales!C5", "$950,000.00": "Sales!B6",
         "22.7%": "Sales!C6"}
CHART_FACT = "chart 'Revenue by region' (bar): series Revenue; categories North, South, East, West"


def build_workbook(path, tall_rows: int = TALL_ROWS) -> str:
    """Sales (a merged heading, $ and % columns, a bar chart, text overflowing into empty cells), a hidden
    sheet, an empty one, Notes (one long note in A1), Tall and a chart sheet; no column widths at all."""
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    ws = wb.active
    ws.title = "Sales"
    ws.merge_cells("A1:D1")
    ws["A1"] = "Quarterly report"
    ws["A1"].alignment = Alignment(horizontal="center")
    ws["A1"].font = Font(bold=True)
    ws.append(["Region", "Revenue", "Change", "Units"])
    for row in SALES:
        ws.append(list(row))
    for row in range(3, 7):
        ws.cell(row, 2).number_format = '"$"#,##0.00'
        ws.cell(row, 3).number_format = "0.0%"
        ws.cell(row, 4).number_format = "#,##0"
    ws["A8"] = "Payment due 2026-01-31"
    chart = BarChart()
    chart.title = "Revenue by region"
    chart.add_data(Reference(ws, min_col=2, min_row=2, max_row=6), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=1, min_row=3, max_row=6))
    ws.add_chart(chart, "F2")
    secret = wb.create_sheet("Secret")
    secret["A1"] = "do not show"
    secret.sheet_state = "hidden"
    wb.create_sheet("Blank")
    wb.create_sheet("Notes")["A1"] = NOTE
    tall = wb.create_sheet("Tall")
    for i in range(1, tall_rows + 1):
        tall.append([f"item {i}", i * 1.25])
    sheet_chart = BarChart()
    sheet_chart.title = "Change by region"
    sheet_chart.add_data(Reference(ws, min_col=3, min_row=2, max_row=6), titles_from_data=True)
    sheet_chart.set_categories(Reference(ws, min_col=1, min_row=3, max_row=6))
    wb.create_chartsheet("Chart").add_chart(sheet_chart)
    wb.save(path)
    return str(path)


@pytest.fixture(scope="module")
def soffice() -> str:
    return require_tool("soffice", "libreoffice")


@pytest.fixture(scope="module")
def report(tmp_path_factory, soffice):
    """The workbook loaded once: its Document and its pages (canvases drawn when a test asks)."""
    path = build_workbook(tmp_path_factory.mktemp("report") / "report.xlsx")
    with Tools(IngestOptions()) as tools, ingest.load(path, IngestOptions(), tools) as document:
        yield document, list(document.pages())


def _page(report, label: str):
    return next(p for p in report[1] if p.label == label)


def _canvas(page, hd: int = 25):
    return views.canvas(page, plan(page.size, hd, max_scale=page.max_scale))


def test_sheets_become_pages_labelled_by_name_and_tall_ones_segments(report):
    document, pages = report
    labels = [p.label for p in pages]
    segments = [label for label in labels if label.startswith("Tall")]
    assert labels == ["Sales", "Notes", *segments, "Chart"]
    assert len(segments) > 2 and segments[0] == f"Tall (segment 1/{len(segments)})"
    assert [p.number for p in pages] == list(range(1, len(pages) + 1)) and document.page_count == len(pages)
    assert any("hidden" in w and "Secret" in w for w in document.warnings), document.warnings
    assert any("empty" in w and "Blank" in w for w in document.warnings), document.warnings
    assert not any("do not show" in p.text for p in pages)
    assert document.metadata["converter"] == "LibreOffice (warm, UNO)"


def test_workbook_structure_in_metadata(report):
    info = report[0].metadata["workbook"]
    by_name = {s["name"]: s for s in info["sheets"]}
    assert list(by_name) == ["Sales", "Secret", "Blank", "Notes", "Tall", "Chart"]
    assert by_name["Chart"]["kind"] == "chartsheet" and info["hidden"] == ["Secret"]
    assert by_name["Sales"]["merged"] == ["A1:D1"]
    [chart] = by_name["Sales"]["charts"]
    assert chart["type"] == "barChart" and chart["title"] == "Revenue by region"
    assert chart["series"][0]["values"] == "'Sales'!$B$3:$B$6"


def test_numbers_are_drawn_as_displayed_and_anchors_name_their_cells(report):
    page = _page(report, "Sales")
    assert set(SHOWN.items()) <= {(w.text, w.ref) for w in page.words}
    assert not any("#" in w.text for w in page.words)
    assert [w.ref for w in page.words if w.text in ("Payment", "due", "2026-01-31")] == ["Sales!A8"] * 3
    assert {w.ref for w in page.words if w.text in ("Quarterly", "report")} == {"Sales!A1"}  # merged A1:D1
    assert not any("###" in w for w in report[0].warnings)


@pytest.mark.ocr
def test_tesseract_reads_every_value_as_displayed(report):

    require_tool("tesseract")
    board = _canvas(_page(report, "Sales"))
    text = read_back(board.crop((0, 0, board.width // 2, board.height // 2)))
    missing = [value for value in SHOWN if value not in text]
    assert not missing, text


@pytest.mark.ocr
def test_a_long_note_in_a_one_column_sheet_is_drawn_whole(report):

    require_tool("tesseract")
    page = _page(report, "Notes")
    assert " ".join(w.text for w in page.words) == NOTE
    assert {w.ref for w in page.words} == {"Notes!A1"}
    text = " ".join(read_back(_canvas(page)).split())
    assert NOTE in text, text


def test_merged_heading_is_centred_across_its_columns(report):
    page = _page(report, "Sales")
    word = {w.text: w.box for w in page.words}
    centre = (word["Quarterly"][0] + word["report"][2]) / 2
    assert word["Quarterly"][0] > word["Region"][0] + 20  # unmerged, it would start in column A
    assert word["Region"][0] < centre < word["Units"][2]


def _coloured(image) -> int:
    """Pixels of a saturated colour: chart bars (cells here are black on white, one yellow-free table)."""
    pixels = np.asarray(image, dtype=int)
    return int((pixels.max(axis=2) - pixels.min(axis=2) > 80).sum())


def test_charts_are_drawn_on_their_sheet_and_on_a_chart_sheet(report):
    assert _coloured(_canvas(_page(report, "Sales"))) > 10_000
    chart = _page(report, "Chart")
    assert _coloured(_canvas(chart)) > 50_000
    assert {"Change", "by", "region"} <= {w.text for w in chart.words}
    assert all(w.ref is None for w in chart.words)  # a chart's words belong to no cell


def test_chart_facts_are_on_the_page_of_their_sheet(report):
    sales = _page(report, "Sales")
    assert sales.facts == [CHART_FACT]
    assert CHART_FACT in sales.text
    assert _page(report, "Chart").facts == [CHART_FACT.replace("Revenue by", "Change by").replace(
        "series Revenue", "series Change")]
    assert not any(p.facts for p in report[1] if p.label.startswith(("Notes", "Tall")))


def test_a_tall_sheet_is_drawn_in_full_as_segments_cut_between_rows(report):
    segments = [p for p in report[1] if p.label.startswith("Tall")]
    items = [w for p in segments for w in p.words if w.text == "item"]
    assert len(items) == TALL_ROWS  # every row once: none lost, none cut in two
    assert [w.ref for w in items] == [f"Tall!A{i}" for i in range(1, TALL_ROWS + 1)]
    last = segments[-1]
    assert {"3000", "3750"} <= {w.text for w in last.words}
    assert all(max(p.size) <= IngestOptions().segment_height for p in segments)
    image = last.render(last.size[0] // 4, last.size[1] // 4)
    assert image.getextrema() != ((255, 255),) * 3


def test_a_small_sheet_is_not_blown_up_to_fill_the_budget(report):
    for label in ("Sales", "Notes"):
        page = _page(report, label)
        page_plan = plan(page.size, 25, max_scale=page.max_scale)
        pixels_per_point = page_plan.scale * IngestOptions().render_dpi / 72
        assert pixels_per_point < 5.4, (label, pixels_per_point)  # 400 % zoom on a 96 dpi screen: 5.33
        assert page_plan.tile_count <= plan(page.size, 25).tile_count, (label, page.size, page_plan.grid)


def test_a_number_still_too_wide_for_its_merged_cell_is_named_in_a_warning(tmp_path, soffice):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Totals"
    ws["A1"], ws["B1"] = "label", 5
    ws.merge_cells("B2:C2")  # optimal widths leave cells merged across columns alone
    ws["B2"] = 123456789012.5
    ws["B2"].number_format = '"$"#,##0.00'
    wb.save(tmp_path / "merged.xlsx")
    with ingest.load(str(tmp_path / "merged.xlsx"), IngestOptions()) as document:
        [page] = list(document.pages())
        assert [w.ref for w in page.words if w.text == "###"] == ["Totals!B2"]
        assert "Totals: cell B2 drawn as ### (too narrow for the number)" in document.warnings


def test_a_used_range_claiming_the_whole_sheet_is_bounded_by_the_real_cells(tmp_path, soffice):
    from openpyxl import Workbook
    from openpyxl.styles import PatternFill

    wb = Workbook()
    ws = wb.active
    ws.title = "Claims"
    ws["A1"], ws["B2"] = "Total 12,345", 42
    ws["XFD1048576"].fill = PatternFill("solid", fgColor="FFFF00")  # <dimension ref="A1:XFD1048576"/>
    far = wb.create_sheet("Far")
    far["A1"], far["XFD1048576"] = "near", "far away"
    wb.save(tmp_path / "claims.xlsx")
    with ingest.load(str(tmp_path / "claims.xlsx"), IngestOptions()) as document:
        claims, near = list(document.pages())
        assert [(w.text, w.ref) for w in claims.words] == [("Total", "Claims!A1"), ("12,345", "Claims!A1"),
                                                         ("42", "Claims!B2")]
        assert max(claims.size) < 2000 and [w.text for w in near.words] == ["near"]
        [cut] = [w for w in document.warnings if w.startswith("Far:")]
        assert re.search(r"past row 20,000 or column IV are not drawn: the sheet uses A1:XFD1048576", cut), cut


def test_csv_sheet_named_after_the_file(tmp_path, soffice):
    source = tmp_path / "prices.csv"
    source.write_text("item;price;share\napples;1.25;0.5\npears;3.5;12\n", encoding="utf-8")
    with ingest.load(str(source), IngestOptions()) as document:
        [page] = list(document.pages())
    assert page.label == "prices"
    refs = {w.text: w.ref for w in page.words}
    assert refs["apples"] == "prices!A2" and refs["3.5"] == "prices!B3"  # ";" split into cells


def test_large_workbook_structure_is_read_without_loading_every_cell(tmp_path):
    from openpyxl import load_workbook

    from docvision.ingest.office import workbook

    path = tmp_path / "large.xlsx"
    build_workbook(path, tall_rows=10)
    wb = load_workbook(path)
    for i in range(40_000):  # ~2.5 MiB of sheet XML: past the full-load limit
        wb["Sales"].append([f"row {i}", i * 2.5, i % 100 / 100])
    wb.save(path)
    info = workbook.read_structure(path, str(path))
    sales = info["sheets"][0]
    assert info["merged_read"] is False and sales["merged"] is None and sales["rows"] == 40_008
    assert [c["title"] for c in sales["charts"]] == ["Revenue by region"]


def test_without_uno_chart_facts_come_from_openpyxl(tmp_path, soffice, monkeypatch):
    monkeypatch.setenv("DOCVISION_UNO_PYTHON", "none")
    path = build_workbook(tmp_path / "report.xlsx", tall_rows=5)
    with ingest.load(path, IngestOptions()) as document:
        sales = next(p for p in document.pages() if p.label == "Sales")
    assert sales.facts == [CHART_FACT]
    assert document.metadata["workbook"]["sheets"][0]["charts"][0]["categories"] == ["North", "South", "East", "West"]
