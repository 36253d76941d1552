"""The command line's basics: version, help, hints, pipes, signals, and output that cannot be written."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from docvision import __version__
from tests.helpers import ROOT, assert_one_error_line, json_lines, run_cli, run_scripted, scripted_cli
from tests.scripted import batch_folder, make_pdf


def test_version_and_bare_command():
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"docvision {__version__}"
    bare = run_cli()
    assert bare.returncode == 0 and "Usage: docvision" in bare.stdout and "render" in bare.stdout


def test_question_first_gets_a_hint(tmp_path):
    pdf = make_pdf(tmp_path / "a.pdf", ["Total 5"])
    proc = run_cli("ask", "what is the total?", pdf)
    assert proc.returncode == 2
    assert_one_error_line(proc, "the question goes last", f"docvision ask {pdf}")


def test_a_closed_pipe_ends_quietly_with_exit_0(tmp_path):
    paths = batch_folder(tmp_path / "in", 12)
    shell = (f"{sys.executable} -m docvision render {' '.join(map(str, paths))} --json | head -1 > /dev/null; "
             "echo status=${PIPESTATUS[0]}")
    proc = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert "status=0" in proc.stdout, proc.stderr
    assert proc.stderr == ""


def test_closed_stdout_is_one_usage_line(tmp_path):
    pdf = make_pdf(tmp_path / "a.pdf", ["Total 5"])
    proc = subprocess.run(["bash", "-c", f"{sys.executable} -m docvision render {pdf} >&-"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert_one_error_line(proc, "standard output is closed")


def test_sigterm_stops_the_run_with_143_and_whole_lines(tmp_path):
    batch_folder(tmp_path / "in", 6)
    out = tmp_path / "out.jsonl"
    proc = scripted_cli(["summarize", tmp_path / "in", "--output", out, "--hd", "1"], delay=0.5)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 1):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and "terminated" in stderr
    assert out.read_bytes().endswith(b"\n")


def test_an_output_on_a_full_disk_keeps_showing_records_and_fails(tmp_path):
    """/dev/full accepts the open and refuses every write, as a full disk does."""
    paths = batch_folder(tmp_path / "in", 3)
    proc = run_scripted("summarize", *paths, "--json", "--output", "/dev/full", "--hd", "1")
    assert proc.returncode == 74, proc.stderr
    assert len(json_lines(proc.stdout)) == 3  # nothing finished is lost from stdout
    warnings = [line for line in proc.stderr.splitlines() if "cannot write to --output /dev/full" in line]
    assert len(warnings) == 1 and "disk is full" in warnings[0]


def test_two_runs_on_one_output_file_write_every_source_exactly_once(tmp_path):
    paths = batch_folder(tmp_path / "in", 8)
    out = tmp_path / "out.jsonl"
    args = ["summarize", tmp_path / "in", "--output", out, "--resume", "--hd", "1", "--no-timings"]
    first = scripted_cli(args, delay=0.2)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not out.exists():
        time.sleep(0.02)
    second = scripted_cli(args, delay=0.0)
    results = [p.communicate(timeout=180) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, results
    assert "waiting for another docvision run" in results[1][1]
    records = json_lines(out.read_text())
    assert sorted(r["source"] for r in records) == sorted(str(p) for p in paths)
    assert len(json_lines(results[1][0])) == 0  # the second found everything done once it got the file


def test_sigterm_during_a_conversion_stops_the_converter_and_exits_143(tmp_path):
    """A LibreOffice that takes its time: SIGTERM exits 143 and leaves none of the converter's processes."""
    import stat

    from openpyxl import Workbook

    from tests.helpers import require_tool

    real = require_tool("soffice", "libreoffice")
    started = tmp_path / "started"
    wrapper = tmp_path / "soffice"
    wrapper.write_text(f'#!/bin/sh\necho $$ >> "{started}"\nsleep 120\nexec "{real}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    book = Workbook()
    book.active["A1"] = "slow"
    book.save(tmp_path / "slow.xlsx")
    proc = scripted_cli(["render", tmp_path / "slow.xlsx", "--json"], env={"DOCVISION_SOFFICE": str(wrapper)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not started.exists():
        time.sleep(0.05)
    assert started.exists(), proc.communicate(timeout=30)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    for pid in map(int, started.read_text().split()):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        assert state == "Z", f"the converter's process {pid} is still running"  # a zombie has ended
