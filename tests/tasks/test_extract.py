"""extract: lenient parsing, validation, ONE repair attempt with the errors fed back, per-field evidence."""

from __future__ import annotations

import json

import pytest

from docvision.errors import UsageError
from docvision.tasks import extract
from tests.helpers import run_cli, run_task
from tests.scripted import ScriptedBackend, make_pdf

INVOICE = ["ACME Tools Ltd. Invoice 2024-118. Customer: Harbour Works.",
           "Line items: 40 bolts, 12 brackets. Total due: 1,234.50 EUR. Due date 2024-03-05. Paid: no."]
FIELDS = ["total:number", "due_date:date", "paid:bool", "customer"]


def _run(tmp_path, replies, fields=FIELDS, schema=None):
    source = make_pdf(tmp_path / "invoice.pdf", INVOICE)
    task = extract.ExtractTask(schema or extract.fields_schema(fields), hd=2)
    backend = ScriptedBackend(replies)
    written, sink = run_task([source], task, backend, cache_dir=tmp_path / "cache")
    return int(sink.failed), written[0], backend


def _by_field(record) -> dict:
    return {entry["field"]: entry for entry in record["evidence"]}


def test_parse_object_finds_json_in_fences_and_chatter():
    assert extract.parse_object('Here you go:\n```json\n{"a": 1}\n```') == {"a": 1}
    assert extract.parse_object('The answer is {"a": {"b": [1, 2]}} as requested.') == {"a": {"b": [1, 2]}}
    assert extract.parse_object('{broken {"a": 2}') == {"a": 2}
    with pytest.raises(ValueError):
        extract.parse_object("no object at all [1, 2]")


def test_field_specs_become_a_schema_and_bad_ones_are_usage_errors():
    schema = extract.fields_schema(["total:number", "tags:list", "name"])
    assert schema["required"] == ["total", "tags", "name"]
    assert schema["properties"]["name"]["type"] == ["string", "null"]
    for bad in (["total:money"], ["9lives"], ["a", "a"]):
        with pytest.raises(UsageError):
            extract.fields_schema(bad)
    assert extract.coerce({"total": "$1,234.50", "paid": "No"}, extract.fields_schema(["total:number", "paid:bool"])) \
        == {"total": 1234.5, "paid": False}


def test_valid_first_reply_gives_data_and_evidence(tmp_path):
    reply = ('```json\n{"total": "1,234.50", "due_date": "2024-03-05", "paid": false, "customer": "Harbour Works",'
             ' "_pages": {"total": "page 2", "customer": "page 1"}}\n```')
    code, record, backend = _run(tmp_path, [reply])
    assert code == 0 and record["status"] == "ok", record
    assert record["data"] == {"total": 1234.5, "due_date": "2024-03-05", "paid": False, "customer": "Harbour Works"}
    assert record["usage"]["repairs"] == 0 and len(backend.calls) == 1
    evidence = _by_field(record)
    assert evidence["total"]["label"] == "page 2" and evidence["customer"]["label"] == "page 1"
    assert evidence["total"]["page"] == 2 and evidence["total"]["words"] == ["1,234.50"]
    # due_date was not claimed: found in the text layer of page 2, with its box on the canvas
    assert evidence["due_date"]["label"] == "page 2" and evidence["due_date"]["boxes"]
    assert "Total" in backend.calls[0][1] or "total" in backend.calls[0][1]


def test_invalid_reply_is_repaired_once_with_the_errors_fed_back(tmp_path):
    first = '{"total": "about twelve hundred", "due_date": "5 March 2024", "paid": false, "customer": null}'
    second = '{"total": 1234.5, "due_date": "2024-03-05", "paid": false, "customer": null}'
    code, record, backend = _run(tmp_path, [first, second])
    assert code == 0 and record["data"]["total"] == 1234.5 and record["usage"]["repairs"] == 1
    assert len(backend.calls) == 2
    repair = backend.calls[1][1]
    assert "about twelve hundred" in repair and "total" in repair and "due_date" in repair
    assert "customer" not in _by_field(record)  # not given by the document: null, and no evidence


def test_still_invalid_after_repair_is_a_validation_error_not_invented_data(tmp_path):
    code, record, backend = _run(tmp_path, ["I could not read it.", '{"total": "n/a"}'])
    assert code == 1 and record["status"] == "error"
    assert record["error"]["kind"] == "validation"
    assert record["data"] == {"total": None, "due_date": None, "paid": None, "customer": None}
    assert len(backend.calls) == 2  # one try, one repair, no more


def test_schema_file(tmp_path):
    schema_path = tmp_path / "schema.json"
    schema_path.write_text(json.dumps({"type": "object", "required": ["items"], "properties": {
        "items": {"type": "array", "items": {"type": "string"}, "description": "line items"}}}))
    schema = extract.load_schema(schema_path)
    code, record, _ = _run(tmp_path, ['{"items": ["bolts", "brackets"]}'], schema=schema)
    assert code == 0 and record["data"] == {"items": ["bolts", "brackets"]}
    (tmp_path / "bad.json").write_text('{"type": "object", "properties": {"a": {"type": "nonsense"}}}')
    with pytest.raises(UsageError):
        extract.load_schema(tmp_path / "bad.json")


def test_cli_usage_errors():
    proc = run_cli("extract", "x.pdf")
    assert proc.returncode == 2 and "--field" in proc.stderr
    proc = run_cli("extract", "x.pdf", "--field", "total:money")
    assert proc.returncode == 2 and "unknown field type" in proc.stderr
