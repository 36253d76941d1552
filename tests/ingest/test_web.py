"""Web ingestor against pages served by a local HTTP server started here, and local .html files.

Real Chromium (the process's one shared browser), real PyMuPDF for the routed PDF, and tesseract as
the independent judge that the captured pixels show the page.
"""

from __future__ import annotations

import os
import socket
import time
from http.server import BaseHTTPRequestHandler

import pytest

from docvision import ingest, views
from docvision.ingest.web import browser
from docvision.document import IngestOptions
from docvision.errors import ExternalTimeout, FetchError, ToolMissing, UnsupportedSource
from docvision.tiling import plan
from tests.helpers import assert_one_error_line, json_lines, run_cli, serve_http

pytestmark = pytest.mark.browser
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

LONG_SECTIONS = 9  # sections of 1000 CSS px each
BOTTOM_TOP = 8700  # CSS px: where the bottom marker sits
NUMBERS = ["31415", "27182", "16180", "14142", "17320", "22360", "69314", "57721"]


def _long_page() -> str:
    sections = "".join(
        f'<div style="height:1000px;box-sizing:border-box;border-top:2px solid #888;font:32px sans-serif">'
        f"Section {i + 1}</div>" for i in range(LONG_SECTIONS)
    )
    marker = (f'<div style="position:absolute;left:300px;top:{BOTTOM_TOP}px;font:bold 48px monospace;'
              f'line-height:48px">ENDMARK 424242</div>')
    # A fixed bar (must be drawn once, not in every segment) and a block filled in only when scrolled
    # into view (lazy content the scroll-through must trigger).
    fixed = ('<div style="position:fixed;top:0;right:0;width:200px;height:60px;background:#c00;color:#fff;'
             'font:24px sans-serif">TOPBAR</div>')
    lazy = """<div id=lazy style="position:absolute;left:40px;top:6500px;font:32px sans-serif"></div><script>
    new IntersectionObserver(es => es.forEach(e => { if (e.isIntersecting) e.target.textContent = 'LAZY 777'; }))
      .observe(document.getElementById('lazy'));</script>"""
    return (f"<!doctype html><html><body style='margin:0;position:relative'>{fixed}{sections}{marker}{lazy}"
            "</body></html>")


def _numbers_page() -> str:
    rows = "".join(f"<tr><td>Item {i + 1}</td><td>{n}</td></tr>" for i, n in enumerate(NUMBERS))
    return ("<!doctype html><html><head><title>Numbers</title><style>body{font:36px sans-serif;margin:40px}"
            "td{padding:6px 40px}</style></head><body><h1>Quarterly figures</h1>"
            f"<table>{rows}</table><script>alert('hello'); confirm('sure?');</script></body></html>")


RESTLESS_PAGE = """<!doctype html><html><body><p>restless</p><script>
let n = 0;
setInterval(() => { fetch('/poll?' + n++); const p = document.createElement('p');
  p.textContent = 'tick ' + n; document.body.appendChild(p); }, 80);
</script></body></html>"""

ISOLATION_PAGE = """<!doctype html><html><body><p id=out></p><script>
document.getElementById('out').textContent = localStorage.getItem('seen') ? 'reused' : 'fresh';
localStorage.setItem('seen', '1');
</script></body></html>"""


def _pdf_bytes() -> bytes:
    import pymupdf

    doc = pymupdf.open()
    for text in ("Routed PDF page one", "Routed PDF page two"):
        doc.new_page().insert_text((72, 100), text, fontsize=20)
    return doc.tobytes()


def _png_bytes() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


