"""summarize: page by page for long documents, then combined; one call for short ones; real tiny model."""

from __future__ import annotations

from docvision.tasks.routing import Budget
from docvision.tasks.summarize import FAN_IN, SummarizeTask
from tests.helpers import run_task
from tests.scripted import ScriptedBackend, make_pdf


def _summarize(tmp_path, pages: int, per_call: int):
    source = make_pdf(tmp_path / f"doc{pages}.pdf", [f"Chapter {i} text." for i in range(1, pages + 1)])
    backend = ScriptedBackend()
    written, sink = run_task([source], SummarizeTask(hd=1, budget=Budget(pages=per_call)), backend,
                             cache_dir=tmp_path / "cache")
    assert not sink.failed, written
    return written[0], backend


def test_short_document_is_one_call(tmp_path):
    record, backend = _summarize(tmp_path, 3, 4)
    assert len(backend.calls) == 1 and backend.calls[0][0] == ["page 1", "page 2", "page 3"]
    assert "Summarize the document" in backend.calls[0][1]
    assert record["summary"] == "reply 1" and record["sections"] is None
    assert record["usage"]["calls"] == 1 and record["resolution"]["pages"] == 3


def test_long_document_is_summarized_in_sections_then_combined(tmp_path):
    record, backend = _summarize(tmp_path, 2 * FAN_IN + 1, 1)
    sections = 2 * FAN_IN + 1
    images = [labels for labels, _ in backend.calls[:sections]]
    assert images == [[f"page {i}"] for i in range(1, sections + 1)]
    combines = backend.calls[sections:]
    assert len(combines) == 3  # 17 sections -> groups of 8, 8, 1 -> 2 calls; 3 left -> 1 call
    assert "[page 1]" in combines[0][1] and "Combine them" in combines[0][1]
    assert all(labels == [] for labels, _ in combines)  # combining is text only: no page goes along
    assert [s["pages"] for s in record["sections"]][:2] == ["page 1", "page 2"]
    assert record["summary"] == f"reply {len(backend.calls)}"
    assert [e["label"] for e in record["evidence"]] == [f"page {i}" for i in range(1, sections + 1)]
