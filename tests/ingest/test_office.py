"""The office ingestor on files built here: a workbook with a chart, CSV, .docx, .pptx, tall sheets, bad files.

Real LibreOffice renders everything (each start costs ~2 s, so fixtures are module-scoped and shared);
tesseract is the independent judge that the numbers really are in the pixels.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile

import numpy as np
import pytest

from docvision import ingest, views
from docvision.document import IngestOptions
from docvision.tiling import plan
from tests.helpers import assert_one_error_line, json_lines, require_tool, run_cli

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
pytestmark = pytest.mark.office

BLUE = (0x44, 0x72, 0xC4)


def build_workbook(path) -> str:
    """Sales (numbers as $ and %, a merged centred heading, a bar chart), a hidden sheet, an empty one,
    Notes (text overflowing its column) and a chart sheet (which LibreOffice 7.4 does not draw)."""
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    ws = wb.active
    ws.title = "Sales"
    ws.merge_cells("A1:C1")
    ws["A1"] = "Quarterly report"
    ws["A1"].alignment = Alignment(horizontal="center")
    ws["A1"].font = Font(bold=True)
    ws.append(["Region", "Revenue", "Share"])
    for region, revenue, share in [("North", 1234567.891, 0.123), ("South", 800000, 0.25),
                                   ("East", 400000, 0.4), ("West", 950000, 0.227)]:
        ws.append([region, revenue, share])
    for row in range(3, 7):
        ws.cell(row, 2).number_format = '"$"#,##0.00'
        ws.cell(row, 3).number_format = "0.0%"
    ws.column_dimensions["A"].width = 14
    ws.column_dimensions["B"].width = 18
    ws.column_dimensions["C"].width = 10
    chart = BarChart()
    chart.title = "Revenue by region"
    chart.add_data(Reference(ws, min_col=2, min_row=2, max_row=6), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=1, min_row=3, max_row=6))
    ws.add_chart(chart, "E2")
    secret = wb.create_sheet("Secret")
    secret["A1"] = "do not show"
    secret.sheet_state = "hidden"
    wb.create_sheet("Blank")
    notes = wb.create_sheet("Notes")
    notes["A1"] = "Total units 98765"  # wider than column A, the sheet's only used column
    pie = BarChart()
    pie.title = "On its own sheet"
    pie.add_data(Reference(ws, min_col=3, min_row=2, max_row=6), titles_from_data=True)
    wb.create_chartsheet("Chart").add_chart(pie)
    wb.save(path)
    return str(path)


@pytest.fixture(scope="module")
def soffice() -> str:
    return require_tool("soffice", "libreoffice")


@pytest.fixture(scope="module")
def sales(tmp_path_factory, soffice):
    """The workbook loaded once: its Document and its pages with their HD-25 canvases."""
    path = build_workbook(tmp_path_factory.mktemp("sales") / "sales.xlsx")
    with ingest.load(path, IngestOptions()) as document:
        pages = []
        for page in document.pages():
            page_plan = plan(page.size, 25)
            pages.append((page, page_plan, views.canvas(page, page_plan)))
        yield document, pages


def test_visible_sheets_become_pages_labelled_by_name(sales):
    document, pages = sales
    assert [p.label for p, _plan, _c in pages] == ["Sales", "Notes"]
    assert document.page_count == 2 and document.kind == "office"
    assert any("hidden" in w and "Secret" in w for w in document.warnings), document.warnings
    assert any("empty" in w and "Blank" in w for w in document.warnings), document.warnings
    assert any("chart sheet" in w and "Chart" in w for w in document.warnings), document.warnings
    assert any("cut" in w and "Notes" in w for w in document.warnings), document.warnings
    assert not any("do not show" in p.text for p, _plan, _c in pages)


def test_workbook_structure_in_metadata(sales):
    info = sales[0].metadata["workbook"]
    by_name = {s["name"]: s for s in info["sheets"]}
    assert list(by_name) == ["Sales", "Secret", "Blank", "Notes", "Chart"]
    assert by_name["Chart"]["kind"] == "chartsheet"
    assert by_name["Chart"]["charts"][0]["title"] == "On its own sheet"
    assert info["hidden"] == ["Secret"]
    assert by_name["Sales"]["merged"] == ["A1:C1"]
    [chart] = by_name["Sales"]["charts"]
    assert chart["type"] == "barChart" and chart["title"] == "Revenue by region"
    assert chart["series"][0]["values"] == "'Sales'!$B$3:$B$6"
    assert chart["series"][0]["title_ref"] == "'Sales'!B2"


def test_large_workbook_structure_is_read_without_loading_every_cell(tmp_path):
    from openpyxl import load_workbook

    from docvision.ingest.office import workbook

    path = tmp_path / "large.xlsx"
    build_workbook(path)
    wb = load_workbook(path)
    for i in range(40_000):  # ~2.5 MiB of sheet XML: past the full-load limit
        wb["Sales"].append([f"row {i}", i * 2.5, i % 100 / 100])
    wb.save(path)
    info = workbook.read_structure(path, str(path))
    sales = info["sheets"][0]
    assert info["merged_read"] is False and sales["merged"] is None and sales["rows"] == 40_006
    assert [c["title"] for c in sales["charts"]] == ["Revenue by region"]


def test_anchors_are_displayed_strings_and_chart_title(sales):
    page = sales[1][0][0]
    words = {w.text for w in page.words}
    assert {"$1,234,567.89", "12.3%", "25.0%", "$800,000.00"} <= words, words
    assert {"Revenue", "by", "region"} <= words  # the chart's title, drawn by LibreOffice


def test_merged_heading_is_centred_across_its_columns(sales):
    page = sales[1][0][0]
    heading = next(w for w in page.words if w.text == "Quarterly")
    report = next(w for w in page.words if w.text == "report")
    region = next(w for w in page.words if w.text == "Region")
    share = next(w for w in page.words if w.text == "Share")
    centre = (heading.box[0] + report.box[2]) / 2
    # A..C spans from Region's left edge to past Share; unmerged, the text would start at column A.
    assert heading.box[0] > region.box[0] + 20
    assert region.box[0] < centre < share.box[2]


def test_chart_bars_are_visible_in_the_pixels(sales):
    page, page_plan, board = sales[1][0]
    left = page_plan.to_canvas(next(w for w in page.words if w.text == "region").box)[0]
    chart_area = board.crop((int(left) - 400, 0, board.width, board.height))
    pixels = np.asarray(chart_area, dtype=int)
    blue = int((np.abs(pixels - BLUE).max(axis=2) < 40).sum())
    assert blue > 20_000, blue  # four bars of LibreOffice's default series blue


@pytest.mark.ocr
def test_tesseract_reads_the_numbers_back(sales):
    import pytesseract

    require_tool("tesseract")
    board = sales[1][0][2]
    table = board.crop((0, 0, board.width // 3, board.height))
    text = pytesseract.image_to_string(table, config="--psm 6")
    assert "1,234,567.89" in text and "12.3%" in text, text


def test_tall_sheet_becomes_segments_and_truncation_is_reported(tmp_path, soffice):
    from openpyxl import Workbook

    wb = Workbook()
    tall = wb.active
    tall.title = "Tall"
    for i in range(1, 201):  # 200 rows of 15 pt: 12,500 px at 300 dpi, 4 segments of 3,125 px
        tall.append([f"r{i}", i * 10])
    huge = wb.create_sheet("Huge")  # past what LibreOffice 7.4 draws on one page (~1022 rows)
    for i in range(1, 1301):
        huge.append([f"h{i}", i])
    wb.save(tmp_path / "tall.xlsx")
    with ingest.load(str(tmp_path / "tall.xlsx"), IngestOptions(segment_height=4000)) as document:
        pages = list(document.pages())
        labels = [p.label for p in pages]
        assert labels[:4] == [f"Tall (segment {i}/4)" for i in range(1, 5)], labels
        assert labels[4].startswith("Huge (segment 1/") and document.page_count == len(pages)
        assert [p.number for p in pages] == list(range(1, len(pages) + 1))
        assert all(max(p.size) <= 4000 for p in pages)
        assert "r1" in {w.text for w in pages[0].words} and "r200" in {w.text for w in pages[3].words}
        assert sum(w.text.startswith("r") for p in pages[:4] for w in p.words) == 200  # each row once
        image = pages[3].render(200, 1000)
        assert image.size == (200, 1000) and image.getextrema() != ((255, 255),) * 3
        assert any("Huge" in w and "not shown" in w for w in document.warnings), document.warnings


def test_csv_through_the_cli(tmp_path, soffice):
    source = tmp_path / "prices.csv"
    source.write_text("item;price\napples;1.25\npears;3.5\n", encoding="utf-8")
    proc = run_cli("render", source, "--json", "--out", tmp_path / "views")
    assert proc.returncode == 0, proc.stderr
    [record] = json_lines(proc.stdout)
    assert [p["label"] for p in record["pages"]] == ["prices"]
    anchors = json.loads(open(record["pages"][0]["files"]["anchors"]).read())
    assert {"apples", "pears", "1.25", "3.5"} <= {a["text"] for a in anchors}  # ";" split into cells


def _convert(soffice: str, source, target: str):
    profile = source.parent / "profile"
    subprocess.run([soffice, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--convert-to", target,
                    "--outdir", str(source.parent), str(source)], capture_output=True, timeout=120, check=True)
    out = source.with_suffix("." + target)
    assert out.is_file()
    return out


FODP = """<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" office:version="1.2"
 office:mimetype="application/vnd.oasis.opendocument.presentation"><office:body><office:presentation>
{slides}</office:presentation></office:body></office:document>"""
SLIDE = ('<draw:page draw:name="s{n}"><draw:frame svg:x="2cm" svg:y="2cm" svg:width="20cm" svg:height="4cm">'
         "<draw:text-box><text:p>{text}</text:p></draw:text-box></draw:frame></draw:page>")


def test_docx_and_pptx_pages_and_slides(tmp_path, soffice):
    rtf = tmp_path / "letter.rtf"
    rtf.write_text(r"{\rtf1\ansi{\fonttbl{\f0 Liberation Serif;}}\f0\fs32 Invoice total due 7,340.25 EUR\par}")
    deck = tmp_path / "deck.fodp"
    deck.write_text(FODP.format(slides="".join(SLIDE.format(n=n, text=t) for n, t in
                                               [(1, "Revenue grew 42 percent"), (2, "Second slide")])))
    docx, pptx = _convert(soffice, rtf, "docx"), _convert(soffice, deck, "pptx")
    with ingest.load(str(docx), IngestOptions()) as document:
        [page] = list(document.pages())
        assert page.label == "page 1" and "7,340.25" in page.text
        assert page.size == (2550, 3300)  # US Letter at 300 dpi
    with ingest.load(str(pptx), IngestOptions(pages="2")) as document:
        assert [(p.label, p.number, p.text) for p in document.pages()] == [("slide 2", 2, "Second slide")]


def test_xls_and_ods_sheets_named_and_hidden_left_out(tmp_path, soffice):
    xlsx = tmp_path / "sales.xlsx"
    build_workbook(xlsx)
    for target in ("xls", "ods"):
        converted = _convert(soffice, xlsx, target)
        with ingest.load(str(converted), IngestOptions()) as document:
            assert [p.label for p in document.pages()] == ["Sales", "Notes"], target
            assert any("hidden" in w and "Secret" in w for w in document.warnings), document.warnings


def test_biff_sheet_list_and_encryption_marker():
    from docvision.errors import PasswordRequired
    from docvision.ingest.office.sheets import _boundsheets

    def record(kind, body=b""):
        return kind.to_bytes(2, "little") + len(body).to_bytes(2, "little") + body

    def sheet(name, state):
        return record(0x0085, b"\0\0\0\0" + bytes([state, 0, len(name), 0]) + name.encode("latin-1"))

    stream = record(0x0809, b"\0" * 16) + sheet("Visible", 0) + sheet("Hidden", 1) + record(0x000A)
    assert _boundsheets(stream, "x.xls", biff5=False) == [("Visible", True), ("Hidden", False)]
    with pytest.raises(PasswordRequired):
        _boundsheets(record(0x0809, b"\0" * 16) + record(0x002F, b"\1\0"), "x.xls", biff5=False)


@pytest.mark.browser
def test_without_libreoffice_cells_fall_back_to_an_html_table(tmp_path):
    require_tool("chromium", "chromium-browser", "google-chrome")
    source = build_workbook(tmp_path / "book.xlsx")
    proc = run_cli("render", source, "--json", "--out", tmp_path / "views",
                   env={"DOCVISION_SOFFICE": str(tmp_path / "no-such-soffice")})
    assert proc.returncode == 0, proc.stderr
    [record] = json_lines(proc.stdout)
    assert [p["label"] for p in record["pages"]] == ["Sales", "Notes"]
    assert record["pages"][0]["plan"]["source_size"][0] < 1200  # cut to the table, not the whole window
    assert any("charts" in w and "not shown" in w for w in record["warnings"]), record["warnings"]
    anchors = json.loads(open(record["pages"][0]["files"]["anchors"]).read())
    assert {"$1,234,567.89", "12.3%"} <= {a["text"] for a in anchors}


def test_an_expected_batch_is_converted_in_one_run(tmp_path, soffice, monkeypatch):
    from openpyxl import Workbook

    from docvision.ingest.office import soffice as libreoffice

    paths = []
    for n in range(3):
        wb = Workbook()
        wb.active["A1"] = f"book number {n}"
        wb.active.column_dimensions["A"].width = 30  # LibreOffice cuts text overflowing the used range
        wb.save(tmp_path / f"b{n}.xlsx")
        paths.append(str(tmp_path / f"b{n}.xlsx"))
    runs = []
    real_convert = libreoffice.convert
    monkeypatch.setattr(libreoffice, "convert", lambda inputs, *a, **k: runs.append(len(inputs)) or
                        real_convert(inputs, *a, **k))
    from docvision.ingest.tools import Tools

    with Tools(IngestOptions()) as tools:
        tools.expect(paths)
        for n, path in enumerate(paths):
            with ingest.load(path, IngestOptions(), tools) as document:
                assert [p.text for p in document.pages()] == [f"book number {n}"]
        converter = tools.converter()
    assert runs == [3]  # one LibreOffice start for the three
    assert not converter._ready and not converter._expected


# ---- bad input: one line, exit 1, through the CLI ---------------------------------------------------

def _fail(path, *fragments, env=None, args=()):
    proc = run_cli("render", path, *args, env=env, timeout=120)
    assert proc.returncode == 1, proc
    return assert_one_error_line(proc, *fragments)


def test_random_bytes_named_xlsx(tmp_path):
    source = tmp_path / "noise.xlsx"
    source.write_bytes(os.urandom(4000))
    _fail(source, "not a valid Excel workbook")


def test_empty_zip_named_docx(tmp_path):
    source = tmp_path / "nothing.docx"
    with zipfile.ZipFile(source, "w"):
        pass
    _fail(source, "not a valid Word document", "empty zip archive")


def test_truncated_zip_named_xlsx(tmp_path):
    whole = tmp_path / "whole.xlsx"
    build_workbook(whole)
    source = tmp_path / "cut.xlsx"
    source.write_bytes(whole.read_bytes()[:3000])
    _fail(source, "damaged")


def test_password_protected_workbook(tmp_path):
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = build_workbook(tmp_path / "plain.xlsx")
    source = tmp_path / "locked.xlsx"
    with open(plain, "rb") as fh, open(source, "wb") as out:
        OOXMLFile(fh).encrypt("secret", out)
    _fail(source, "password-protected", "remove the password")


def test_password_protected_opendocument(tmp_path):
    source = tmp_path / "locked.ods"
    with zipfile.ZipFile(source, "w") as archive:  # the layout LibreOffice writes for an encrypted file
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", os.urandom(2000))
        archive.writestr("META-INF/manifest.xml", '<manifest:manifest><manifest:file-entry manifest:full-path='
                         '"content.xml"><manifest:encryption-data/></manifest:file-entry></manifest:manifest>')
    _fail(source, "password-protected")


def test_zip_bomb_is_refused_before_unpacking(tmp_path):
    source = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as member:
            for _ in range(64):
                member.write(b"\0" * (1 << 20))
    assert source.stat().st_size < 200_000
    _fail(source, "zip bomb")


def test_empty_workbook(tmp_path):
    from openpyxl import Workbook

    Workbook().save(tmp_path / "empty.xlsx")
    _fail(tmp_path / "empty.xlsx", "no cells")


def test_hung_converter_is_killed(tmp_path):
    fake = tmp_path / "soffice"
    fake.write_text(f"#!/bin/sh\necho $$ > {tmp_path / 'pid'}\nsleep 300\n")
    fake.chmod(0o755)
    source = build_workbook(tmp_path / "book.xlsx")
    _fail(source, "did not finish", "2 s", env={"DOCVISION_SOFFICE": str(fake)}, args=("--timeout", "2"))
    pid = int((tmp_path / "pid").read_text())
    assert not os.path.exists(f"/proc/{pid}"), "the converter's process group is still running"


def test_converter_that_exits_0_without_output(tmp_path):
    fake = tmp_path / "soffice"
    fake.write_text("#!/bin/sh\nexit 0\n")  # what LibreOffice does when it cannot convert a file
    fake.chmod(0o755)
    source = tmp_path / "letter.rtf"
    source.write_text(r"{\rtf1\ansi hello\par}")
    _fail(source, "could not convert", env={"DOCVISION_SOFFICE": str(fake)})


def test_missing_libreoffice_for_a_document(tmp_path):
    source = tmp_path / "letter.rtf"
    source.write_text(r"{\rtf1\ansi hello\par}")
    _fail(source, "LibreOffice", "install", env={"DOCVISION_SOFFICE": str(tmp_path / "none")})
