"""Tesseract, an independent judge, reads back the figures printed on a page from our HD-25 canvas."""

from __future__ import annotations

import pymupdf
import pytest

from docvision import views
from docvision.document import IngestOptions
from docvision.ingest import pdf
from docvision.tiling import plan
from tests.helpers import read_back, require_tool

FIGURES = ["$1,234,567.89", "$98,765.43", "42.7%", "(12,345)", "2024-03-31", "0.0031", "-8,901.25", "INV-20931"]


@pytest.mark.ocr
def test_tesseract_reads_the_exact_figures_from_the_canvas(tmp_path):
    require_tool("tesseract")

    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)  # US Letter
    page.insert_text((72, 72), "Quarterly statement", fontsize=16)
    for row, figure in enumerate(FIGURES):
        y = 120 + row * 28
        page.insert_text((72, y), f"Item {row + 1}", fontsize=11)
        page.insert_text((300, y), figure, fontsize=11)
    page.draw_line((72, 110), (540, 110))
    doc.save(str(tmp_path / "statement.pdf"))
    doc.close()

    with pdf.load(str(tmp_path / "statement.pdf"), IngestOptions()) as document:
        letter = next(document.pages())
        letter_plan = plan(letter.size, 25)
        board = views.canvas(letter, letter_plan)
    assert board.size == (1344, 1680)
    text = read_back(board, psm=11)
    tokens = set(text.split())
    missing = [f for f in FIGURES if f not in tokens]
    assert not missing, (missing, text)
