"""Human output on a terminal: readable at a glance on 80 columns, NO_COLOR honoured, and written through
sys.stdout so a progress bar on stderr moves it above itself instead of drawing over it."""

from __future__ import annotations

import io
import sys

from docvision import records
from docvision.cli import human

RECORD = records.ok(
    "/data/reports/annual-report-2024.pdf", "ask",
    answer="Turbine output was 41 MW in March and 44 MW forecast for May, per the operations tables.",
    evidence=[{"page": n, "label": f"page {n}", "field": None, "score": 1.0, "boxes": [[0, 0, 1, 1]] * 2,
               "words": ["turbines", "output"], "cells": None} for n in range(1, 15)],
    model={"id": "/home/someone/models/Qwen3-VL-4B-Instruct-with-a-long-folder-name"},
    resolution={"hd": 25, "pages": 14, "visual_tokens": 43008}, usage={"calls": 5},
    timings={"load_s": 12.345, "render_s": 1.5, "model_s": 98.7, "prefill_s": 3.2, "generate_s": 20.1},
)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _shown(monkeypatch, **env) -> str:
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setenv("COLUMNS", "80")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    human.emitter("ask")(RECORD)
    return screen.getvalue()


def test_details_fit_80_columns_and_no_color_means_no_escapes(monkeypatch):
    text = _shown(monkeypatch, NO_COLOR="1")
    assert "\x1b" not in text
    lines = text.splitlines()
    assert lines[0] == RECORD["source"] and all(len(line) <= 80 for line in lines), lines
    assert "  Qwen3-VL-4B-Instruct-with-a-long-folder-name · HD-25 · 14 pages · 43,008 visual tokens · 5 calls" \
        not in lines  # too long for one line: wrapped with a hanging indent instead
    details = [line for line in lines if line.startswith("  ")]
    assert details[0].startswith("  evidence: page 1 (turbines, output)") and "and 2 more" in text
    assert "  time: load 12.35 s, render 1.50 s, model 98.70 s, first token 3.20 s" in lines


def test_colour_on_a_terminal_without_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert "\x1b[" in _shown(monkeypatch)


def test_records_go_through_sys_stdout_under_a_progress_bar(monkeypatch):
    """rich consoles unwrap the bar's stdout proxy and write behind its back; the emitter must not."""
    written = []

    class Proxy(Terminal):
        rich_proxied_file = None

        def write(self, text):
            written.append(text)
            return len(text)

    monkeypatch.setattr(sys, "stdout", Proxy())
    monkeypatch.setenv("NO_COLOR", "1")
    human.emitter("ask")(RECORD)
    assert "".join(written).startswith(RECORD["source"] + "\n")
    streamer = human.Streamer()
    streamer.start("a.pdf")
    flushed = []
    monkeypatch.setattr(sys.stdout, "flush", lambda: flushed.append(1))
    streamer.write("The answer ")
    assert not flushed  # a flush would end the bar proxy's line mid-answer


def test_evidence_words_read_cleanly():
    assert human.shown_words(["Revenue,", "Q4,", "Q4),", "revenue", "East"]) == ["Revenue", "Q4", "East"]


def test_to_a_pipe_only_the_answer(monkeypatch):
    """`docvision ask f.pdf q > answer.txt` holds the answer and nothing else."""
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stdout", pipe)
    human.emitter("ask")(RECORD)
    assert pipe.getvalue() == RECORD["answer"] + "\n"


def test_escape_sequences_in_a_file_name_are_not_sent_to_the_terminal(monkeypatch):
    from docvision.cli import console

    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    console.say_error("\x1b]0;owned\x07\x1b[2Jreport.pdf: damaged")
    assert "\x1b" not in err.getvalue() and "\\x1b]0;owned" in err.getvalue()
