"""Capturing pages: segments, anchors, settling, and pages that fight back (scripts, loops, huge text).

Real Chromium (the run's one browser), pages served by a loopback server or written as local files,
and tesseract as the independent judge that the captured pixels show the page.
"""

from __future__ import annotations

import pytest

from docvision import ingest, views
from docvision.document import IngestOptions
from docvision.errors import ExternalTimeout
from docvision.tiling import plan
from tests.helpers import json_lines, read_line, run_cli
from tests.ingest.web_support import BOTTOM_TOP, NUMBERS, chromium, in_thread, numbers_page, ocr, server  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("chromium")]


@pytest.fixture(scope="module")
def long_doc(server):
    options = IngestOptions(viewport_width=800, device_scale_factor=2.0, segment_height=4096)
    document = ingest.load(f"{server}/long.html", options)
    yield document, list(document.pages())
    document.close()


def test_long_page_becomes_bounded_segments(long_doc):
    document, pages = long_doc
    # 9000 CSS px at scale 2 = 18000 device px, in segments of 4096: 4 full and one of 1616.
    assert document.kind == "web" and document.page_count == 5
    assert [p.label for p in pages] == [f"segment {i}/5" for i in range(1, 6)]
    assert [p.size for p in pages] == [(1600, 4096)] * 4 + [(1600, 1616)]
    assert document.metadata["status"] == 200 and document.metadata["css_size"] == [800, 9000]
    image = pages[-1].render(*pages[-1].size)
    assert image.size == (1600, 1616) and image.mode == "RGB"
    assert "Section 1" in pages[0].text and "Section 9" in pages[3].text  # its top is at 8000 CSS px
    assert not document.warnings


def test_fixed_bar_drawn_once_and_lazy_content_loaded(long_doc):
    _, pages = long_doc
    assert [p.text.count("TOPBAR") for p in pages] == [1, 0, 0, 0, 0]
    first, second = (p.render(*p.size) for p in pages[:2])
    assert first.getpixel((1600 - 20, 20)) == (204, 0, 0)  # the bar at the top right of segment 1
    assert second.getpixel((1600 - 20, 20)) != (204, 0, 0)  # and not repeated in segment 2
    assert "LAZY 777" in pages[3].text  # 6500 CSS px is in segment 4 (6144-8192)


def test_bottom_marker_is_anchored_and_visible(long_doc):
    _, pages = long_doc
    last = pages[-1]
    word = next(w for w in last.words if w.text == "424242")
    # The marker's line (48 CSS px tall) starts (8700 - 4 * 2048) CSS px into the last segment, x from 300
    # CSS px on. Its glyphs' box depends on the machine's monospace font; their middle is on that line.
    x0, y0, x1, y1 = word.box
    line_top = (BOTTOM_TOP - 4 * 2048) * 2
    assert line_top <= (y0 + y1) / 2 <= line_top + 96 and 300 * 2 <= x0 < 1600 and y1 - y0 > 60, word.box
    page_plan = plan(last.size, 25)
    board = views.canvas(last, page_plan)
    assert read_line(board, page_plan.to_canvas(word.box), allowed="0123456789") == "424242"


def test_tesseract_reads_numbers_from_the_hd25_canvas(server):
    document = ingest.load(f"{server}/numbers.html", IngestOptions())  # alert/confirm get dismissed
    with document:
        (page,) = list(document.pages())
        assert document.metadata["title"] == "Numbers"
        page_plan = plan(page.size, 25, max_scale=page.max_scale)
        board = views.canvas(page, page_plan)
        anchors = {w.text: w.box for w in page.words}
    assert "Quarterly" in ocr(board)
    for number in NUMBERS:  # each read where its anchor says it is, as digits (a 5 is never an S)
        assert number in anchors
        assert read_line(board, page_plan.to_canvas(anchors[number]), allowed="0123456789") == number


def test_local_html_file_is_captured(tmp_path):
    path = tmp_path / "figures.htm"
    path.write_text(numbers_page())
    with ingest.load(str(path), IngestOptions(device_scale_factor=1.0)) as document:
        (page,) = list(document.pages())
        assert 400 < page.size[0] < 1280 and "Quarterly" in page.text  # its content, not the whole window
        assert document.metadata["final_url"].startswith("file://")


def test_svg_document_without_body_is_captured(server):
    # Playwright's full-page screenshot hangs on documents without <body>; they take another path.
    with ingest.load(f"{server}/drawing.svg", IngestOptions(timeout=10, device_scale_factor=1)) as document:
        page = next(document.pages())
        assert document.kind == "web" and page.size == (1280, 720) and "8080" in page.text


def test_load_event_that_never_fires_still_captures(server):
    with ingest.load(f"{server}/hanging.html", IngestOptions(timeout=2, device_scale_factor=1)) as document:
        assert "still here" in next(document.pages()).text
        assert any("load event did not fire" in w for w in document.warnings), document.warnings


