"""OCR gives textless pages words with boxes: on scans and a photographed poster made in code, through
the real ingestors, tesseract and the render cache; lazily; and never as an exception."""

from __future__ import annotations

import dataclasses
import io

import pytest

from docvision import cache as cache_module
from docvision.document import IngestOptions, Page, Word
from docvision.ingest import image as image_ingest, ocr, pdf
from docvision.tasks import routing
from docvision.tasks.pages import survey
from docvision.tasks.render import page_anchors
from docvision.tiling import plan
from tests import scans
from tests.helpers import require_tool


def _found(words) -> list:
    return [(w.text, w.box) for w in words]


def test_ocr_size_keeps_300_dpi_pages_enlarges_small_pictures_and_caps_posters():
    assert ocr.ocr_size((2550, 3300)) == (2550, 3300)  # US Letter at 300 dpi: as it is
    assert ocr.ocr_size((600, 400)) == (1200, 800)  # enlarged, at most twice
    assert ocr.ocr_size((1000, 500)) == (1600, 800)
    width, height = ocr.ocr_size((20000, 30000))
    assert width * height <= ocr.MAX_PIXELS and abs(width / height - 2 / 3) < 0.01


def test_tsv_words_keep_reading_order_and_drop_low_confidence():
    tsv = ("level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
           "4\t1\t1\t1\t1\t0\t10\t10\t200\t20\t-1\t\n"
           "5\t1\t1\t1\t1\t1\t10\t10\t50\t20\t96.5\tTotal\n"
           "5\t1\t1\t1\t1\t2\t70\t10\t40\t20\t12.0\t~\n"
           "5\t1\t1\t1\t1\t3\t120\t10\t60\t20\t91\t$1,204\n"
           "5\t1\t1\t1\t1\t4\t190\t10\t5\t20\t95\t \n")
    words = ocr._parse_tsv(tsv, 40.0)
    assert words == (Word("Total", (10.0, 10.0, 60.0, 30.0), origin="ocr"),
                     Word("$1,204", (120.0, 10.0, 180.0, 30.0), origin="ocr"))


@pytest.mark.ocr
def test_a_scanned_page_is_read_back_with_boxes_on_the_printed_words():
    require_tool("tesseract")
    scan = scans.report_page(11, fact=["The", "glacier", "inspection", "logged", "2345", "hours."])
    reading = ocr.read(scan.image)
    assert reading.warning is None and reading.ms > 0
    assert all(w.origin == "ocr" for w in reading.words)
    hits = scans.matched(scan.words, _found(reading.words))
    assert len(hits) >= 0.9 * len(scan.words), (len(hits), len(scan.words))
    assert {"glacier", "2345"} <= {scans.clean(t) for t, _ in hits}


@pytest.mark.ocr
def test_scanned_pdf_pages_get_ocr_anchors_in_canvas_pixels_only_when_looked_at(tmp_path):
    require_tool("tesseract")
    truth = scans.scanned_pdf(tmp_path / "scan.pdf", pages=2)
    with ocr.with_ocr(pdf.load(str(tmp_path / "scan.pdf"), IngestOptions(render_dpi=200))) as document:
        first, second = list(document.pages())
        assert first.scanned and isinstance(first.words, ocr.OcrWords)
        anchors_plan = plan(second.size, 25)
        anchors = page_anchors(second, anchors_plan)
        assert not first.words.read and second.words.read  # page 1 was never looked at: never read
    assert second.size == truth[1].image.size  # 200 dpi: the scan's own pixels
    printed = [(t, anchors_plan.to_canvas(b)) for t, b in truth[1].words]
    hits = scans.matched(printed, [(a["text"], a["box"]) for a in anchors])
    assert len(hits) >= 0.85 * len(printed), (len(hits), len(printed))


