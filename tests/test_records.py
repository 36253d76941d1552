"""The record shape every command emits."""

import io
import json

from docvision import SCHEMA_VERSION, records
from docvision.errors import PasswordRequired


def test_ok_record_fields_in_order():
    rec = records.ok("a.pdf", "render", pages=[], timings={"render_s": 0.1})
    assert list(rec)[:4] == ["schema", "source", "task", "status"]
    assert rec["schema"] == SCHEMA_VERSION and rec["status"] == "ok"


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
