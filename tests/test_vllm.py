"""The openai backend against a real vLLM (its CPU build) started with the recipe docvision prints.

Runs where DOCVISION_VLLM_PYTHON names the python of a virtual environment with vLLM (docs/serving.md
builds one); skipped with that reason elsewhere (CI has no vLLM). The server serves a tiny random-weight
Qwen2.5-VL (tests/tinymodels.py), so answers are nonsense: the tests check what the server saw and
counted -- image tokens equal to the plan, usage not 0, calls within the context it lists -- through the
real CLI. tests/benchmarks/bench_vllm.py runs the longer scenario (refusals, a 12-page document).
"""

from __future__ import annotations

import os

import pytest
from PIL import Image, ImageDraw

from tests.helpers import json_lines, run_cli
from tests.serving import Proxy, VllmServe, server_counts, vllm_python

PYTHON, WHY_NOT = vllm_python() if os.environ.get("DOCVISION_VLLM_PYTHON") else (None, "")
pytestmark = [
    pytest.mark.vllm, pytest.mark.model, pytest.mark.slow,
    pytest.mark.skipif(PYTHON is None, reason=f"no vLLM to test against: {WHY_NOT or 'DOCVISION_VLLM_PYTHON is not set'}"),
]
HD = 9
PAGES = 2  # per call in the recipe; the tests ask for more and docvision must keep to the server's context


@pytest.fixture(scope="module")
def served(tiny_model_dir, tmp_path_factory):
    """(vLLM started with the printed recipe, the model folder, a recording proxy in front of it)."""
    folder = tiny_model_dir("qwen2_5_vl")
    recipe = run_cli("models", "--serve", "vllm", "--model", folder, "--hd", HD, "--max-pages", PAGES, "--json")
    assert recipe.returncode == 0, recipe.stderr
    server = VllmServe(PYTHON, json_lines(recipe.stdout)[0]["command"], tmp_path_factory.mktemp("vllm")).start()
    proxy = Proxy(server.url)
    yield server, folder, proxy
    proxy.close()
    server.stop()


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("docs")
    paths = []
    for i in range(3):
        image = Image.new("RGB", (850 + 60 * i, 1100), "white")
        ImageDraw.Draw(image).text((60, 60), f"Invoice {i}: total {100 + i}.00 EUR", fill="black")
        paths.append(folder / f"invoice{i}.png")
        image.save(paths[-1])
    return paths


def cli(served, *args):
    server, folder, proxy = served
    return run_cli(*args, "--backend", "openai", "--base-url", proxy.url, "--model", folder, "--hd", HD,
                   "--max-new-tokens", "8", "--json", "--no-cache", timeout=1800)


def test_records_count_usage_and_the_server_sees_the_plan(served, docs):
    server, folder, proxy = served
    proxy.exchanges.clear()
    proc = cli(served, "summarize", *docs, "--concurrency", "3")
    assert proc.returncode == 0, proc.stderr
    records = json_lines(proc.stdout)
    assert [r["source"] for r in records] == [str(p) for p in docs]
    for record in records:
        assert record["status"] == "ok" and record["warnings"] == []
        assert record["usage"]["prompt_tokens"] > record["resolution"]["visual_tokens"] > 0
    rows = server_counts(proxy.exchanges, server.url, folder)
    assert len(rows) == len(docs)
    for row in rows:
        assert row["counted"] == row["planned"] > 0, row  # the server's own image tokens are the plan
        assert row["usage"]["prompt_tokens"] == row["tokenized"], row
    assert sorted(r["planned"] for r in rows) == sorted(r["resolution"]["visual_tokens"] for r in records)


def test_pages_are_grouped_within_the_context_the_server_lists(served, tmp_path):
    import httpx
    import pymupdf

    server, folder, proxy = served
    listed = httpx.get(server.url + "/models", timeout=60).json()["data"][0]["max_model_len"]
    assert listed == 4096  # the recipe's: 2 pages of 1,296 + 16 tokens, 512 prompt, 512 answer, rounded up
    source = tmp_path / "six.pdf"
    document = pymupdf.open()
    for n in range(6):
        document.new_page(width=612, height=792).insert_text((72, 72), f"Part {n + 1}", fontsize=14)
    document.save(source)
    proxy.exchanges.clear()
    proc = cli(served, "summarize", source, "--max-pages", "6")  # six pages would not fit one call
    assert proc.returncode == 0, proc.stderr
    rows = server_counts(proxy.exchanges, server.url, folder)
    shown = [row["images"] for row in rows if row["images"]]
    assert sum(shown) == 6 and 1 < len(shown) and max(shown) <= PAGES, shown
    assert all(row["usage"]["prompt_tokens"] + 8 <= listed for row in rows)

