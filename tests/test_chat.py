"""docvision chat: a session through a pseudo-terminal (pexpect) and through a pipe; follow-ups see the
conversation; /pages, /hd, /reset, /save; Ctrl-C stops one answer, Ctrl-D leaves."""

from __future__ import annotations

import json
import os
import sys
import time

import pexpect

from docvision.document import IngestOptions
from docvision.ingest import load
from docvision.tasks.chat import Conversation as Session
from tests.helpers import ROOT, _SCRIPTED, json_lines, run_scripted
from tests.scripted import ScriptedBackend, make_pdf

PAGES = ["The harbour logged 17 ships in March.", "Tides were the highest in ten years.", "Cranes: 4 new ones."]


def test_follow_ups_see_the_conversation_and_pages_and_hd_change(tmp_path):
    pdf = make_pdf(tmp_path / "a.pdf", PAGES)
    backend = ScriptedBackend(["17 ships.", "In March.", "Four."])
    with load(str(pdf), IngestOptions()) as document:
        talk = Session([document], backend, hd=2)
        first = talk.ask("How many ships were logged?")
        second = talk.ask("In which month?")
        assert first["answer"] == "17 ships." and [e["label"] for e in first["evidence"]] == ["page 1"]
        assert "Earlier in this conversation:\nQ: How many ships were logged?\nA: 17 ships." in backend.calls[1][1]
        assert backend.calls[1][1].endswith("Question: In which month?")
        assert [e["label"] for e in second["evidence"]] == ["page 1"]  # the follow-up found the same page
        talk.set_pages("3")
        talk.set_hd(4)
        third = talk.ask("How many cranes?")
        assert [e["label"] for e in third["evidence"]] == ["page 3"] and third["resolution"]["hd"] == 4
        talk.reset()
        talk.ask("Anything else?")
        assert "Earlier in this conversation" not in backend.calls[-1][1]


def test_a_script_drives_chat_through_a_pipe(tmp_path):
    pdf = make_pdf(tmp_path / "a.pdf", PAGES)
    saved = tmp_path / "session.jsonl"
    proc = run_scripted("chat", pdf, "--hd", "2", input=f"how many ships?\n\n/hd 3\nand tides?\n/save {saved}\n")
    assert proc.returncode == 0, proc.stderr
    got = json_lines(proc.stdout)
    assert [(r["task"], r["question"], r["status"]) for r in got] == [
        ("chat", "how many ships?", "ok"), ("chat", "and tides?", "ok")]
    assert got[1]["resolution"]["hd"] == 3 and got[0]["document"]["type"] == "pdf"
    assert [json.loads(line) for line in saved.read_text().splitlines()] == got


def test_a_terminal_session_streams_stops_and_leaves(tmp_path):
    pdf = make_pdf(tmp_path / "a.pdf", PAGES)
    env = {**os.environ, "PYTHONPATH": ROOT, "NO_COLOR": "1", "SCRIPTED_DELAY": "0", "TERM": "dumb"}
    child = pexpect.spawn(sys.executable, ["-c", _SCRIPTED, "chat", str(pdf), "--hd", "2"], env=env, cwd=ROOT,
                          encoding="utf-8", timeout=60, dimensions=(40, 100))
    child.expect("chat about a.pdf")
    child.expect("> ")
    child.sendline("how many ships?")
    child.expect("reply 1")
    child.expect("evidence: page 1")
    child.expect("> ")
    child.sendline("/pages 2")
    child.expect("pages: 2")
    child.sendline("/nonsense")
    child.expect("unknown command /nonsense")
    child.expect("> ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_c_stops_one_answer_without_leaving(tmp_path):
    pdf = make_pdf(tmp_path / "a.pdf", PAGES)
    started = tmp_path / "started"
    env = {**os.environ, "PYTHONPATH": ROOT, "NO_COLOR": "1", "SCRIPTED_DELAY": "60", "TERM": "dumb",
           "SCRIPTED_STARTED": str(started)}
    child = pexpect.spawn(sys.executable, ["-c", _SCRIPTED, "chat", str(pdf), "--hd", "2"], env=env, cwd=ROOT,
                          encoding="utf-8", timeout=60)
    child.expect("> ")
    child.sendline("how many ships?")
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:  # the model call is under way (and readline
        time.sleep(0.05)  # has handed the terminal back, so Ctrl-C is a signal again)
    child.sendintr()
    child.expect("\\(stopped\\)")
    child.expect("> ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
