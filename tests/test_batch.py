"""The batch runner: mixed sources, one broken; kill and resume; Ctrl-C; byte-identical JSON Lines."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from docvision.run import sink as output
from docvision.tasks.ask import AskTask
from tests.helpers import assert_one_error_line, json_lines, run_cli, run_task, scripted_cli
from tests.scripted import ScriptedBackend, batch_folder, make_pdf

def _driver(tmp_path: Path, args: list[str], delay: float) -> subprocess.Popen:
    return scripted_cli(args, delay=delay)


def _wait_for_lines(path: Path, count: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    pytest.fail(f"{path} did not reach {count} lines")


def test_mixed_batch_with_one_broken_file(tmp_path):
    paths = batch_folder(tmp_path / "in", 5, broken="zz-broken.pdf")
    backend = ScriptedBackend()
    written, sink = run_task([tmp_path / "in", tmp_path / "missing.pdf"], AskTask("what is shipped?", hd=2), backend,
                             cache_dir=tmp_path / "cache", output=tmp_path / "out.jsonl")
    assert sink.failed
    assert [r["source"] for r in written] == [str(p) for p in paths] + [str(tmp_path / "missing.pdf")]
    failed = [r for r in written if r["status"] == "error"]
    assert [(r["source"], r["error"]["kind"]) for r in failed] == [
        (str(tmp_path / "in" / "zz-broken.pdf"), "damaged"), (str(tmp_path / "missing.pdf"), "not_found")]
    ok = [r for r in written if r["status"] == "ok"]
    assert len(ok) == 5 and all(r["answer"].startswith("reply") and r["evidence"] for r in ok)
    assert json_lines((tmp_path / "out.jsonl").read_text()) == written
    assert len(backend.calls) == 5  # broken sources never reach the model


def test_killed_half_way_then_resumed_every_source_exactly_once(tmp_path):
    paths = batch_folder(tmp_path / "in", 8)
    out = tmp_path / "out.jsonl"
    args = ["summarize", str(tmp_path / "in"), "--output", str(out), "--hd", "1", "--no-timings"]
    proc = _driver(tmp_path, args, delay=0.4)
    _wait_for_lines(out, 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with open(out, "ab") as fh:  # as if killed in the middle of writing a record
        fh.write(b'{"schema":2,"source":"' + str(paths[-1]).encode() + b'","task":"summ')
    done_before = len(json_lines(out.read_text().rsplit("\n", 1)[0]))
    assert 3 <= done_before < len(paths)
    proc = _driver(tmp_path, [*args, "--resume"], delay=0.0)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    records = json_lines(out.read_text())
    assert sorted(r["source"] for r in records) == sorted(str(p) for p in paths)
    assert all(r["status"] == "ok" for r in records)
    assert "resuming" in stderr


def test_ctrl_c_leaves_whole_lines_and_exits_130(tmp_path):
    batch_folder(tmp_path / "in", 6)
    out = tmp_path / "out.jsonl"
    proc = _driver(tmp_path, ["summarize", str(tmp_path / "in"), "--output", str(out), "--hd", "1"], delay=0.5)
    _wait_for_lines(out, 2, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    data = out.read_bytes()
    assert data.endswith(b"\n")
    assert 2 <= len(json_lines(data.decode())) < 6


def _resume(out, task):
    said: list[str] = []
    handle = output.OutputFile(out, said.append)
    try:
        return output.resume(handle, task, said.append), said
    finally:
        handle.close()


def test_resume_cuts_a_torn_line_and_drops_stale_errors(tmp_path):
    out = tmp_path / "out.jsonl"
    lines = [{"source": "a", "task": "ask", "status": "ok"}, {"source": "b", "task": "ask", "status": "error"},
             {"source": "c", "task": "summarize", "status": "ok"}]
    out.write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"source": "d", "ta')
    assert _resume(out, "ask") == ({("a", None)}, [])
    assert json_lines(out.read_text()) == [lines[0], lines[2]]
    assert out.read_text().endswith("\n")


def test_resume_needs_output():
    proc = run_cli("summarize", "x.pdf", "--resume")
    assert proc.returncode == 2 and "--output" in proc.stderr


@pytest.mark.parametrize("resume", [False, True])
def test_an_output_that_cannot_be_written_is_one_usage_line(tmp_path, resume):
    """Checked before any model loads: exit 2, one line naming --output, no traceback."""
    (tmp_path / "file").write_text("x")
    (tmp_path / "none").mkdir()  # a model folder that exists but holds no model: it would fail to load
    extra = ["--resume"] if resume else []
    for target, says in [(tmp_path / "file" / "out.jsonl", "is a file, not a folder"),
                         (tmp_path, "is a folder"), (Path("/proc/nope/out.jsonl"), "cannot write --output")]:
        proc = run_cli("summarize", "x.pdf", "--output", str(target), *extra, "--model", str(tmp_path / "none"))
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.splitlines() == [proc.stderr.splitlines()[0]] and says in proc.stderr
        assert_one_error_line(proc, str(target))


@pytest.mark.model
@pytest.mark.slow
def test_json_lines_parse_and_are_byte_identical_across_runs(tmp_path, tiny_model_dir):
    model = tiny_model_dir("qwen2_5_vl")
    pdf = make_pdf(tmp_path / "a.pdf", ["The harbour master logged 17 ships."])
    env = {"DOCVISION_CACHE_DIR": str(tmp_path / "cache")}
    args = ["extract", str(pdf), str(tmp_path / "nope.pdf"), "--field", "ships:number", "--model", str(model),
            "--hd", "1", "--max-new-tokens", "6", "--json"]
    first = run_cli(*args, "--no-timings", env=env)
    second = run_cli(*args, env={**env, "DOCVISION_NO_TIMINGS": "1"})  # the second run hits the cache
    assert first.returncode == 1, first.stderr  # nonsense output fails validation; the missing file fails
    assert first.stdout == second.stdout
    records = json_lines(first.stdout)
    assert [r["source"] for r in records] == [str(pdf), str(tmp_path / "nope.pdf")]
    assert records[0]["error"]["kind"] == "validation" and records[1]["error"]["kind"] == "not_found"
    assert all(r["timings"] is None for r in records)
