"""Human output on a terminal: readable at a glance on 80 columns, NO_COLOR honoured, and written through
sys.stdout so a progress bar on stderr moves it above itself instead of drawing over it."""

from __future__ import annotations

import io
import sys

from docvision.cli import batchrun

RECORD = {
    "schema": 1, "source": "/data/reports/annual-report-2024.pdf", "task": "ask", "status": "ok",
    "answer": "Turbine output was 41 MW in March and 44 MW forecast for May, per the operations tables.",
    "evidence": [{"label": f"page {n}", "number": n, "matches": [{"text": "turbines"}, {"text": "output"}]}
                 for n in range(1, 15)],
    "model": {"id": "/home/someone/models/Qwen3-VL-4B-Instruct-with-a-long-folder-name"},
    "resolution": {"hd": 25, "pages": 14, "tokens": 43008, "calls": 5},
    "timings": {"load_s": 12.345, "render_s": 1.5, "model_s": 98.7, "prefill_s": 3.2, "generate_s": 20.1},
}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _shown(monkeypatch, **env) -> str:
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setenv("COLUMNS", "80")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    batchrun.human_emitter()(RECORD)
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
    batchrun.human_emitter()(RECORD)
    assert "".join(written).startswith(RECORD["source"] + "\n")
    streamer = batchrun.Streamer()
    streamer.start("a.pdf")
    flushed = []
    monkeypatch.setattr(sys.stdout, "flush", lambda: flushed.append(1))
    streamer.write("The answer ")
    assert not flushed  # a flush would end the bar proxy's line mid-answer


def test_evidence_words_read_cleanly():
    from docvision.cli.batchrun import _shown_words

    matches = [{"text": "Revenue,"}, {"text": "Q4,"}, {"text": "Q4),"}, {"text": "revenue"}, {"text": "East"}]
    assert _shown_words(matches) == ["Revenue", "Q4", "East"]
