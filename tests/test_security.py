"""What a document, a schema or a URL may not do: reach the network or the disk through a schema
reference, leak a URL's password, or pass a symlink loop off as a missing file; a local page may not make
the filesystem root its site. (Web pages and office files are held in detail in
tests/ingest/test_web_local.py, tests/ingest/test_web_site.py and tests/ingest/test_office_security.py.)"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

import pytest

from docvision.errors import UsageError
from docvision.tasks import extract
from tests.helpers import assert_one_error_line, json_lines, run_cli, run_scripted, serve_http
from tests.scripted import make_pdf


class Counting(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - the stdlib's name
        Counting.hits.append(self.path)
        body = json.dumps({"type": "number"}).encode()
        self.send_response(404 if "missing" in self.path else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Counting.hits = []
    httpd = serve_http(Counting)
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.parametrize("ref", ["{server}/total.json", "file:///etc/passwd", "other.json#/x", "../up.json"])
def test_a_schema_resolves_no_reference_outside_itself(tmp_path, server, ref):
    schema = {"type": "object", "properties": {"total": {"$ref": ref.format(server=server)}}}
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema))
    with pytest.raises(UsageError, match="refers outside itself"):
        extract.load_schema(path)
    proc = run_cli("extract", make_pdf(tmp_path / "a.pdf", ["Total 5"]), "--schema", path)
    assert proc.returncode == 2
    assert_one_error_line(proc, "refers outside itself")
    assert Counting.hits == []  # not one request


def test_references_inside_the_schema_still_work(tmp_path):
    schema = {"type": "object", "$defs": {"money": {"type": "number"}},
              "properties": {"total": {"$ref": "#/$defs/money"}}}
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema))
    loaded = extract.load_schema(path)
    assert extract.problems({"total": "lots"}, loaded) and not extract.problems({"total": 5, }, loaded)


def test_a_url_password_stays_out_of_records_and_error_lines(server):
    url = server.replace("http://", "http://anna:s3cret@") + "/missing.html"
    proc = run_scripted("summarize", url, "--json")
    assert proc.returncode == 1
    [record] = json_lines(proc.stdout)
    assert "s3cret" not in proc.stdout and "s3cret" not in proc.stderr
    assert record["source"].startswith("http://anna:***@127.0.0.1") and record["error"]["kind"] == "fetch"


def test_a_symlink_loop_is_named_as_one(tmp_path):
    (tmp_path / "a.pdf").symlink_to(tmp_path / "b.pdf")
    (tmp_path / "b.pdf").symlink_to(tmp_path / "a.pdf")
    assert_one_error_line(run_cli("render", tmp_path / "a.pdf"), "symbolic link that loops")


@pytest.mark.browser
def test_a_local_page_takes_nothing_from_the_root_of_the_disk(tmp_path):
    page = tmp_path / "page.html"
    page.write_text('<!doctype html><link rel="stylesheet" href="/etc/passwd"><p>page here</p>'
                    '<img src="../../../../../../../../etc/passwd"><img src="file:///etc/hostname">')
    proc = run_cli("render", page, "--json", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    [record] = json_lines(proc.stdout)
    [warning] = record["warnings"]
    assert warning.startswith("refused 2 files outside the page's site") and "/etc/passwd" in warning, warning
    assert "root:" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("root", ["/", "/etc"])
def test_local_root_may_not_name_the_root_of_the_disk(tmp_path, root):
    page = tmp_path / "page.html"
    page.write_text("<p>page</p>")
    assert_one_error_line(run_cli("render", page, "--local-root", root), "may not be the filesystem root")
