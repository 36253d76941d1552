"""Render workers (``--workers N``, docvision.run.workers): every core renders, and nothing else changes --
the records are the ones one render thread writes, in input order; --output, --resume, Ctrl-C and SIGTERM
keep their promises; no process is left behind. Nothing here asserts on time: that two workers render at
once is seen in /proc while they do, and a deadline only guards against a hang."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from tests.helpers import ROOT, json_lines, run_cli, run_scripted

pytestmark = pytest.mark.slow


def make_pdf(path: Path, pages: int, label: str) -> str:
    import pymupdf

    document = pymupdf.open()
    for n in range(pages):
        document.new_page(width=612, height=792).insert_text((72, 100), f"{label} page {n + 1}: {n * 17} units",
                                                             fontsize=14)
    document.save(path)
    return str(path)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """PDFs of a few pages, a picture, a web page and a name that is not there: a mixed batch."""
    root = tmp_path_factory.mktemp("workers")
    for n in range(4):
        make_pdf(root / f"report-{n}.pdf", 3 + n, f"report {n}")
    image = Image.new("RGB", (800, 500), "white")
    ImageDraw.Draw(image).text((40, 40), "Poster 2026", font=ImageFont.load_default(size=48), fill="black")
    image.save(root / "poster.png")
    (root / "page.html").write_text("<h1>Quarterly numbers</h1><p>East grew most.</p>")
    return root


def render(folder: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_cli("render", str(folder), str(folder / "missing.pdf"), "--json", "--no-timings", "--ocr", "never",
                   *extra, env=env)


def test_the_default_is_one_worker_per_core(monkeypatch):
    from docvision.config import resolve
    from docvision.run.calls import workers

    monkeypatch.delenv("DOCVISION_WORKERS", raising=False)
    assert workers(resolve({})) == len(os.sched_getaffinity(0))
    assert workers(resolve({"workers": 1})) == 1


@pytest.mark.browser
def test_two_workers_write_the_records_one_render_thread_writes(folder):
    one = render(folder, "--workers", "1")
    two = render(folder, "--workers", "2")
    assert one.returncode == two.returncode == 1  # the missing file
    assert two.stdout == one.stdout and two.stderr == one.stderr
    sources = [r["source"] for r in json_lines(two.stdout)]
    assert sources[-1].endswith("missing.pdf") and sources[:-1] == sorted(sources[:-1])  # input order


def test_a_model_task_gets_the_same_records_with_workers(folder):
    pdfs = [str(p) for p in sorted(folder.glob("report-*.pdf"))]
    one = run_scripted("summarize", *pdfs, "--json", "--no-timings", "--workers", "1", "--hd", "4")
    two = run_scripted("summarize", *pdfs, "--json", "--no-timings", "--workers", "2", "--hd", "4")
    assert one.returncode == two.returncode == 0, two.stderr
    assert two.stdout == one.stdout and len(json_lines(two.stdout)) == 4


def descendants(pid: int) -> dict[int, str]:
    """Running processes below ``pid`` (zombies have ended), with their command lines."""
    parents: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat[0] != "Z":
            parents.setdefault(int(stat[1]), []).append(int(entry))
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            try:
                found[child] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            todo.append(child)
    return found


def running(pids) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                alive.append(pid)
        except OSError:
            pass
    return alive


def busy_batch(root: Path) -> Path:
    """Eight 30-page PDFs: long enough to be stopped mid-run at any load."""
    root.mkdir(exist_ok=True)
    for n in range(8):
        make_pdf(root / f"long-{n}.pdf", 30, f"long {n}")
    return root


@pytest.mark.parametrize("sig, code, said", [(signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGTERM, 143, "terminated")])
def test_stopped_mid_run_workers_end_and_resume_finishes_each_source_once(tmp_path, sig, code, said):
    batch = busy_batch(tmp_path / "batch")
    out = tmp_path / "out.jsonl"
    args = [sys.executable, "-m", "docvision", "render", str(batch), "--workers", "2", "--hd", "55", "--no-cache",
            "--ocr", "never", "--json", "--output", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "NO_COLOR": "1"})
    seen: dict[int, str] = {}
    deadline = time.monotonic() + 300  # a hang guard, not a speed limit
    while time.monotonic() < deadline and not (out.exists() and out.read_bytes().count(b"\n") >= 1):
        seen.update(descendants(proc.pid))
        time.sleep(0.05)
    seen.update(descendants(proc.pid))
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code and said in stderr and "Traceback" not in stderr, stderr
    workers = [pid for pid, command in seen.items() if "docvision.run.workers" in command]
    assert len(workers) == 2, seen  # two render processes ran at once
    while running(seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running(seen) == [], {pid: seen[pid] for pid in running(seen)}
    done = len(json_lines(out.read_text()))
    assert 1 <= done < 8
    again = run_cli("render", str(batch), "--workers", "2", "--hd", "55", "--ocr", "never", "--output", str(out),
                    "--resume")
    assert again.returncode == 0, again.stderr
    written = [r["source"] for r in json_lines(out.read_text())]
    assert sorted(written) == sorted(str(p) for p in batch.glob("*.pdf"))  # each source exactly once


def test_output_dir_shards_resume_like_an_output_file(folder, tmp_path, monkeypatch):
    from docvision.run.sink import OutputDir

    monkeypatch.setattr(OutputDir, "SHARD_LINES", 2)  # in this process only: the API
    import docvision

    shards = tmp_path / "records"
    pdfs = sorted(str(p) for p in folder.glob("report-*.pdf"))
    with docvision.Session(ocr="never", workers=2) as session:
        first = list(session.render(pdfs[:3], output_dir=shards))
        more = list(session.render(pdfs, output_dir=shards, resume=True))
    assert [r["source"] for r in first] == pdfs[:3] and [r["source"] for r in more] == pdfs[3:]
    written = [r["source"] for p in sorted(shards.glob("part-*.jsonl")) for r in json_lines(p.read_text())]
    assert written == pdfs and len(list(shards.glob("part-*.jsonl"))) == 3