class _Handler(BaseHTTPRequestHandler):
    routes: dict = {}
    hits: dict = {}

    def do_GET(self):  # noqa: N802 - http.server's naming
        path = self.path.split("?")[0]
        self.hits[path] = self.hits.get(path, 0) + 1
        if path.startswith("/loop"):  # redirects to itself for ever
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            return self.end_headers()
        if path == "/error":
            return self._send(500, "text/html", b"<h1>boom</h1>")
        if path == "/hang.png":  # holds the load event back until the browser gives up
            time.sleep(20)
            return None
        if path == "/flaky.html":  # 200 for the header probe, 404 for the browser
            return self._send(200 if self.hits[path] == 1 else 404, "text/html", b"<p>flaky</p>")
        if path == "/botwall.html":  # refuses scripts, serves browsers
            browser_ua = "Chrome" in self.headers.get("User-Agent", "")
            return self._send(200 if browser_ua else 403, "text/html", b"<p>welcome human</p>")
        route = self.routes.get(path)
        if route is None:
            return self._send(404, "text/html", b"<h1>not here</h1>")
        self._send(200, *route)

    def _send(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    _Handler.routes = {
        "/long.html": ("text/html; charset=utf-8", _long_page().encode()),
        "/numbers.html": ("text/html", _numbers_page().encode()),
        "/restless.html": ("text/html", RESTLESS_PAGE.encode()),
        "/isolation.html": ("text/html", ISOLATION_PAGE.encode()),
        "/poll": ("application/json", b"{}"),
        "/drawing.svg": ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300">'
                         b'<text x="20" y="150" font-size="40">SVG 8080</text></svg>'),
        "/busy.html": ("text/html", b"<p>busy</p><script>setTimeout(() => { while (true) {} }, 200)</script>"),
        "/hanging.html": ("text/html", b"<p>still here</p><img src='/hang.png'>"),
        "/doc.pdf": ("application/pdf", _pdf_bytes()),
        "/download": ("application/octet-stream", _pdf_bytes()),
        "/poster.png": ("image/png", _png_bytes()),
        "/archive.zip": ("application/zip", b"PK\x03\x04" + b"\0" * 100),
        "/reloading.html": ("text/html", b"<p>reloaded forever</p><script>setTimeout(() => location.reload(), 10)"
                            b"</script>"),
    }
    httpd = serve_http(_Handler)
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module", autouse=True)
def chromium():
    try:
        return browser.find_browser()
    except ToolMissing as exc:
        pytest.fail(f"{exc} (.ci/run installs chromium)", pytrace=False)


@pytest.fixture(scope="module")
def long_doc(server):
    options = IngestOptions(viewport_width=800, device_scale_factor=2.0, segment_height=4096)
    document = ingest.load(f"{server}/long.html", options)
    yield document, list(document.pages())
    document.close()


def _ocr(image, psm: int = 11) -> str:
    import pytesseract

    return pytesseract.image_to_string(image, config=f"--psm {psm}")


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
    # The marker's top sits (8700 - 4 * 2048) CSS px into the last segment, x from 300 CSS px on.
    x0, y0, x1, y1 = word.box
    assert abs(y0 - (BOTTOM_TOP - 4 * 2048) * 2) < 12 and 300 * 2 < x0 < 1600 and y1 - y0 > 60
    page_plan = plan(last.size, 25)
    board = views.canvas(last, page_plan)
    cx0, cy0, cx1, cy1 = page_plan.to_canvas(word.box)
    crop = board.crop((int(cx0) - 8, int(cy0) - 8, int(cx1) + 8, int(cy1) + 8))
    assert "424242" in _ocr(crop, psm=7)


def test_tesseract_reads_numbers_from_the_hd25_canvas(server):
    document = ingest.load(f"{server}/numbers.html", IngestOptions())  # alert/confirm get dismissed
    with document:
        (page,) = list(document.pages())
        assert document.metadata["title"] == "Numbers"
        page_plan = plan(page.size, 25)
        text = _ocr(views.canvas(page, page_plan))
        anchors = {w.text for w in page.words}
    for number in NUMBERS:
        assert number in text, (number, text)
        assert number in anchors


def test_local_html_file_is_captured(tmp_path):
    path = tmp_path / "figures.htm"
    path.write_text(_numbers_page())
    with ingest.load(str(path), IngestOptions(device_scale_factor=1.0)) as document:
        (page,) = list(document.pages())
        assert page.size[0] == 1280 and "Quarterly" in page.text
        assert document.metadata["final_url"].startswith("file://")


