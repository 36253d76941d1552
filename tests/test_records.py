"""The record contract (docs/records.md): every record of every command has the same keys in the same order."""

import io
import json

import pytest

from docvision import SCHEMA_VERSION, records
from docvision.errors import PasswordRequired


def test_ok_and_error_records_have_every_key_in_order():
    ok = records.ok("a.pdf", "render", pages=[], timings={"render_s": 0.1})
    err = records.error("b.pdf", "ask", PasswordRequired("x", source="b.pdf"))
    assert list(ok) == list(err) == list(records.KEYS)
    assert ok["schema"] == SCHEMA_VERSION == 2 and ok["status"] == "ok" and ok["error"] is None
    assert ok["answer"] is None and ok["warnings"] == [] and err["pages"] is None


def test_a_key_outside_the_contract_is_a_programming_error():
    with pytest.raises(ValueError):
        records.ok("a.pdf", "ask", kind="pdf")


def test_error_record_is_one_line_with_kind():
    err = PasswordRequired("the PDF is encrypted:\n pass --password", source="a.pdf")
    rec = records.error("a.pdf", "render", err)
    assert rec["status"] == "error"
    assert rec["error"] == {"kind": "password", "message": "the PDF is encrypted: pass --password"}


def test_unexpected_exception_becomes_internal_error():
    rec = records.error("a.pdf", "ask", ValueError("boom"))
    assert rec["error"]["kind"] == "internal" and "boom" in rec["error"]["message"]


def test_write_appends_one_flushed_json_line():
    stream = io.StringIO()
    records.write(records.ok("ü.pdf", "render"), stream)
    line = stream.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line)["source"] == "ü.pdf" and "ü" in line


def test_a_password_in_a_url_never_reaches_the_record():
    url = "https://anna:s3cret@example.org/report.pdf"
    rec = records.error(url, "ask", PasswordRequired(f"could not open {url}", source=url), warnings=[f"{url} slow"])
    text = records.dumps(rec)
    assert "s3cret" not in text and rec["source"] == "https://anna:***@example.org/report.pdf"


def test_file_name_bytes_that_are_not_utf8_stay_valid_json():
    name = b"r\xe9sum\xe9.pdf".decode("utf-8", "surrogateescape")  # how Python hands such an argv over
    line = records.dumps(records.ok(name, "render"))
    line.encode("utf-8")  # would raise on a lone surrogate
    assert json.loads(line)["source"] == "r\\xe9sum\\xe9.pdf"
