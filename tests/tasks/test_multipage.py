"""Multi-page ask: routed pages in one call, or map-reduce over chunks when the evidence does not fit."""

from __future__ import annotations

from docvision.tasks.ask import AskTask
from docvision.tasks.multipage import NOT_FOUND
from docvision.tasks.routing import Budget
from tests.helpers import run_task
from tests.scripted import FILLER, ScriptedBackend, make_pdf


def _ask(tmp_path, texts, question, replies=(), budget=Budget()):
    source = make_pdf(tmp_path / "doc.pdf", texts)
    backend = ScriptedBackend(list(replies))
    written, sink = run_task([source], AskTask(question, hd=2, budget=budget), backend, cache_dir=tmp_path / "cache")
    assert not sink.failed, written
    return written[0], backend


def test_relevant_pages_fit_one_call(tmp_path):
    texts = [f"Page {i}. " + FILLER for i in range(1, 9)]
    texts[2] += " Turbine output was 41 MW."
    texts[5] += " Turbine output forecast: 44 MW in May."
    record, backend = _ask(tmp_path, texts, "What was the turbine output?")
    assert len(backend.calls) == 1
    labels, prompt = backend.calls[0]
    assert labels == ["page 3", "page 6"] and prompt.endswith("Question: What was the turbine output?")
    assert [e["label"] for e in record["evidence"]] == ["page 3", "page 6"]
    assert all(e["score"] > 0 for e in record["evidence"])
    assert set(record["evidence"][0]["words"]) == {"Turbine", "output"}
    assert len(record["evidence"][0]["boxes"]) == len(record["evidence"][0]["words"])
    assert record["routing"]["reason"] == "matched" and record["usage"]["calls"] == 1


def test_evidence_spanning_more_pages_than_fit_is_mapped_then_combined(tmp_path):
    texts = [f"Page {i}. " + FILLER for i in range(1, 7)]
    for i in (1, 3, 5):
        texts[i] += " The glacier retreated further this year."
    replies = ["page 2: retreated 12 m", NOT_FOUND, "page 6: retreated 9 m", "12 m and 9 m"]
    record, backend = _ask(tmp_path, texts, "How far did the glacier retreat?", replies, Budget(pages=1))
    maps, combine = backend.calls[:3], backend.calls[3]
    assert sorted(labels[0] for labels, _ in maps) == ["page 2", "page 4", "page 6"]
    assert all(NOT_FOUND in prompt for _, prompt in maps)
    assert "retreated 12 m" in combine[1] and "retreated 9 m" in combine[1] and NOT_FOUND not in combine[1]
    assert combine[0] == []  # the combining call is text only: no page goes along
    assert record["answer"] == "12 m and 9 m"
    assert record["usage"]["calls"] == 4 and record["resolution"]["pages"] == 3
    not_found_page = maps[1][0][0]
    assert not_found_page not in [e["label"] for e in record["evidence"]]


def test_the_facts_a_file_states_about_its_pages_reach_the_prompt(tmp_path):
    """A chart's title and series (office files give them) are quoted after the pages, before the question."""
    from docvision.tasks.pages import Chunk
    from docvision.tasks.multipage import answer

    chunk = Chunk([], [], 0, 1, extra={"facts": ["Sales: chart 'Revenue by region' (bar): series East, West"]})
    backend = ScriptedBackend(["East."])
    text, *_ = answer("Which region leads?", iter([chunk]), backend)
    prompt = backend.calls[0][1]
    assert text == "East." and "The file also says: Sales: chart 'Revenue by region'" in prompt
    assert prompt.index("The file also says") < prompt.index("Question: Which region leads?")
