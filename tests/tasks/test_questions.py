"""ask with several questions: one record per source and question, in order, the model loaded once, and
--resume exact per question."""

from __future__ import annotations

import json

from tests.helpers import json_lines, run_scripted
from tests.scripted import make_pdf


def test_two_questions_give_two_records_per_source_in_order(tmp_path):
    a = make_pdf(tmp_path / "a.pdf", ["The harbour logged 17 ships.", "Tides were high."])
    b = make_pdf(tmp_path / "b.pdf", ["Cranes: 4."])
    proc = run_scripted("ask", a, b, "-q", "how many ships?", "-q", "what about tides?", "--json")
    assert proc.returncode == 0, proc.stderr
    got = [(r["source"], r["question"], r["status"]) for r in json_lines(proc.stdout)]
    assert got == [(str(a), "how many ships?", "ok"), (str(a), "what about tides?", "ok"),
                   (str(b), "how many ships?", "ok"), (str(b), "what about tides?", "ok")]
    first, second = json_lines(proc.stdout)[:2]
    assert [e["label"] for e in first["evidence"]] == ["page 1"]  # each question routed to its own page
    assert [e["label"] for e in second["evidence"]] == ["page 2"]


def test_questions_from_a_file_and_resume_per_question(tmp_path):
    a = make_pdf(tmp_path / "a.pdf", ["The harbour logged 17 ships."])
    questions = tmp_path / "questions.txt"
    questions.write_text("how many ships?\n\nwho logged them?\n")
    out = tmp_path / "out.jsonl"
    proc = run_scripted("ask", a, "--questions", questions, "--json", "--output", out)
    assert proc.returncode == 0 and len(json_lines(proc.stdout)) == 2, proc.stderr
    kept = out.read_text().splitlines()[:1]  # as if the run had stopped after the first question
    out.write_text("\n".join(kept) + "\n")
    again = run_scripted("ask", a, "--questions", questions, "--json", "--output", out, "--resume")
    assert [r["question"] for r in json_lines(again.stdout)] == ["who logged them?"], again.stderr
    assert sorted(json.loads(line)["question"] for line in out.read_text().splitlines()) == [
        "how many ships?", "who logged them?"]


def test_system_replaces_the_system_prompt_and_raw_sends_the_question_verbatim(tmp_path):
    from docvision.tasks.ask import AskTask
    from tests.helpers import run_task
    from tests.scripted import ScriptedBackend

    pdf = make_pdf(tmp_path / "a.pdf", ["The harbour logged 17 ships."])
    backend = ScriptedBackend()
    task = AskTask("Question: How many ships? Answer:", hd=2, system="You are terse.", raw=True)
    [record], _ = run_task([pdf], task, backend)
    assert record["status"] == "ok"
    assert backend.calls[0][1] == "Question: How many ships? Answer:" and backend.systems == ["You are terse."]


def test_a_second_question_about_the_same_pages_reuses_their_encoding(tmp_path, tiny_model_dir):
    """The records say what was reused: the second question's prompt starts from the first one's cache."""
    from tests.helpers import run_cli

    pdf = make_pdf(tmp_path / "a.pdf", ["The harbour logged 17 ships.", "Tides were high."])
    proc = run_cli("ask", pdf, "-q", "how many ships?", "-q", "how high were the tides?", "--pages", "1-2",
                   "--model", tiny_model_dir("qwen2_5_vl"), "--hd", "1", "--max-new-tokens", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    first, second = json_lines(proc.stdout)
    assert first["usage"]["cached_prefix_tokens"] == 0
    assert second["usage"]["cached_prefix_tokens"] > second["resolution"]["visual_tokens"]
    off = run_cli("ask", pdf, "-q", "how many ships?", "-q", "how high were the tides?", "--pages", "1-2",
                  "--model", tiny_model_dir("qwen2_5_vl"), "--hd", "1", "--max-new-tokens", "2", "--json",
                  "--prefix-cache-mb", "0")
    assert [r["usage"]["cached_prefix_tokens"] for r in json_lines(off.stdout)] == [0, 0]
