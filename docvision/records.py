"""Records: the one JSON shape every command emits per source (DESIGN.md section 4).

In: what a task produced (or the error that stopped it). Out: a plain dict with a fixed key
order, so JSON Lines output is byte-identical across runs of the same inputs.
"""

from __future__ import annotations

import json
from typing import IO, Any

from docvision import SCHEMA_VERSION
from docvision.errors import DocvisionError


def ok(source: str, task: str, **body: Any) -> dict:
    """A successful record; ``body`` holds answer/summary/data/pages, evidence, model, resolution, timings."""
    return {"schema": SCHEMA_VERSION, "source": source, "task": task, "status": "ok", **body}


def error(source: str, task: str, err: BaseException, **body: Any) -> dict:
    """An error record: a one-line message and an error kind, plus whatever was known so far."""
    if isinstance(err, DocvisionError):
        kind, message = err.kind, err.message
    else:
        kind, message = "internal", f"{type(err).__name__}: {err}"
    message = " ".join(str(message).split())  # one line, always
    return {
        "schema": SCHEMA_VERSION,
        "source": source,
        "task": task,
        "status": "error",
        "error": {"kind": kind, "message": message},
        **body,
    }


def dumps(record: dict) -> str:
    """One JSON line, no trailing newline; non-ASCII kept readable."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def write(record: dict, stream: IO[str]) -> None:
    """Append one record as a JSON line and flush, so finished work is on disk at once."""
    stream.write(dumps(record) + "\n")
    stream.flush()
