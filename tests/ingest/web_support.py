"""What the web tests share: pages made in code, a loopback HTTP server that counts what reaches it,
tesseract as the judge of pixels, and the fixtures built on them (imported by each test_web_* module).
"""

from __future__ import annotations

import io
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from docvision.errors import ToolMissing
from docvision.ingest.web import browser
from tests.helpers import read_back, serve_http


LONG_SECTIONS = 9  # sections of 1000 CSS px each
BOTTOM_TOP = 8700  # CSS px: where the bottom marker sits
NUMBERS = ["31415", "27182", "16180", "14142", "17320", "22360", "69314", "57721"]


def long_page() -> str:
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


def numbers_page() -> str:
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


def pdf_bytes() -> bytes:
    import pymupdf

    doc = pymupdf.open()
    for text in ("Routed PDF page one", "Routed PDF page two"):
        doc.new_page().insert_text((72, 100), text, fontsize=20)
    return doc.tobytes()


def png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


class Handler(BaseHTTPRequestHandler):
    """Routes from ``routes`` (path -> (type, body)) and a few behaviours; counts every request."""

    routes: dict = {}
    hits: dict = {}
    connections = 0

    def setup(self):
        type(self).connections += 1  # every TCP connection, even one that never sends a request
        super().setup()

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
        if path == "/slow.pdf":  # a PDF served a few bytes a second, never ending in time
            return self._trickle()
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

    def _trickle(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        try:
            self.wfile.write(b"%PDF")
            for _ in range(600):
                self.wfile.write(b"0 ")
                self.wfile.flush()
                time.sleep(0.3)
        except OSError:
            pass

    def log_message(self, *args):
        pass


ROUTES = {
    "/long.html": ("text/html; charset=utf-8", long_page().encode()),
    "/numbers.html": ("text/html", numbers_page().encode()),
    "/restless.html": ("text/html", RESTLESS_PAGE.encode()),
    "/isolation.html": ("text/html", ISOLATION_PAGE.encode()),
    "/poll": ("application/json", b"{}"),
    "/drawing.svg": ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300">'
                     b'<text x="20" y="150" font-size="40">SVG 8080</text></svg>'),
    "/busy.html": ("text/html", b"<p>busy</p><script>setTimeout(() => { while (true) {} }, 200)</script>"),
    "/hanging.html": ("text/html", b"<p>still here</p><img src='/hang.png'>"),
    "/reloading.html": ("text/html", b"<p>reloaded forever</p><script>setTimeout(() => location.reload(), 10)"
                        b"</script>"),
    "/archive.zip": ("application/zip", b"PK\x03\x04" + b"\0" * 100),
    "/pixel.png": ("image/png", b""),
}


@pytest.fixture(scope="module")
def server():
    """A loopback server for the module's tests; ``Handler.hits`` and ``connections`` count traffic."""
    Handler.routes = {**ROUTES, "/doc.pdf": ("application/pdf", pdf_bytes()),
                      "/download": ("application/octet-stream", pdf_bytes()),
                      "/poster.png": ("image/png", png_bytes())}
    Handler.hits = {}
    httpd = serve_http(Handler)
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def chromium():
    try:
        return browser.find_browser()
    except ToolMissing as exc:
        pytest.fail(f"{exc} (.ci/run installs chromium)", pytrace=False)


def ocr(image, psm: int = 11) -> str:
    """What tesseract reads in an image (the independent judge of what was drawn)."""
    return read_back(image, psm=psm)


def in_thread(target, limit: float):
    """Run ``target()`` in a thread; fail the test (not hang it) when it is still running after ``limit`` s."""
    box: dict = {}

    def run():
        try:
            box["value"] = target()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        pytest.fail(f"still running after {limit:g} s (a hang)", pytrace=False)
    if "error" in box:
        raise box["error"]
    return box.get("value")
