"""URLs before and around the browser: routing PDFs and images, HTTP and network errors in one line,
download deadlines and caps, passwords kept out of everything shown, and --offline.
"""

from __future__ import annotations

import base64
import socket
import tempfile
from http.server import BaseHTTPRequestHandler

import pytest

from docvision import ingest
from docvision.document import IngestOptions
from docvision.errors import DocvisionError, ExternalTimeout, FetchError, UnsupportedSource
from docvision.ingest.tools import Tools
from tests.helpers import assert_one_error_line, json_lines, run_cli, serve_http
from tests.ingest.web_support import Handler, chromium, in_thread, server  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("chromium")]
PASSWORD = "s3cretPw77"


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


def test_browser_side_http_error_is_checked(server):
    # The header probe saw 200; Chromium gets 404 and Playwright does not raise on it.
    with pytest.raises(FetchError, match="HTTP 404"):
        ingest.load(f"{server}/flaky.html", IngestOptions())


def test_a_403_for_the_header_probe_lets_the_browser_decide(server):
    with ingest.load(f"{server}/botwall.html", IngestOptions(device_scale_factor=1)) as document:
        assert "welcome human" in next(document.pages()).text


def test_unsupported_content_type(server):
    with pytest.raises(UnsupportedSource, match="application/zip"):
        ingest.load(f"{server}/archive.zip", IngestOptions())


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
    proc = run_cli("render", silent_server, "--timeout", "2", timeout=60)
    assert proc.returncode == 1
    assert_one_error_line(proc, "did not answer within 2 s")


def test_a_pdf_trickling_in_fails_at_its_deadline_and_leaves_no_file(server, tmp_path, monkeypatch):
    # A few bytes a second: every read is in time, so only an overall deadline ends it.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(ExternalTimeout, match=r"download did not finish within 3 s \(\d+ bytes came"):
        in_thread(lambda: ingest.load(f"{server}/slow.pdf", IngestOptions(timeout=3)), 60)
    assert list(tmp_path.iterdir()) == []


def test_a_download_over_the_cap_is_refused_and_leaves_no_file(server, tmp_path, monkeypatch):
    from docvision.ingest.web import fetch

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(fetch, "MAX_DOWNLOAD_BYTES", 1000)  # the served PDF is ~1.4 kB
    with pytest.raises(DocvisionError, match="the download is over"):
        ingest.load(f"{server}/doc.pdf", IngestOptions())
    assert list(tmp_path.iterdir()) == []


class _Members(BaseHTTPRequestHandler):
    """Basic auth with PASSWORD: a page, a PDF, and a 404, each only for the member."""

    def do_GET(self):  # noqa: N802
        expected = "Basic " + base64.b64encode(f"member:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="members"')
            self.send_header("Content-Length", "0")
            return self.end_headers()
        if self.path == "/page.html":
            body, ctype = b"<title>Members</title><p>welcome member</p>", "text/html"
        elif self.path == "/doc.pdf":
            from tests.ingest.web_support import pdf_bytes

            body, ctype = pdf_bytes(), "application/pdf"
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            return self.end_headers()
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _shown(document) -> str:
    return repr((document.source, document.metadata, document.warnings))


def test_a_password_in_the_url_is_used_but_never_shown(tmp_path):
    httpd = serve_http(_Members)
    base = f"http://member:{PASSWORD}@127.0.0.1:{httpd.server_address[1]}"
    try:
        with Tools(IngestOptions(device_scale_factor=1)) as tools:
            with ingest.load(f"{base}/page.html", IngestOptions(device_scale_factor=1), tools) as page:
                assert next(page.pages()).text == "welcome member"  # the password was sent
                assert PASSWORD not in _shown(page) and "member:***@" in page.metadata["url"]
            with ingest.load(f"{base}/doc.pdf", IngestOptions(render_dpi=72), tools) as pdf:
                assert pdf.kind == "pdf" and PASSWORD not in _shown(pdf)
            for bad in (f"{base}/nope.html", f"http://member:{PASSWORD}@127.0.0.1:{_closed_port()}/x.html"):
                with pytest.raises(DocvisionError) as caught:
                    ingest.load(bad, IngestOptions(), tools)
                assert PASSWORD not in str(caught.value) and PASSWORD not in repr(caught.value.source)
        proc = run_cli("render", f"{base}/page.html", f"{base}/nope.html", "--json", timeout=120)
        ok, failed = json_lines(proc.stdout)
        assert ok["status"] == "ok" and failed["status"] == "error"
        # The record's "source" field (and the error line naming it) are the run's to redact; what the
        # ingestor said is checked here.
        assert PASSWORD not in repr((ok["warnings"], failed["error"]["message"], failed.get("warnings")))
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_offline_refuses_urls_without_touching_the_network(server):
    before = Handler.connections
    with pytest.raises(FetchError, match="offline"):
        ingest.load(f"{server}/numbers.html", IngestOptions(offline=True))
    assert Handler.connections == before