def test_one_browser_and_a_fresh_context_per_source(server):
    from docvision.ingest.tools import Tools

    texts = []
    options = IngestOptions(device_scale_factor=1.0)
    with Tools(options) as tools:
        for _ in range(2):
            with ingest.load(f"{server}/isolation.html", options, tools) as document:
                texts.append(next(document.pages()).text)
        first = tools.browser()
        assert tools.browser() is first and first.alive
    assert not first.alive  # closed with the run's tools
    assert texts == ["fresh", "fresh"]  # the second visit saw no storage from the first


def test_pdf_and_image_urls_are_routed_to_their_ingestors(server):
    for url in (f"{server}/doc.pdf", f"{server}/download"):
        document = ingest.load(url, IngestOptions(render_dpi=72))
        with document:
            assert document.kind == "pdf" and document.page_count == 2 and document.source == url
            pages = list(document.pages())
            assert "Routed PDF page two" in pages[1].text
    with ingest.load(f"{server}/poster.png", IngestOptions()) as document:
        assert document.kind == "image"
        assert next(document.pages()).size == (300, 200)


def test_svg_document_without_body_is_captured(server):
    # Playwright's full-page screenshot hangs on documents without <body>; they take another path.
    with ingest.load(f"{server}/drawing.svg", IngestOptions(timeout=10, device_scale_factor=1)) as document:
        page = next(document.pages())
        assert document.kind == "web" and page.size == (1280, 720) and "8080" in page.text


def test_browser_side_http_error_is_checked(server):
    # The header probe saw 200; Chromium gets 404 and Playwright does not raise on it.
    with pytest.raises(FetchError, match="HTTP 404"):
        ingest.load(f"{server}/flaky.html", IngestOptions())


def test_load_event_that_never_fires_still_captures(server):
    with ingest.load(f"{server}/hanging.html", IngestOptions(timeout=2, device_scale_factor=1)) as document:
        assert "still here" in next(document.pages()).text
        assert any("load event did not fire" in w for w in document.warnings), document.warnings


def test_page_whose_script_never_yields_times_out(server):
    with pytest.raises(ExternalTimeout, match="stopped responding"):
        ingest.load(f"{server}/busy.html", IngestOptions(timeout=2))
    with ingest.load(f"{server}/isolation.html", IngestOptions(device_scale_factor=1)) as document:
        assert next(document.pages()).text == "fresh"  # the shared browser is still fine


def test_no_browser_found_says_how_to_install(monkeypatch):
    monkeypatch.delenv(browser.ENV_VAR, raising=False)
    monkeypatch.setattr(browser, "playwright_managed", lambda playwright=None: None)
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    with pytest.raises(ToolMissing, match="apt-get install chromium.*playwright install chromium"):
        browser.find_browser()


@pytest.mark.parametrize("text, error, fragment", [
    ("Page.goto: net::ERR_CONNECTION_REFUSED at http://127.0.0.1:9/", FetchError, "connection refused by 127.0.0.1:9"),
    ("Page.goto: net::ERR_NAME_NOT_RESOLVED at http://a.invalid/", FetchError, "cannot resolve host"),
    ("Page.goto: net::ERR_TIMED_OUT at http://127.0.0.1:9/", ExternalTimeout, "timed out"),
    ("Page.goto: Download is starting", FetchError, "downloads are refused"),
    ("Page.goto: net::ERR_SSL_PROTOCOL_ERROR at http://127.0.0.1:9/", FetchError, "net::ERR_SSL_PROTOCOL_ERROR"),
    ("Page.goto: net::ERR_TOO_MANY_REDIRECTS at http://127.0.0.1:9/", FetchError, "redirects in a loop"),
    ("Exceeded maximum allowed redirects.", FetchError, "redirects in a loop"),  # httpx's wording
    ("Page.goto: net::ERR_CERT_AUTHORITY_INVALID at https://127.0.0.1:9/", FetchError, "self-signed"),
])
def test_chromium_network_errors_become_one_line(text, error, fragment):
    from docvision.ingest.web.fetch import network_error

    exc = network_error(RuntimeError(text), "http://127.0.0.1:9/")
    assert isinstance(exc, error) and fragment in str(exc) and "\n" not in str(exc)


