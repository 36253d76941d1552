"""Acceptance tests of the openai backend against a real server: ``transformers serve`` with a tiny model.

The server runs offline on 127.0.0.1 with a tiny random-weight Qwen2.5-VL (tests/tinymodels.py); its
answers are nonsense, so the tests check the wiring through the real CLI: records, order, the
resolution the server saw, a server killed and restarted mid-batch, a server that stalls.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from docvision.tiling import plan
from tests.helpers import assert_one_error_line, json_lines, run_cli
from tests.serving import Proxy, TransformersServe, build_text_only_model

pytestmark = [pytest.mark.model, pytest.mark.slow]


@pytest.fixture(scope="module")
def served(tiny_model_dir, tmp_path_factory):
    """(server, model folder): transformers serve pinned to a tiny Qwen2.5-VL."""
    folder = tiny_model_dir("qwen2_5_vl")
    server = TransformersServe(folder, tmp_path_factory.mktemp("serve")).start()
    yield server, folder
    server.stop()


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("docs")
    paths = []
    for i in range(6):
        image = Image.new("RGB", (600 + 40 * i, 800), "white")
        ImageDraw.Draw(image).text((40, 40), f"Invoice {i}: total {100 + i}.00 EUR", fill="black")
        paths.append(folder / f"doc{i}.png")
        image.save(paths[-1])
    return paths


def env_for(server: TransformersServe, folder: Path, **extra: str) -> dict:
    return {"DOCVISION_BACKEND": "openai", "DOCVISION_BASE_URL": server.url, "DOCVISION_MODEL": str(folder),
            **extra}


def test_summarize_and_extract_through_the_server(served, docs):
    server, folder = served
    proc = run_cli("summarize", *docs[:3], "--backend", "openai", "--base-url", server.url, "--model", folder,
                   "--hd", "4", "--max-new-tokens", "6", "--json", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    records = json_lines(proc.stdout)
    assert [r["source"] for r in records] == [str(p) for p in docs[:3]]
    for record in records:
        assert record["status"] == "ok" and record["summary"]
        assert record["model"]["backend"] == "openai" and record["model"]["family"] == "qwen"
        # Streamed answers carry the server's token counts (it sends them when asked: include_usage).
        assert record["usage"]["prompt_tokens"] > record["resolution"]["visual_tokens"] and record["warnings"] == []
    for record, path in zip(records, docs):
        # Qwen2.5 plans on 336 px tiles and spends one token per 28x28 px of the canvas.
        canvas = plan(Image.open(path).size, 4, 336).canvas_size
        assert record["resolution"]["visual_tokens"] == (canvas[0] // 28) * (canvas[1] // 28)
    proc = run_cli("extract", docs[0], "--field", "total:number", "--hd", "4", "--max-new-tokens", "8",
                   "--json", "--no-cache", env=env_for(server, folder))
    record = json_lines(proc.stdout)[0]
    # The tiny model writes nonsense: the record must say it did not validate, never invent data.
    assert record["status"] == "error" and record["error"]["kind"] == "validation", record
    assert proc.returncode == 1 and "Traceback" not in proc.stderr


def test_ask_through_the_server(served, docs):
    server, folder = served
    proc = run_cli("ask", *docs[:3], "What is the total?", "--hd", "4", "--max-new-tokens", "6", "--json",
                   "--no-cache", "--concurrency", "2", env=env_for(server, folder))
    assert proc.returncode == 0, proc.stderr
    records = json_lines(proc.stdout)
    assert [r["source"] for r in records] == [str(p) for p in docs[:3]]
    for record in records:
        assert record["status"] == "ok" and record["answer"] and record["model"]["backend"] == "openai"


def test_concurrency_keeps_input_order_and_bytes(served, docs):
    server, folder = served
    common = ["--hd", "4", "--max-new-tokens", "4", "--json", "--no-timings", "--no-cache"]
    one = run_cli("summarize", *docs[:4], *common, env=env_for(server, folder))
    four = run_cli("summarize", *docs[:4], *common, "--concurrency", "4", env=env_for(server, folder))
    assert one.returncode == four.returncode == 0, four.stderr
    assert four.stdout == one.stdout  # deterministic order and content whatever the concurrency


def test_model_name_the_server_does_not_serve_is_one_line(served, docs):
    server, folder = served
    proc = run_cli("summarize", docs[0], "--hd", "4", env=env_for(server, folder, DOCVISION_MODEL="no/such-model"))
    assert_one_error_line(proc, "does not serve model 'no/such-model'", "fix --model")


def test_server_down_is_one_line(docs):
    proc = run_cli("summarize", docs[0], "--backend", "openai", "--base-url", "http://127.0.0.1:9", "--model", "m")
    assert_one_error_line(proc, "cannot reach the model server at http://127.0.0.1:9/v1")


def test_a_stalled_request_times_out_and_the_batch_goes_on(served, docs):
    server, folder = served
    proxy = Proxy(server.url, stall=lambda n: n == 2)
    try:
        proc = run_cli("summarize", *docs[:4], "--hd", "4", "--max-new-tokens", "6", "--json", "--no-cache",
                       env=env_for(server, folder, DOCVISION_BASE_URL=proxy.url, DOCVISION_REQUEST_TIMEOUT="3"))
    finally:
        proxy.close()
    records = json_lines(proc.stdout)
    assert [r["status"] for r in records] == ["ok", "error", "ok", "ok"], proc.stderr
    assert records[1]["error"]["kind"] == "timeout" and "sent nothing for 3 s" in records[1]["error"]["message"]
    assert proc.returncode == 1


def test_server_killed_and_restarted_mid_batch_loses_no_record(served, docs, tmp_path):
    server, folder = served
    out = tmp_path / "out.jsonl"
    sources = docs
    command = [sys.executable, "-m", "docvision", "summarize", *map(str, sources), "--hd", "4",
               "--max-new-tokens", "12", "--output", str(out), "--json", "--no-cache", "--concurrency", "2",
               "--unordered"]
    env = {**os.environ, "NO_COLOR": "1", **env_for(server, folder, DOCVISION_RETRIES="30")}
    batch = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 1):
            time.sleep(0.1)
        assert out.exists(), "the batch wrote nothing before the restart"
        done_before = len(out.read_text().splitlines())
        server.restart()  # SIGKILL: requests in flight are cut; new ones are refused until it is back
        stdout, stderr = batch.communicate(timeout=300)
    finally:
        if batch.poll() is None:
            batch.kill()
    records = json_lines(out.read_text())
    assert batch.returncode == 0, stderr
    assert sorted(r["source"] for r in records) == sorted(map(str, sources))  # each exactly once
    assert json_lines(stdout) == records
    assert all(r["status"] == "ok" for r in records)
    assert done_before < len(sources), "the batch finished before the restart: nothing was tested"


def test_a_text_only_model_is_one_line_at_start(docs, tmp_path):
    # transformers serve drops the images it is sent for a text-only model, without a word: docvision
    # notices that the image added no prompt tokens.
    server = TransformersServe(build_text_only_model(tmp_path / "llm"), tmp_path / "serve").start()
    try:
        proc = run_cli("summarize", docs[0], "--backend", "openai", "--base-url", server.url,
                       "--model", tmp_path / "llm", "--hd", "4")
    finally:
        server.stop()
    assert_one_error_line(proc, "ignored the image", "takes no images", "serve a vision-language model")