@pytest.mark.ocr
def test_a_photographed_poster_gets_words_over_its_printed_words(tmp_path):
    require_tool("tesseract")
    poster = scans.poster()
    poster.image.save(tmp_path / "poster.jpg", quality=85)
    with ocr.with_ocr(image_ingest.load(str(tmp_path / "poster.jpg"), IngestOptions()), "auto") as document:
        [page] = list(document.pages())
        words = list(page.words)
    hits = scans.matched(poster.words, _found(words), min_iou=0.5)
    assert len(hits) >= 0.9 * len(poster.words), (hits, words)
    assert sorted(iou for _, iou in hits)[len(hits) // 2] > 0.75  # median overlap: tight boxes


@pytest.mark.ocr
@pytest.mark.slow
def test_a_ten_page_scan_routes_each_question_to_its_page_and_the_cache_keeps_the_words(tmp_path, monkeypatch):
    require_tool("tesseract")
    source = str(tmp_path / "report.pdf")
    scans.scanned_pdf(tmp_path / "report.pdf", pages=10)  # 10 OCR runs: 15 s
    options = IngestOptions(render_dpi=200)  # the scans' own resolution: half the OCR time of 300 dpi
    cache = cache_module.RenderCache(tmp_path / "cache")
    with cache.open(source, options) as document:
        pages = survey(document)
        texts = [page.text for page in pages]
    assert all(p.scanned for p in pages)
    for index in (0, 3, 6, 9):
        _topic, _line, question = scans.routing_fact(index)
        chosen = routing.route(question, pages)
        assert chosen.reason == "matched"
        assert [p.number for p in chosen.chunks[0]] == [index + 1], (question, chosen.scores)
    assert len(list((tmp_path / "cache").rglob("p*.ocr-eng.json"))) == 10
    # A second run reads the words from the cache: tesseract is not run again.
    calls = []
    real = ocr.read
    monkeypatch.setattr(ocr, "read", lambda *a, **k: calls.append(1) or real(*a, **k))
    with cache_module.RenderCache(tmp_path / "cache").open(source, options) as again:
        assert [page.text for page in survey(again)] == texts
    assert calls == []
    # Without OCR the scan has no text: routing can only read it from the start.
    with cache.open(source, dataclasses.replace(options, ocr="never")) as document:
        assert routing.route(scans.routing_fact(6)[2], survey(document)).reason == "no_text"


@pytest.mark.ocr
def test_always_adds_the_words_of_a_picture_on_a_born_digital_page_without_doubling_its_text(tmp_path):
    require_tool("tesseract")
    import pymupdf

    picture = scans.page_image([["Warehouse", "capacity", "forecast"]], size=(1200, 300), text_px=60)
    buffer = io.BytesIO()
    picture.image.save(buffer, format="PNG")
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_text((72, 72), "Quarterly review of the northern depots", fontsize=14)
    page.insert_image(pymupdf.Rect(72, 200, 540, 317), stream=buffer.getvalue())
    doc.save(str(tmp_path / "mixed.pdf"))
    doc.close()
    with ocr.with_ocr(pdf.load(str(tmp_path / "mixed.pdf"), IngestOptions()), "auto") as document:
        assert not isinstance(next(document.pages()).words, ocr.OcrWords)  # it has a text layer
    with ocr.with_ocr(pdf.load(str(tmp_path / "mixed.pdf"), IngestOptions()), "always") as document:
        words = list(next(document.pages()).words)
    texts = [w.text for w in words]
    assert texts[:6] == ["Quarterly", "review", "of", "the", "northern", "depots"]
    assert [w.origin for w in words[:6]] == ["text"] * 6
    assert {"Warehouse", "capacity", "forecast"} <= {w.text for w in words if w.origin == "ocr"}
    assert texts.count("Quarterly") == 1 and texts.count("depots") == 1  # read twice, kept once


def _textless(render) -> Page:
    return Page(label="page 1", number=1, size=(800, 600), render=render)


@pytest.mark.ocr
def test_failures_become_page_warnings_never_exceptions(monkeypatch):
    require_tool("tesseract")
    scan = scans.page_image([["Payment", "schedule"]], size=(800, 600))
    page = ocr.attach(_textless(lambda w, h: scan.image.resize((w, h))), "auto", "zzz")
    assert list(page.words) == [] and "no tesseract language pack for zzz" in page.warnings[0]
    assert "apt-get install tesseract-ocr-zzz" in page.warnings[0]

    def broken(width, height):
        raise OSError("image file is truncated")

    page = ocr.attach(_textless(broken))
    assert list(page.words) == [] and page.warnings == ["OCR failed: OSError: image file is truncated"]

    reading = ocr.read(scan.image, timeout=0.001)
    assert reading.words == () and reading.warning == "OCR gave up after 0.001 s on this page"

    monkeypatch.setenv("PATH", "/nonexistent")
    page = ocr.attach(_textless(lambda w, h: scan.image.resize((w, h))))
    assert list(page.words) == []
    assert page.warnings == [
        "OCR skipped: OCR needs tesseract, which is not installed: apt-get install tesseract-ocr"]


def test_modes_and_languages_are_checked():
    page = Page(label="p", number=1, size=(10, 10), render=lambda w, h: None, words=[Word("Total", (0, 0, 5, 5))])
    assert not ocr.needs_ocr(page, "auto") and ocr.needs_ocr(page, "always") and not ocr.needs_ocr(page, "never")
    blank = dataclasses.replace(page, words=[Word("—", (0, 0, 5, 5))])
    assert ocr.needs_ocr(blank, "auto")
    assert "bad OCR language" in ocr.lang_problem("eng;rm -rf")
    with pytest.raises(ValueError, match="auto, always, never"):
        ocr.with_ocr(None, "sometimes")


@pytest.mark.ocr
def test_lang_reads_umlauts_that_english_alone_misreads():
    require_tool("tesseract")
    printed = ["Die", "Größe", "der", "Übersicht", "für", "Straße"]
    scan = scans.page_image([printed], size=(1400, 300), text_px=50)
    assert [w.text for w in ocr.read(scan.image, lang="eng+deu").words] == printed
    assert "Größe" not in [w.text for w in ocr.read(scan.image, lang="eng").words]


@pytest.mark.ocr
def test_every_frame_of_a_tiff_gets_its_own_words(tmp_path):
    require_tool("tesseract")
    frames = [scans.page_image([["Receipt", "number", f"{n}0417"]], size=(1200, 300), text_px=48).image
              for n in (1, 2)]
    frames[0].save(tmp_path / "fax.tif", save_all=True, append_images=frames[1:])
    with ocr.with_ocr(image_ingest.load(str(tmp_path / "fax.tif"), IngestOptions())) as document:
        texts = [[w.text for w in page.words] for page in document.pages()]
    assert texts == [["Receipt", "number", "10417"], ["Receipt", "number", "20417"]]
