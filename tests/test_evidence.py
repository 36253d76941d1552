"""Evidence pictures: a crop per region that still shows the matched words (tesseract reads them back
from the crop), and the whole page with every region numbered."""

from __future__ import annotations

import pytest
from PIL import Image

from docvision import evidence, ingest, views
from docvision.document import IngestOptions
from docvision.ingest import ocr
from docvision.tasks import routing
from docvision.tasks.pages import evidence_entry
from docvision.tiling import plan
from tests import scans
from tests.helpers import read_back, require_tool
from tests.scripted import FILLER, make_pdf


def _read(path: str) -> set[str]:
    text = read_back(path)
    return {scans.clean(token) for token in text.split()}


@pytest.mark.ocr
@pytest.mark.parametrize("hd", [9, 25])
def test_crops_of_a_pdf_answer_show_the_matched_words(tmp_path, hd):
    require_tool("tesseract")
    text = FILLER + "The axolotl census counted 4312 animals in the northern lakes. " + FILLER * 2
    path = make_pdf(tmp_path / "doc.pdf", [text + "\n\n\n\n\nAppendix: one more axolotl sighting."])
    with ingest.load(str(path), IngestOptions()) as document:
        page = next(document.pages())
        page_plan = plan(page.size, hd)
        board = views.canvas(page, page_plan)
        entry = evidence_entry(page, page_plan, routing.query_terms("How many axolotl were counted?"))
        boxes = entry["boxes"]
        assert entry["words"] == ["axolotl", "counted", "axolotl"]
        written = evidence.write(board, page_plan, boxes, tmp_path / "evidence", "page-001", page.render)
    # "axolotl census counted" is one region; the appendix's axolotl, lines below, another.
    assert len(written["regions"]) == 2
    first, second = (_read(r["file"]) for r in written["regions"])
    assert {"axolotl", "census", "counted"} <= first, first  # the matched words and the one between
    assert "axolotl" in second, second
    picture = Image.open(written["page"])
    assert max(picture.size) <= evidence.PAGE_MAX_SIDE
    left, top, right, _bottom = page_plan.content_box
    x0, y0, x1, y1 = written["regions"][0]["box"]
    factor = picture.width / (right - left)  # the page without its padding
    centre = round(((x0 + x1) / 2 - left) * factor)
    above = [picture.getpixel((centre, round((y0 - top) * factor) - dy)) for dy in range(1, 12)]
    assert any(r > 180 and g < 80 and b < 80 for r, g, b in above), above  # the red outline over the words


@pytest.mark.ocr
def test_a_crop_from_a_scanned_page_shows_the_words_ocr_found(tmp_path):
    require_tool("tesseract")
    scan = scans.report_page(21, fact=["The", "quarry", "inspection", "logged", "7821", "hours."])
    scan.image.save(tmp_path / "scan.png")
    with ocr.with_ocr(ingest.load(str(tmp_path / "scan.png"), IngestOptions())) as document:
        page = next(document.pages())
        page_plan = plan(page.size, 25)
        board = views.canvas(page, page_plan)
        entry = evidence_entry(page, page_plan, ["quarry", "7821"])
        assert entry["words"] == ["quarry", "7821"]
        boxes = entry["boxes"]
        written = evidence.write(board, page_plan, boxes, tmp_path, "scan", page.render)
    # Two words apart: two crops, each showing its word.
    assert [r["box"] for r in written["regions"]] == boxes
    first, second = (_read(r["file"]) for r in written["regions"])
    assert "quarry" in first and "7821" in second, (first, second)


def test_regions_join_neighbours_and_keep_distant_words_apart():
    line = [(100, 100, 160, 120), (170, 100, 230, 120), (240, 101, 300, 121)]
    far = (100, 600, 160, 620)
    assert evidence.regions([*line, far]) == [(100, 100, 300, 121), far]
    assert evidence.regions([far, (800, 100, 850, 120)]) == [(800, 100, 850, 120), far]  # reading order


def test_crops_stay_on_the_page_and_small_ones_are_enlarged(tmp_path):
    page_plan = plan((3840, 1600), 9)  # landscape: white padding above and below the page
    board = Image.new("RGB", page_plan.canvas_size, (255, 255, 255))
    left, top, right, bottom = page_plan.content_box
    assert top > 0
    word = (left + 2.0, top + 1.0, left + 30.0, top + 9.0)
    written = evidence.write(board, page_plan, [word, (5, 5, 5, 20)], tmp_path, "p")  # the second is empty
    [region] = written["regions"]
    picture = Image.open(region["file"])
    assert min(picture.size) >= evidence.CROP_MIN_SIDE // 2 and picture.width <= 4 * (right - left)
    assert evidence._context(word, page_plan.content_box)[1] == top  # the page's edge, not the padding
    assert Image.open(written["page"]).size == (right - left, bottom - top)  # the page, not the padding
    assert len(evidence.write(board, page_plan, [], tmp_path, "none")["regions"]) == 0
