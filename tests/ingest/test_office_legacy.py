"""Office files LibreOffice reads that docvision used to refuse: Office 97-2003 formats and templates, a Strict
OOXML workbook, a workbook openpyxl cannot parse; and a converter closed under a conversion.

Fixtures are made here: an RTF and a flat ODP saved by a plain soffice run as .doc and .ppt, workbooks written
by openpyxl and then rewritten (Strict namespaces, a cell style whose id is no number). Tesseract judges the pixels.
"""

from __future__ import annotations

import shutil
import struct
import threading
import zipfile

import pytest

from docvision import ingest, views
from docvision.document import IngestOptions
from docvision.errors import ExternalTimeout, PasswordRequired
from docvision.ingest.office.convert import Converter
from docvision.ingest.tools import Tools
from docvision.tiling import plan
from tests.helpers import read_back, require_tool, run_cli
from tests.ingest.test_office_formats import FODP, SLIDE, convert

pytestmark = [pytest.mark.office, pytest.mark.ocr]
# Transitional OOXML namespaces and their Strict (ISO/IEC 29500 strict) counterparts; the package's own
# relationship namespace is the same in both.
STRICT = {
    b"http://schemas.openxmlformats.org/spreadsheetml/2006/main": b"http://purl.oclc.org/ooxml/spreadsheetml/main",
    b"http://schemas.openxmlformats.org/officeDocument/2006/relationships":
        b"http://purl.oclc.org/ooxml/officeDocument/relationships",
    b"http://schemas.openxmlformats.org/drawingml/2006/": b"http://purl.oclc.org/ooxml/drawingml/",
}


@pytest.fixture(scope="module")
def soffice() -> str:
    return require_tool("soffice", "libreoffice")


@pytest.fixture(scope="module")
def tools():
    with Tools(IngestOptions()) as shared:
        yield shared


def _read(source, tools, **options) -> tuple[list, str]:
    """(the document's pages, what tesseract reads on them at HD-25). Dark ink only: tesseract reads
    nothing of black text on the blue box LibreOffice gives a slide's text frame."""
    with ingest.load(str(source), IngestOptions(**options), tools) as document:
        pages = list(document.pages())
        canvases = [views.canvas(page, plan(page.size, 25)).convert("L") for page in pages]
    return pages, "\n".join(read_back(c.point(lambda v: 255 if v > 100 else 0), psm=11) for c in canvases)


def _word_97(soffice, folder, text: str):
    rtf = folder / "letter.rtf"
    rtf.write_text(r"{\rtf1\ansi{\fonttbl{\f0 Liberation Sans;}}\f0\fs40 " + text + r"\par}")
    return convert(soffice, rtf, "doc")


def test_word_97_document_and_template(tmp_path, soffice, tools):
    doc = _word_97(soffice, tmp_path, "Invoice total due 7,340.25 EUR")
    pages, text = _read(doc, tools)
    assert [p.label for p in pages] == ["page 1"] and "7,340.25" in pages[0].text
    assert "Invoice total due 7,340.25 EUR" in text
    template = shutil.copyfile(doc, tmp_path / "letter.dot")  # a template is the same format under another name
    pages, text = _read(template, tools)
    assert "Invoice total due" in text


def test_powerpoint_97_presentation_and_slide_show(tmp_path, soffice, tools):
    deck = tmp_path / "deck.fodp"
    deck.write_text(FODP.format(slides="".join(SLIDE.format(n=n, text=t) for n, t in
                                               [(1, "Revenue grew 42 percent"), (2, "Hiring plan 2027")])))
    ppt = convert(soffice, deck, "ppt")
    pages, text = _read(ppt, tools)
    assert [p.label for p in pages] == ["slide 1", "slide 2"]
    assert "Revenue grew 42 percent" in text and "Hiring plan 2027" in text
    pages, _ = _read(shutil.copyfile(ppt, tmp_path / "deck.pps"), tools, pages="2")
    assert [(p.label, p.text) for p in pages] == [("slide 2", "Hiring plan 2027")]


def test_encrypted_word_97_document_is_refused_from_its_bytes(tmp_path, soffice):
    import olefile

    doc = _word_97(soffice, tmp_path, "secret")
    with olefile.OleFileIO(str(doc), write_mode=True) as ole:
        fib = bytearray(ole.openstream("WordDocument").read())
        struct.pack_into("<H", fib, 10, struct.unpack_from("<H", fib, 10)[0] | 0x0100)  # fEncrypted
        ole.write_stream("WordDocument", bytes(fib))
    with pytest.raises(PasswordRequired, match="password-protected"):
        ingest.load(str(doc))