def test_a_403_for_the_header_probe_lets_the_browser_decide(server):
    with ingest.load(f"{server}/botwall.html", IngestOptions(device_scale_factor=1)) as document:
        assert "welcome human" in next(document.pages()).text


def test_unsupported_content_type(server):
    with pytest.raises(UnsupportedSource, match="application/zip"):
        ingest.load(f"{server}/archive.zip", IngestOptions())


def test_page_that_never_settles_is_captured_with_a_warning(server):
    started = time.monotonic()
    proc = run_cli("render", f"{server}/restless.html", "--timeout", "4", "--scale", "1", "--json", timeout=60)
    assert proc.returncode == 0, proc.stderr
    (record,) = json_lines(proc.stdout)
    assert record["status"] == "ok" and record["pages"][0]["words"] >= 1
    assert any("kept changing" in w for w in record["warnings"]), record
    assert time.monotonic() - started < 30


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_server():
    """A server that accepts connections and never answers (the kernel accepts; nobody reads)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    sock.close()


@pytest.mark.parametrize("case", ["refused", "unresolvable", "404", "500", "missing_file", "redirect_loop"])
def test_errors_give_one_line_and_exit_1(case, server, tmp_path):
    source, fragment, kind = {
        "refused": (f"http://127.0.0.1:{_closed_port()}/", "connection refused", "fetch"),
        "unresolvable": ("http://docvision-test.invalid/page.html", "cannot resolve host", "fetch"),
        "404": (f"{server}/nope.html", "HTTP 404 Not Found", "fetch"),
        "500": (f"{server}/error", "HTTP 500", "fetch"),
        "missing_file": (str(tmp_path / "missing.html"), "no such file", "not_found"),
        "redirect_loop": (f"{server}/loop", "redirects in a loop", "fetch"),
    }[case]
    proc = run_cli("render", source, "--json", timeout=60)
    assert proc.returncode == 1
    assert_one_error_line(proc, fragment)
    (record,) = json_lines(proc.stdout)
    assert record["status"] == "error" and record["error"]["kind"] == kind


def test_silent_server_times_out(silent_server):
    started = time.monotonic()
    proc = run_cli("render", silent_server, "--timeout", "2", timeout=60)
    assert proc.returncode == 1
    assert_one_error_line(proc, "did not answer within 2 s")
    assert time.monotonic() - started < 20


def test_missing_browser_says_how_to_install(server):
    proc = run_cli("render", f"{server}/numbers.html", "--browser", "/nonexistent/chrome", timeout=60)
    assert proc.returncode == 1
    assert_one_error_line(proc, "apt-get install chromium")


def test_refresh_loops_are_captured_with_a_warning(server, tmp_path):
    path = tmp_path / "refresh.html"
    path.write_text('<meta http-equiv="refresh" content="0"><p>refreshing forever</p>')
    for source, text in ((str(path), "refreshing forever"), (f"{server}/reloading.html", "reloaded forever")):
        started = time.monotonic()
        with ingest.load(source, IngestOptions(timeout=8, device_scale_factor=1)) as document:
            assert next(document.pages()).text == text
            assert any("refresh loop" in w for w in document.warnings), document.warnings
        assert time.monotonic() - started < 8


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
    with ingest.load(str(path), IngestOptions(timeout=8, device_scale_factor=1)) as document:
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
    started = time.monotonic()
    proc = run_cli("render", trap, fine, "--timeout", "3", "--json", timeout=120)
    assert time.monotonic() - started < 60
    trapped, after = json_lines(proc.stdout)
    assert trapped["status"] == "error" and "stopped responding for 3 s" in trapped["error"]["message"]
    assert after["status"] == "ok" and after["pages"][0]["words"] == 2  # the next page in the batch still renders