def test_page_whose_script_never_yields_times_out(server):
    with pytest.raises(ExternalTimeout, match="stopped responding"):
        in_thread(lambda: ingest.load(f"{server}/busy.html", IngestOptions(timeout=2)), 60)
    with ingest.load(f"{server}/isolation.html", IngestOptions(device_scale_factor=1)) as document:
        assert next(document.pages()).text == "fresh"  # the shared browser is still fine


def test_page_that_never_settles_is_captured_with_a_warning(server):
    proc = run_cli("render", f"{server}/restless.html", "--timeout", "4", "--scale", "1", "--json", timeout=60)
    assert proc.returncode == 0, proc.stderr
    (record,) = json_lines(proc.stdout)
    assert record["status"] == "ok" and record["pages"][0]["words"] >= 1
    assert any("kept changing" in w for w in record["warnings"]), record


def test_refresh_loops_are_captured_with_a_warning(server, tmp_path):
    path = tmp_path / "refresh.html"
    path.write_text('<meta http-equiv="refresh" content="0"><p>refreshing forever</p>')
    for source, text in ((str(path), "refreshing forever"), (f"{server}/reloading.html", "reloaded forever")):
        document = in_thread(lambda: ingest.load(source, IngestOptions(timeout=8, device_scale_factor=1)), 60)
        with document:
            assert next(document.pages()).text == text
            assert any("refresh loop" in w for w in document.warnings), document.warnings


def test_url_changes_without_reloading_are_not_a_loop(tmp_path):
    path = tmp_path / "spa.html"
    path.write_text("<p>single page app</p><script>for (let i = 0; i < 20; i++) history.pushState({}, '', '#s' + i);"
                    "setTimeout(() => { for (let i = 0; i < 20; i++) location.hash = 'h' + i; }, 50)</script>")
    with ingest.load(str(path), IngestOptions(timeout=8, device_scale_factor=1)) as document:
        assert next(document.pages()).text == "single page app"
        assert not any("loop" in w for w in document.warnings), document.warnings


def test_a_thousand_alerts_do_not_stall_the_page(tmp_path):
    path = tmp_path / "alerts.html"
    path.write_text("<p>after alerts</p><script>for (let i = 0; i < 1000; i++) { alert(i); confirm(i); }</script>")
    document = in_thread(lambda: ingest.load(str(path), IngestOptions(timeout=8, device_scale_factor=1)), 60)
    with document:
        assert next(document.pages()).text == "after alerts"
        assert not document.warnings


def test_a_script_that_freezes_the_page_mid_capture_cannot_hang_us(tmp_path):
    # Reading document.title (as the capture does) starts an endless loop: Playwright's own
    # wait_for_function timeout then never fired and the process hung for good.
    trap = tmp_path / "trap.html"
    trap.write_text('<p>trap</p><script>Object.defineProperty(document, "title", {get() {'
                    ' setTimeout(() => { while (true) {} }, 0); return "trap"; }});</script>')
    fine = tmp_path / "fine.html"
    fine.write_text("<p>still fine</p>")
    proc = run_cli("render", trap, fine, "--timeout", "3", "--json", timeout=120)
    trapped, after = json_lines(proc.stdout)
    assert trapped["status"] == "error" and "stopped responding for 3 s" in trapped["error"]["message"]
    assert after["status"] == "ok" and after["pages"][0]["words"] == 2  # the next page in the batch still renders


def test_a_huge_single_paragraph_is_cut_to_its_budgets_with_warnings(tmp_path):
    # One paragraph of 0.5 MB: each word's box costs a walk through the whole text node, and each
    # segment lays the whole (73000 px tall) page out again; it took minutes before budgets.
    words = " ".join(f"w{i % 997}" for i in range(100_000))
    path = tmp_path / "oneline.html"
    path.write_text(f"<!doctype html><html><body><p>{words}</p></body></html>")
    # 15 segments of 4096 px in 60000 CSS px. --timeout 8: words get 2 s (100,000 took 8 s here), drawing
    # 10 s (a segment 3-7 s), each step 8 s at least; under load the budgets cut sooner, never later.
    options = IngestOptions(timeout=8, device_scale_factor=2.0)
    document = in_thread(lambda: ingest.load(str(path), options), 240)
    with document:
        pages = list(document.pages())
        text = " ".join(document.warnings)
        assert "captured the first 60000 px" in text  # the pixel budget
        assert "finding the page's words took over 2 s" in text and "(the picture is whole)" in text
        assert "drawing the page took over 10 s" in text  # the time budget for segments
        assert 1 <= document.page_count < 15 and len(pages) == document.page_count
        assert pages[0].words and pages[0].words[0].text == "w0"  # anchors kept up to where they got