def _workbook(path, transform=lambda name, data: data):
    """A one-sheet workbook written by openpyxl, each part passed through ``transform``."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Sales"
    sheet.append(["Region", "Revenue"])
    sheet.append(["North", 1234567.891])
    sheet.append(["South", 800000])
    for row in (2, 3):
        sheet.cell(row, 2).number_format = '"$"#,##0.00'
    plain = path.with_name("plain.xlsx")
    book.save(plain)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item, transform(item.filename, src.read(item)))
    return path


def _strict(name: str, data: bytes) -> bytes:
    for transitional, strict in STRICT.items():
        data = data.replace(transitional, strict)
    return data.replace(b"<workbook ", b'<workbook conformance="strict" ', 1) if name == "xl/workbook.xml" else data


@pytest.mark.parametrize("kind", ["strict", "odd style"])
def test_workbooks_openpyxl_cannot_read_are_drawn_by_libreoffice(tmp_path, soffice, tools, kind):
    import openpyxl

    if kind == "strict":
        source = _workbook(tmp_path / "strict.xlsx", _strict)
        assert openpyxl.load_workbook(source).active is None  # the premise: openpyxl sees no sheet
    else:
        source = _workbook(tmp_path / "odd.xlsx", lambda name, data: data.replace(b'builtinId="0"', b'builtinId="x"'))
        with pytest.raises(TypeError):
            openpyxl.load_workbook(source)  # the premise: openpyxl raises on the cell style's odd id
    pages, text = _read(source, tools)
    assert [p.label for p in pages] == ["Sales"]
    assert {"North", "$1,234,567.89", "$800,000.00"} <= {w.text for w in pages[0].words}
    assert "$1,234,567.89" in text and "$800,000.00" in text
    proc = run_cli("render", source)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr


def test_a_converter_closed_under_a_conversion_says_so_in_one_line(tmp_path, soffice):
    """Closing the converter (the run ending: a signal handler, the engine's clean-up) while a file's
    turn comes must not leave a LibreOffice started on a profile in the removed folder: that was a
    FileNotFoundError on the profile, an internal error."""
    doc = _word_97(soffice, tmp_path, "Closing time")
    converter = Converter(IngestOptions())
    try:
        closer = threading.Thread(target=converter.close)
        closer.start()
        closer.join()
        with pytest.raises(ExternalTimeout, match="the run is ending"):
            converter.convert(doc, IngestOptions(), str(doc))
    finally:
        converter.close()


def test_a_profile_folder_removed_by_someone_else_is_made_again(tmp_path, soffice):
    doc = _word_97(soffice, tmp_path, "Cleaned temporary folder")
    converter = Converter(IngestOptions())
    try:
        shutil.rmtree(converter._root)  # a temporary-file cleaner passed by
        folder, pdf = converter.convert(doc, IngestOptions(), str(doc))
        assert pdf.is_file()
        shutil.rmtree(folder)
    finally:
        converter.close()
    assert not converter._root.exists()


def test_a_file_of_the_other_generation_is_read_as_what_it_is(tmp_path, soffice, tools):
    doc = _word_97(soffice, tmp_path, "Renamed by hand")
    docx = convert(soffice, doc, "docx")
    for source, actual in ((shutil.copyfile(doc, tmp_path / "a.docm"), "Word 97-2003 document"),
                           (shutil.copyfile(docx, tmp_path / "b.doc"), "Word document")):
        with ingest.load(str(source), IngestOptions(), tools) as document:
            assert "Renamed by hand" in next(document.pages()).text
            assert document.warnings[0].startswith(f"the file is a {actual} named {source.suffix}")


def test_a_file_the_warm_libreoffice_dies_on_twice_gets_a_plain_run(tmp_path, soffice, monkeypatch):
    """The warm converter crashing is simulated (a fuzzed .doc of the corpus does it for real: Apache POI's
    Fuzzed.doc); the plain LibreOffice run that then converts it is real."""
    from docvision.ingest.office import warm

    doc = _word_97(soffice, tmp_path, "Second chance")

    def crash(self, *args, **kwargs):
        self.stop()
        raise warm.Crashed("the worker closed its output")

    monkeypatch.setattr(warm.WarmOffice, "receive", crash)
    with Tools(IngestOptions()) as own:
        with ingest.load(str(doc), IngestOptions(), own) as document:
            assert "Second chance" in next(document.pages()).text
            assert any("plain LibreOffice run converted it" in w for w in document.warnings)


def test_an_ole_container_olefile_refuses_is_libreoffice_to_judge(tmp_path, soffice):
    """Fuzzed .xls files that olefile cannot parse were refused as damaged ("its OLE container is damaged",
    with Python's own text); LibreOffice reads some of them, so it decides."""
    import olefile

    xls = convert(soffice, _workbook(tmp_path / "book.xlsx"), "xls")
    data = bytearray(xls.read_bytes())
    data[0x1E:0x20] = struct.pack("<H", 0x0D)  # a sector size olefile will not take (LibreOffice's reader may)
    (tmp_path / "odd.xls").write_bytes(bytes(data))
    with pytest.raises(Exception):  # noqa: B017 - the premise: olefile refuses the container
        olefile.OleFileIO(str(tmp_path / "odd.xls"))
    proc = run_cli("render", tmp_path / "odd.xls")
    assert "Traceback" not in proc.stderr and "OLE container" not in proc.stderr
    assert proc.returncode == 0 or "LibreOffice could not open the Excel 97-2003 workbook" in proc.stderr, proc.stderr
