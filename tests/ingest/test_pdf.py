"""The PDF ingestor on PDFs generated here with PyMuPDF: sizes, anchors, rendering, bad files."""

from __future__ import annotations

import io

import pymupdf
import pytest
from PIL import Image

from docvision import views
from docvision.document import IngestOptions
from docvision.errors import DamagedSource, EmptySource, PageRangeError, PasswordRequired, SourceNotFound
from docvision.ingest import pdf
from docvision.tiling import plan

LETTER = (612, 792)


def make_pdf(path, pages=3, size=LETTER, rotate=0, words_at=None, **save) -> str:
    """A PDF whose page N says "Page N" at the top, with body text and a red box."""
    doc = pymupdf.open()
    for n in range(1, pages + 1):
        page = doc.new_page(width=size[0], height=size[1])
        page.insert_text((72, 72), f"Page {n}", fontsize=24)
        for line in range(8):
            page.insert_text((72, 140 + 18 * line), f"line {line} of page {n}: revenue 1,234.5", fontsize=11)
        page.draw_rect(pymupdf.Rect(400, 600, 500, 700), color=(1, 0, 0), fill=(1, 0, 0))
        for text, point, fontsize in words_at or ():
            page.insert_text(point, text, fontsize=fontsize)
        if rotate:
            page.set_rotation(rotate)
    doc.save(str(path), **save)
    doc.close()
    return str(path)


