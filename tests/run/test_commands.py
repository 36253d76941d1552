"""Every command runs through the same pipeline: the same mixed batch (PDF, image, workbook, web page, a
broken file) gives every command the same record keys, statuses, exit codes and --output/--resume
behaviour, and office files are converted the same way whichever command asks.

The model commands run the real CLI with a scripted backend in place of a model (tests/scripted.py);
Chromium and LibreOffice are real.
"""

from __future__ import annotations

import os
import stat

import pytest
from openpyxl import Workbook
from PIL import Image

from docvision import records
from tests.helpers import json_lines, require_tool, run_scripted
from tests.scripted import make_pdf

pytestmark = [pytest.mark.browser, pytest.mark.office]

COMMANDS = {
    "render": [],
    "ask": ["what is the total?"],
    "summarize": [],
    "extract": ["--field", "total:number"],
}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    require_tool("soffice", "libreoffice")
    require_tool("chromium", "chromium-browser", "google-chrome")
    folder = tmp_path_factory.mktemp("mixed")
    make_pdf(folder / "a-report.pdf", ["Total due: 1,234.50 EUR.", "Second page."])
    Image.new("RGB", (600, 400), (20, 90, 160)).save(folder / "b-poster.png")
    book = Workbook()
    book.active.append(["Region", "Total"])
    book.active.append(["East", 1234.5])
    book.save(folder / "c-sales.xlsx")
    (folder / "d-page.html").write_text("<!doctype html><title>t</title><h1>Total 17</h1>")
    (folder / "e-broken.pdf").write_bytes(b"%PDF-1.7\n% cut short\n")
    return [str(p) for p in sorted(folder.iterdir())]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_gives_the_same_records_exit_codes_and_resume(tmp_path, mixed, command):
    out = tmp_path / "out.jsonl"
    args = [command, *mixed, *COMMANDS[command]]
    proc = run_scripted(*args, "--json", "--output", out, "--no-timings")
    assert proc.returncode == 1, proc.stderr  # one source failed, the others ran
    got = json_lines(proc.stdout)
    assert [list(r) for r in got] == [list(records.KEYS)] * 5  # every key, in order, every record
    assert [r["status"] for r in got] == ["ok", "ok", "ok", "ok", "error"], proc.stderr
    assert [r["document"]["type"] for r in got[:4]] == ["pdf", "image", "office", "web"]
    assert got[4]["error"]["kind"] == "damaged" and got[4]["task"] == command
    assert all(r["task"] == command and r["schema"] == 2 for r in got)
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {mixed[4]}: {got[4]['error']['message']}"]
    assert json_lines(out.read_text()) == got
    again = run_scripted(*args, "--json", "--output", out, "--no-timings", "--resume")
    assert again.returncode == 1 and [r["source"] for r in json_lines(again.stdout)] == [mixed[4]]
    assert "resuming: 4 source(s) already done" in again.stderr
    lines = json_lines(out.read_text())
    assert sorted(r["source"] for r in lines) == sorted(mixed)  # every source exactly once


def test_render_and_summarize_start_libreoffice_alike(tmp_path):
    """Office files are converted by the run's one converter, whichever command reads them."""
    real = require_tool("soffice", "libreoffice")
    counter = tmp_path / "starts"
    wrapper = tmp_path / "soffice"
    wrapper.write_text(f'#!/bin/sh\necho start >> "{counter}"\nexec "{real}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    books = []
    for n in range(10):
        book = Workbook()
        book.active["A1"] = f"book {n}"
        book.save(tmp_path / f"b{n:02d}.xlsx")
        books.append(tmp_path / f"b{n:02d}.xlsx")
    starts = {}
    for command in ("render", "summarize"):
        counter.write_text("")
        proc = run_scripted(command, *books, "--json", "--no-cache", env={"DOCVISION_SOFFICE": str(wrapper)})
        assert proc.returncode == 0, proc.stderr
        assert len(json_lines(proc.stdout)) == 10
        starts[command] = len(counter.read_text().splitlines())
    assert starts["render"] == starts["summarize"] >= 1
    assert starts["render"] < 10  # batched, not one start per file
    assert os.environ.get("DOCVISION_SOFFICE") is None  # the wrapper was only for these runs
