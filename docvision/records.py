"""Records: the one JSON shape every command emits per source (the contract is docs/records.md).

In: what a task produced for a source (a body holding some of ``KEYS``), or the error that stopped it.
Out: a plain dict with every key of ``KEYS``, always in that order, absent values null, so JSON Lines
output is byte-identical across runs of the same inputs and a script can read any record of any
command the same way.
"""

from __future__ import annotations

import json
from typing import IO, Any

from docvision.version import SCHEMA_VERSION
from docvision.errors import DocvisionError
from docvision.sources import shown

# Every record of every command has exactly these keys, in this order.
KEYS = (
    "schema",      # SCHEMA_VERSION
    "source",      # as given (a URL's password hidden, non-UTF-8 name bytes as \\xNN)
    "task",        # render | ask | summarize | extract
    "status",      # ok | error
    "question",    # ask
    "answer",      # ask
    "summary",     # summarize
    "sections",    # summarize, long documents: [{pages, summary}]
    "data",        # extract: the validated object
    "pages",       # render: one entry per page (plan, files)
    "evidence",    # [{page, label, boxes, words?, score?, field?, scanned?}]
    "document",    # {type, page_count, damaged_pages, metadata}
    "model",       # {id, backend, family, device, quant, dtype}
    "resolution",  # {hd, tile, pages, tiles, grid, canvas, visual_tokens}
    "usage",       # {calls, prompt_tokens, new_tokens, cached_prefix_tokens}
    "routing",     # ask/extract: {method, reason, terms}
    "warnings",    # [str]
    "error",       # {kind, message}
    "timings",     # seconds: load_s, render_s, model_s, prefill_s, ...
)
_DEFAULTS = {"warnings": []}


def build(source: str, task: str, body: dict | None = None, err: BaseException | None = None) -> dict:
    """A record: ``body``'s values under the contract's keys (the rest null), ok unless ``err`` is given."""
    body = dict(body or {})
    unknown = set(body) - set(KEYS)
    if unknown:
        raise ValueError(f"not record keys: {sorted(unknown)}")  # a programming error, not a user's
    record = {key: body.get(key, _DEFAULTS.get(key)) for key in KEYS}
    record.update(schema=SCHEMA_VERSION, source=shown(source), task=task, status="ok" if err is None else "error")
    if err is not None:
        record["error"] = error_of(err)
    if record["source"] != source:  # a password or raw bytes in the source: keep them out of the text too
        if record["error"]:
            record["error"]["message"] = record["error"]["message"].replace(source, record["source"])
        record["warnings"] = [w.replace(source, record["source"]) for w in record["warnings"]]
    return record


def ok(source: str, task: str, **body: Any) -> dict:
    """A successful record."""
    return build(source, task, body)


def error(source: str, task: str, err: BaseException, **body: Any) -> dict:
    """An error record: a one-line message and an error kind, plus whatever was known so far."""
    return build(source, task, body, err)


def error_of(err: BaseException) -> dict:
    """{kind, message} of an exception; anything that is not a DocvisionError is kind "internal"."""
    if isinstance(err, DocvisionError):
        kind, message = err.kind, err.message
    else:
        kind, message = "internal", f"{type(err).__name__}: {err}"
    return {"kind": kind, "message": " ".join(str(message).split())}  # one line, always


def dumps(record: dict) -> str:
    """One JSON line, no trailing newline; non-ASCII kept readable."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def write(record: dict, stream: IO[str]) -> None:
    """Append one record as a JSON line and flush, so finished work is on disk at once."""
    stream.write(dumps(record) + "\n")
    stream.flush()


def is_record(value: Any) -> bool:
    """Whether a parsed JSON line looks like a docvision record (for --resume over a hand-edited file)."""
    return (isinstance(value, dict) and isinstance(value.get("source"), str)
            and isinstance(value.get("task"), str) and value.get("status") in ("ok", "error"))
