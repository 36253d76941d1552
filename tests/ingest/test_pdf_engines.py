"""PDFs MuPDF alone would refuse or call damaged, which a viewer shows: PDFium's second opinion, attachment-only
encryption, dynamic XFA forms. Fixtures are written byte by byte here (tests/ingest/pdf_builders.py); the
pixels are judged by tesseract."""

from __future__ import annotations

import pymupdf
import pytest

from docvision import views
from docvision.document import IngestOptions
from docvision.errors import PasswordRequired
from docvision.ingest import pdf
from docvision.ingest.pdfsession import Budget, Session
from docvision.tiling import plan
from tests.helpers import json_lines, read_back, run_cli
from tests.ingest.pdf_builders import attachment_encrypted, dynamic_xfa, page_objects, type3_cycle
from tests.ingest.pdf_builders import pdf as pdf_bytes


def _drawn_text(document) -> tuple[list, str]:
    """(the pages, what tesseract reads on each page's HD-9 canvas, joined)."""
    pages, text = [], []
    for page in document.pages():
        pages.append(page)
        text.append(read_back(views.canvas(page, plan(page.size, 9))))
    return pages, "\n".join(text)


@pytest.mark.ocr
def test_a_type3_glyph_that_draws_itself_is_drawn_by_pdfium_not_damaged(tmp_path):
    type3_cycle(tmp_path / "t3.pdf")
    pymupdf.TOOLS.mupdf_warnings(reset=True)
    pymupdf.open(tmp_path / "t3.pdf")[0].get_displaylist()
    assert "type3" in pymupdf.TOOLS.mupdf_warnings(reset=True).lower()  # the premise: MuPDF complains
    with pdf.load(str(tmp_path / "t3.pdf"), IngestOptions()) as document:
        [page], text = _drawn_text(document)
        assert document.damaged == [] and page.warnings == []
        board = views.canvas(page, plan(page.size, 9))
    assert "Hello Type3 page" in text and [w.text for w in page.words][:3] == ["Hello", "Type3", "page"]
    square = board.crop((0, board.height * 0.3, board.width // 2, board.height * 0.45))
    assert square.convert("L").getextrema()[0] < 50  # the glyph's square is drawn, not left out
    proc = run_cli("render", tmp_path / "t3.pdf")
    assert proc.returncode == 0 and "damaged" not in proc.stdout + proc.stderr


@pytest.mark.ocr
def test_a_pdf_whose_attachments_alone_are_encrypted_opens_without_a_password(tmp_path):
    source = tmp_path / "report.pdf"
    attachment_encrypted(source, b"Quarterly report 2026")
    assert pymupdf.open(source).needs_pass  # the premise: MuPDF wants a password
    with pdf.load(str(source), IngestOptions()) as document:
        [page], text = _drawn_text(document)
        assert any("attachments are encrypted" in w for w in document.warnings), document.warnings
        assert document.metadata["encrypted"] is True and document.damaged == []
    assert "Quarterly report 2026" in text and "Quarterly" in page.text
    with pdf.load(str(source), IngestOptions(password="secret")) as document:  # the password still works
        assert "Quarterly" in next(document.pages()).text and document.metadata.get("engine") is None


def test_a_pdf_whose_pages_need_the_password_still_asks_for_it(tmp_path):
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "locked")
    doc.save(tmp_path / "locked.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="u", owner_pw="o")
    with pytest.raises(PasswordRequired, match="--password"):
        pdf.load(str(tmp_path / "locked.pdf"), IngestOptions())


@pytest.mark.ocr
def test_a_dynamic_xfa_form_warns_and_gives_its_words_as_facts(tmp_path):
    source = tmp_path / "claim.pdf"
    dynamic_xfa(source)
    with pdf.load(str(source), IngestOptions()) as document:
        [page], text = _drawn_text(document)
        assert document.metadata["xfa"] == "dynamic"
        assert any("dynamic XFA form" in w for w in document.warnings), document.warnings
    assert "Please wait" in text  # what every reader but Adobe's shows is drawn
    assert {"XFA form: Expense claim form 2026", "XFA form: Amount claimed", "XFA field Amount: 1234.56"} <= set(
        page.facts)
    proc = run_cli("render", source, "--json")
    assert proc.returncode == 0 and "dynamic XFA form" in proc.stderr
    assert any("dynamic XFA" in w for w in json_lines(proc.stdout)[0]["warnings"])


def test_a_page_tree_mupdf_finds_empty_is_read_by_pdfium(tmp_path):
    objects = page_objects(b"BT /F1 28 Tf 72 650 Td (Counted wrong) Tj ET")
    objects[1] = b"<</Type/Pages/Count 0/Kids[3 0 R]>>"  # a /Count that says no pages
    (tmp_path / "count.pdf").write_bytes(pdf_bytes(objects))
    with pdf.load(str(tmp_path / "count.pdf"), IngestOptions()) as document:
        assert document.page_count == 1 and "Counted wrong" in next(document.pages()).text
        assert any("second PDF engine" in w for w in document.warnings)


def test_the_second_engine_runs_under_the_page_memory_limit(tmp_path):
    """PDFium is asked inside the same request as MuPDF, under that request's address-space limit: with a
    few MB to spare it cannot even be loaded, and MuPDF's verdict (damaged) stands; with the usual
    allowance it reads the page whole. Either way docvision gets an answer, never a worker out of bounds."""
    type3_cycle(tmp_path / "t3.pdf")
    verdicts = []
    for allowance in (4 << 20, Budget(60.0).read_bytes):
        session = Session(str(tmp_path / "t3.pdf"), None, Budget(60.0, read_bytes=allowance), [0], pools=lambda: None)
        try:
            verdicts.append(bool(session.read(0).damage))
        finally:
            session.close()
    assert verdicts == [True, False]
