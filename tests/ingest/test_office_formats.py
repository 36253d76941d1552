"""The other office formats: .xls and .ods written by LibreOffice itself, .csv, .docx and .pptx.

Fixtures are made here: the workbook of test_office saved by a plain soffice run as .xls and .ods, an
RTF and a flat ODP saved as .docx and .pptx. Tesseract judges the pixels as for .xlsx.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from docvision import ingest, views
from docvision.document import IngestOptions
from docvision.ingest.tools import Tools
from docvision.tiling import plan
from tests.helpers import json_lines, read_back, require_tool, run_cli
from tests.ingest.test_office import NOTE, SHOWN, build_workbook

pytestmark = pytest.mark.office


@pytest.fixture(scope="module")
def soffice() -> str:
    return require_tool("soffice", "libreoffice")


@pytest.fixture(scope="module")
def tools():
    with Tools(IngestOptions()) as shared:
        yield shared


def convert(soffice: str, source, target: str):
    """``source`` saved as ``target`` by a plain soffice run (LibreOffice's own writer of that format)."""
    profile = source.parent / "profile"
    subprocess.run([soffice, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--convert-to", target,
                    "--outdir", str(source.parent), str(source)], capture_output=True, timeout=120, check=True)
    out = source.with_suffix("." + target)
    assert out.is_file()
    return out


@pytest.mark.ocr
@pytest.mark.parametrize("target", ["xls", "ods"])
def test_xls_and_ods_written_by_libreoffice(tmp_path, soffice, tools, target):

    require_tool("tesseract")
    source = tmp_path / "report.xlsx"
    build_workbook(source, tall_rows=50)
    workbook = convert(soffice, source, target)
    with ingest.load(str(workbook), IngestOptions(), tools) as document:
        pages = list(document.pages())
        assert [p.label for p in pages][:3] == ["Sales", "Notes", "Tall"]
        assert any("hidden" in w and "Secret" in w for w in document.warnings), document.warnings
        sales = pages[0]
        assert set(SHOWN.items()) <= {(w.text, w.ref) for w in sales.words}
        assert " ".join(w.text for w in pages[1].words) == NOTE
        board = views.canvas(sales, plan(sales.size, 25, max_scale=sales.max_scale))
        text = read_back(board.crop((0, 0, board.width // 2, board.height // 2)))
        assert [value for value in SHOWN if value not in text] == [], text


def test_csv_through_the_cli(tmp_path, soffice):
    source = tmp_path / "prices.csv"
    source.write_text("item;price\napples;1234567.5\npears;3.5\n", encoding="utf-8")
    proc = run_cli("render", source, "--json", "--out", tmp_path / "views")
    assert proc.returncode == 0, proc.stderr
    [record] = json_lines(proc.stdout)
    assert [p["label"] for p in record["pages"]] == ["prices"]
    anchors = json.loads(open(record["pages"][0]["files"]["anchors"]).read())
    assert {"apples", "pears", "1234567.5", "3.5"} <= {a["text"] for a in anchors}  # ";" split into cells


FODP = """<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" office:version="1.2"
 office:mimetype="application/vnd.oasis.opendocument.presentation"><office:body><office:presentation>
{slides}</office:presentation></office:body></office:document>"""
SLIDE = ('<draw:page draw:name="s{n}"><draw:frame svg:x="2cm" svg:y="2cm" svg:width="20cm" svg:height="4cm">'
         "<draw:text-box><text:p>{text}</text:p></draw:text-box></draw:frame></draw:page>")


def test_docx_pages_and_pptx_slides(tmp_path, soffice, tools):
    rtf = tmp_path / "letter.rtf"
    rtf.write_text(r"{\rtf1\ansi{\fonttbl{\f0 Liberation Serif;}}\f0\fs32 Invoice total due 7,340.25 EUR\par}")
    deck = tmp_path / "deck.fodp"
    deck.write_text(FODP.format(slides="".join(SLIDE.format(n=n, text=t) for n, t in
                                               [(1, "Revenue grew 42 percent"), (2, "Second slide")])))
    docx, pptx = convert(soffice, rtf, "docx"), convert(soffice, deck, "pptx")
    with ingest.load(str(docx), IngestOptions(), tools) as document:
        [page] = list(document.pages())
        assert page.label == "page 1" and "7,340.25" in page.text
        assert page.size == (2550, 3300)  # US Letter at 300 dpi
        assert all(w.ref is None for w in page.words)
    with ingest.load(str(pptx), IngestOptions(pages="2"), tools) as document:
        assert [(p.label, p.number, p.text) for p in document.pages()] == [("slide 2", 2, "Second slide")]
    with ingest.load(str(rtf), IngestOptions(), tools) as document:
        assert [p.label for p in document.pages()] == ["page 1"]
    assert tools.converter().starts == 1  # one LibreOffice for the three


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