def zero_page_pdf(path) -> str:
    """PyMuPDF refuses to save zero pages, so write the smallest valid PDF with none by hand."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return str(path)


def truncated_pdf(path, pages=4, keep=0.6) -> str:
    """A 4-page PDF cut at 60%: pages 1-2 whole, 3 cut mid-stream, 4 gone; PyMuPDF repairs it."""
    good = path.with_name("whole.pdf")
    make_pdf(good, pages=pages)
    data = good.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return str(path)


def load(path, **options):
    return pdf.load(str(path), IngestOptions(**options))


def dark_fraction(image: Image.Image, box) -> float:
    histogram = image.crop(tuple(round(v) for v in box)).convert("L").histogram()
    return sum(histogram[:128]) / max(1, sum(histogram))


def test_letter_page_size_words_and_labels(tmp_path):
    with load(make_pdf(tmp_path / "a.pdf")) as doc:
        assert doc.kind == "pdf" and doc.page_count == 3
        pages = doc.pages()
        assert iter(pages) is pages  # a generator: pages come one at a time
        first = next(pages)
        assert first.size == (2550, 3300)  # US Letter at 300 dpi
        assert first.label == "page 1" and first.number == 1
        assert first.words[0].text == "Page" and first.words[1].text == "1"
        assert not first.scanned and not first.warnings
        # words in source pixels: 300/72 of their position in points
        x0, y0, x1, y1 = first.words[0].box
        assert x0 == pytest.approx(72 * 300 / 72, abs=1)
        assert y0 < 300 < y1 < 300 + 24 * 0.35 * 300 / 72  # baseline at 72 pt, a descender below
        assert [p.label for p in pages] == ["page 2", "page 3"]


def test_render_dpi_defines_source_pixels(tmp_path):
    with load(make_pdf(tmp_path / "a.pdf", pages=1, size=(595, 842)), render_dpi=72) as doc:
        assert next(doc.pages()).size == (595, 842)


@pytest.mark.parametrize("size", [(1298, 1680), (1344, 1680), (17, 1000), (1000, 17), (2550, 3300), (333, 777)])
def test_renders_exactly_the_asked_size_in_rgb(tmp_path, size):
    with load(make_pdf(tmp_path / "a.pdf", pages=1)) as doc:
        image = next(doc.pages()).render(*size)
    assert image.size == size and image.mode == "RGB"


def test_render_draws_the_page_content(tmp_path):
    with load(make_pdf(tmp_path / "a.pdf", pages=1)) as doc:
        page = next(doc.pages())
        image = page.render(612, 792)  # 1 px per point
    assert image.getpixel((450, 650)) == (255, 0, 0)  # inside the red box
    assert image.getpixel((300, 750)) == (255, 255, 255)  # blank margin


@pytest.mark.parametrize("rotate", [0, 90, 180, 270])
def test_anchors_land_on_their_words_in_canvas_pixels(tmp_path, rotate):
    marker = [("QUARTERLY", (150, 420), 28), ("9,876,543", (330, 520), 28)]
    with load(make_pdf(tmp_path / "a.pdf", pages=1, words_at=marker, rotate=rotate)) as doc:
        page = next(doc.pages())
        page_plan = plan(page.size, 25)
        board = views.canvas(page, page_plan)
    assert board.size == page_plan.canvas_size
    expected_size = (2550, 3300) if rotate in (0, 180) else (3300, 2550)
    assert page.size == expected_size
    for text in ("QUARTERLY", "9,876,543"):
        word = next(w for w in page.words if w.text == text)
        x0, y0, x1, y1 = page_plan.to_canvas(word.box)
        cx0, cy0, cx1, cy1 = page_plan.content_box
        assert cx0 <= x0 < x1 <= cx1 and cy0 <= y0 < y1 <= cy1
        assert dark_fraction(board, (x0, y0, x1, y1)) > 0.1, (text, rotate)
        # the same box moved off the word, well away from any text, is white
        height = y1 - y0
        if rotate == 0:
            assert dark_fraction(board, (x0, y0 - 3 * height, x1, y0 - 2 * height)) == 0


def test_page_range_and_out_of_range(tmp_path):
    path = make_pdf(tmp_path / "a.pdf", pages=5)
    with load(path, pages="2-3,5") as doc:
        pages = list(doc.pages())
    assert [p.label for p in pages] == ["page 2", "page 3", "page 5"]
    assert [p.words[1].text for p in pages] == ["2", "3", "5"]
    with pytest.raises(PageRangeError, match="outside the document, which has 5 pages"):
        load(path, pages="6-9")
    with load(path, pages="4-9") as doc:  # past the end: the pages there are, and a warning
        assert [p.label for p in doc.pages()] == ["page 4", "page 5"]
        assert doc.warnings == ["pages 4-9 reach past the end (the document has 5 pages): read 4-5"]


def test_encrypted_pdf_needs_the_right_password(tmp_path):
    path = make_pdf(tmp_path / "locked.pdf", pages=2, encryption=pymupdf.PDF_ENCRYPT_AES_256,
                    user_pw="s3cret", owner_pw="owner")
    with pytest.raises(PasswordRequired, match="--password"):
        load(path)
    with pytest.raises(PasswordRequired, match="wrong password"):
        load(path, password="nope")
    with load(path, password="s3cret") as doc:
        pages = list(doc.pages())
        assert doc.metadata["encrypted"] is True
        # the needs_pass trap would leave these decrypted pages blank
        assert pages[1].words[:2] and pages[1].words[1].text == "2"
        image = pages[0].render(612, 792)
    assert image.getpixel((450, 650)) == (255, 0, 0)


def test_scanned_page_detection(tmp_path):
    scan = Image.new("RGB", (850, 1100), (240, 240, 230))
    buffer = io.BytesIO()
    scan.save(buffer, "PNG")
    doc = pymupdf.open()
    doc.new_page().insert_image(pymupdf.Rect(0, 0, 612, 792), stream=buffer.getvalue())  # a scan
    doc.new_page().insert_image(pymupdf.Rect(50, 50, 150, 150), stream=buffer.getvalue())  # a logo
    text = doc.new_page()
    text.insert_image(pymupdf.Rect(0, 0, 612, 792), stream=buffer.getvalue())
    text.insert_text((72, 72), "searchable scan with OCR layer")
    doc.save(str(tmp_path / "scan.pdf"))
    with load(tmp_path / "scan.pdf") as loaded:
        assert [p.scanned for p in loaded.pages()] == [True, False, False]


def test_missing_html_random_and_empty_files(tmp_path):
    with pytest.raises(SourceNotFound):
        load(tmp_path / "nope.pdf")
    (tmp_path / "page.pdf").write_text("<!DOCTYPE html><html><body>hello</body></html>")
    with pytest.raises(DamagedSource, match="HTML"):
        load(tmp_path / "page.pdf")
    (tmp_path / "noise.pdf").write_bytes(bytes(range(256)) * 40)
    with pytest.raises(DamagedSource, match="not a valid PDF"):
        load(tmp_path / "noise.pdf")
    (tmp_path / "empty.pdf").write_bytes(b"")
    with pytest.raises(EmptySource):
        load(tmp_path / "empty.pdf")
    with pytest.raises(EmptySource, match="no pages"):
        load(zero_page_pdf(tmp_path / "zero.pdf"))


def test_pymupdf_file_not_found_becomes_ours(tmp_path, monkeypatch):
    # a file that vanishes between the check and the open raises PyMuPDF's own FileNotFoundError
    path = make_pdf(tmp_path / "a.pdf", pages=1)
    fitz = pdf.quiet_pymupdf()

    def vanish(*args, **kwargs):
        raise fitz.FileNotFoundError(f"no such file: {path!r}")

    monkeypatch.setattr(fitz, "open", vanish)
    with pytest.raises(SourceNotFound):
        load(path)


def test_truncated_pdf_renders_what_survives_and_names_damaged_pages(tmp_path):
    with load(truncated_pdf(tmp_path / "cut.pdf")) as doc:
        assert any("repaired" in w for w in doc.warnings)
        pages = list(doc.pages())
        for page in pages:
            image = views.canvas(page, plan(page.size, 9))
            assert image.size == plan(page.size, 9).canvas_size
        damaged = [p.number for p in pages if p.warnings]
    assert damaged == [3, 4]  # pages 1-2 survived whole
    summary = [w for w in doc.warnings if w.startswith("damaged page")]
    assert summary and all(str(n) in summary[0] for n in damaged)


def test_unopenable_pdf_is_damaged(tmp_path):
    (tmp_path / "stub.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 4)
    with pytest.raises(DamagedSource):
        with load(tmp_path / "stub.pdf") as doc:
            list(doc.pages())


def test_cropbox_words_and_pixels_agree(tmp_path):
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_text((200, 300), "CROPPED", fontsize=30)
    page.set_cropbox(pymupdf.Rect(100, 200, 500, 700))  # 400 x 500 pt visible
    doc.save(str(tmp_path / "crop.pdf"))
    with load(tmp_path / "crop.pdf") as loaded:
        cropped = next(loaded.pages())
        assert cropped.size == (round(400 * 300 / 72), round(500 * 300 / 72))
        word = cropped.words[0]
        assert word.text == "CROPPED"
        assert word.box[0] == pytest.approx((200 - 100) * 300 / 72, abs=1)  # measured from the crop
        page_plan = plan(cropped.size, 9)
        board = views.canvas(cropped, page_plan)
    assert dark_fraction(board, page_plan.to_canvas(word.box)) > 0.1


def test_broken_page_tree_and_catalog_are_damaged_not_crashes_or_empty(tmp_path):
    from docvision.tasks.render import RenderTask
    from tests.helpers import run_task

    # MuPDF raises its own FzErrorFormat ("cycle in page tree"), not a RuntimeError.
    (tmp_path / "cycle.pdf").write_bytes(
        b"%PDF-1.4\n1 0 obj\n<</Type/Catalog/Pages 2 0 R>>\nendobj\n2 0 obj\n<</Type/Pages/Count 1/Kids[2 0 R]>>"
        b"\nendobj\ntrailer\n<</Root 1 0 R>>\n%%EOF\n")
    [record], _ = run_task([tmp_path / "cycle.pdf"], RenderTask())
    assert record["error"]["kind"] == "damaged" and "no page could be read" in record["error"]["message"]
    good = pymupdf.open(make_pdf(tmp_path / "good.pdf", pages=1)).tobytes(garbage=0, deflate=False)
    at = good.index(b"/Type/Catalog")
    (tmp_path / "catalog.pdf").write_bytes(good[:at] + b"/Type\x01Catalog" + good[at + 13:])
    with pytest.raises(DamagedSource, match="the PDF is damaged: no page could be found"):
        load(tmp_path / "catalog.pdf")
