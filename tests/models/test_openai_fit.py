"""Calls that fit a server, usage that counts, refusals that explain themselves (docs/serving.md).

The scripted server of tests/models/test_openai.py plays vLLM here: it lists max_model_len, streams
usage only when asked for it (or never), refuses per-request processor options and images larger than
its encoder cache with vLLM's own 400 texts. The CLI cases run the real command against it.
"""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

import docvision.models.fit as fit
from docvision.errors import BackendError
from docvision.models.families import detect
from docvision.models.openai import NO_USAGE, OpenAIBackend
from docvision.tasks.base import Usage
from docvision.tiling import plan
from tests.helpers import assert_one_error_line, json_lines, run_cli
from tests.models.test_openai import MODEL, backend, fake, view  # noqa: F401 - fake is a fixture

QWEN = detect({"model_type": "qwen2_5_vl"})


def test_usage_is_asked_for_and_counted(fake):
    server = fake()
    generation = backend(server).generate([view()], "q")
    assert server.requests[0]["stream_options"] == {"include_usage": True}
    assert (generation.prompt_tokens, generation.new_tokens, generation.warnings) == (42, 2, [])


def test_a_server_that_sends_no_usage_says_so_once_never_a_silent_zero(fake):
    server = fake(usage=False)
    b = backend(server)
    usage = Usage()
    for _ in range(3):
        usage.add(b.generate([view()], "q"))
    assert usage.block()["prompt_tokens"] is None and usage.block()["new_tokens"] is None
    assert usage.block()["calls"] == 3
    assert usage.warnings == [NO_USAGE]  # once, however many calls went without


def test_stream_options_refused_as_unknown_is_dropped_and_the_answer_still_comes(fake):
    server = fake(unknown=["stream_options"])
    generation = backend(server).generate([view()], "q")
    assert generation.text == "Hello world" and generation.warnings == [NO_USAGE]
    assert "stream_options" not in server.requests[-1] and "mm_processor_kwargs" in server.requests[-1]


def test_the_context_comes_from_the_server_or_the_setting(fake):
    assert backend(fake(context=8192)).context_tokens == 8192
    assert backend(fake(), max_context=6000).context_tokens == 6000  # the server lists none
    assert backend(fake(context=8192), max_context=32768).context_tokens == 8192  # the smaller limit holds
    assert backend(fake()).context_tokens is None


def test_a_server_refusing_processor_options_is_one_error_at_start(fake):
    server = fake(trust_kwargs=False)
    with pytest.raises(BackendError, match="refuses per-request processor options.*--trust-request-mm-kwargs") as info:
        backend(server)
    assert "\n" not in str(info.value)
    # Checked before any page is sent: no answer request reached the server.
    assert server.requests == []
    unchecked = OpenAIBackend(base_url=server.url, model=MODEL, check=False)
    unchecked.owner = "vllm"
    with pytest.raises(BackendError, match="restart vLLM with --trust-request-mm-kwargs"):
        unchecked.generate([view()], "q")


def test_an_encoder_cache_smaller_than_the_largest_page_is_one_error_at_start(fake):
    # At HD-16 the largest Qwen2.5 page is 4x4 tiles, 2,304 tokens; HD-14's is 7x2, 2,016: within 2,048.
    server = fake(encoder_cache=2048)
    with pytest.raises(BackendError) as info:
        backend(server, hd=16)
    message = str(info.value)
    for fragment in ("at HD-16", "2,304 visual tokens", "encoder cache holds 2,048",
                     "--max-num-batched-tokens 2304", "--hd 14 or lower"):
        assert fragment in message, message
    assert backend(fake(encoder_cache=2048), hd=14).context_tokens is None  # HD-14 fits: no error


def test_the_start_probe_sends_the_largest_page_of_the_run(fake):
    server = fake()
    backend(server, hd=9)
    pixels = max(p.get("mm_processor_kwargs", {}).get("max_pixels", 0) for p in server.probes)
    assert pixels == (3 * 336) ** 2  # HD-9's largest page: 3x3 tiles


def test_fit_arithmetic():
    assert fit.largest_plan(25, 336, QWEN).grid == (5, 5) and fit.page_tokens(25, 336, QWEN) == 3600
    assert fit.largest_plan(10, 336, QWEN).grid in ((5, 2), (2, 5))
    assert fit.pages_room(8192, 512) == 8192 - 512 - fit.PROMPT_TOKENS and fit.pages_room(None, 512) is None
    letter = (612, 792)
    tokens = {n: QWEN.visual_tokens(plan(letter, n, 336)) + fit.PAGE_TEXT_TOKENS for n in (9, 12, 16, 25)}
    # HD-9 to HD-15 all give a letter page 3x3 tiles, HD-16 gives it 4x4: the largest that fits is 15.
    assert tokens[9] == tokens[12] < tokens[16]
    assert fit.fitting_hd(letter, 25, 336, QWEN, tokens[12]) == 15
    assert fit.fitting_hd(letter, 25, 336, QWEN, 10) is None
    needs = fit.server_needs(QWEN, 25, 4, 512)
    assert needs["page_tokens"] == 3600 and needs["context"] >= 4 * 3600 + 512 and needs["context"] % 1024 == 0
    assert needs["images"] == 4 and needs["processor_options"] is True


def test_models_serve_prints_the_server_command_for_the_plan():
    proc = run_cli("models", "--serve", "vllm", "--model", "Qwen/Qwen2.5-VL-7B-Instruct", "--hd", "16")
    assert proc.returncode == 0, proc.stderr
    command = proc.stdout.strip()
    assert command.startswith("vllm serve Qwen/Qwen2.5-VL-7B-Instruct ")
    # 4 pages of 2,304 tokens + their labels, 512 for the prompt, 512 for the answer: 10,304 -> 11,264.
    assert "--max-model-len 11264" in command and "--max-num-batched-tokens 11264" in command
    assert "--trust-request-mm-kwargs" in command and "\"image\": 4" in command
    assert "2,304 visual tokens" in proc.stderr
    ollama = run_cli("models", "--serve", "ollama", "--model", "qwen2.5vl:7b", "--json")
    assert json_lines(ollama.stdout)[0]["command"].startswith("OLLAMA_CONTEXT_LENGTH=")
    assert_one_error_line(run_cli("models", "--serve", "tgi"), "--serve tgi", "vllm, sglang, ollama")


def _pdf(path, pages: int, size=(612, 792)):
    import pymupdf

    document = pymupdf.open()
    for number in range(1, pages + 1):
        page = document.new_page(width=size[0], height=size[1])
        page.insert_text((72, 72), f"Section {number}: revenue grew {number} percent.", fontsize=14)
    document.save(path)
    return path


def test_a_long_document_is_split_into_calls_that_fit_the_servers_context(fake, tmp_path):
    # 12 letter pages at HD-25: 2,880 visual tokens each (5x4 tiles), so 4 per call would overflow 8,192.
    server = fake(context=8192, answer="A summary.")
    source = _pdf(tmp_path / "long.pdf", 12)
    proc = run_cli("summarize", source, "--backend", "openai", "--base-url", server.url, "--model", MODEL,
                   "--hd", "25", "--max-pages", "4", "--max-new-tokens", "64", "--json", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    record = json_lines(proc.stdout)[0]
    assert record["status"] == "ok" and record["usage"]["prompt_tokens"] > 0
    page = QWEN.visual_tokens(plan((612, 792), 25, 336))
    room = fit.pages_room(8192, 64)
    per_call = room // (page + fit.PAGE_TEXT_TOKENS)
    assert 1 <= per_call < 4
    sections = [r for r in server.requests if any(p["type"] == "image_url" for p in r["messages"][-1]["content"])]
    shown = [sum(p["type"] == "image_url" for p in r["messages"][-1]["content"]) for r in sections]
    assert sum(shown) == 12 and max(shown) == per_call, shown


def test_a_page_no_call_can_hold_is_one_clear_error_naming_it(fake, tmp_path):
    server = fake(context=4096)
    poster = tmp_path / "poster.png"
    image = Image.new("RGB", (2000, 2000), "white")
    ImageDraw.Draw(image).text((50, 50), "Poster", fill="black")
    image.save(poster)
    proc = run_cli("ask", poster, "What is it?", "--backend", "openai", "--base-url", server.url, "--model", MODEL,
                   "--hd", "25", "--json", "--no-cache")
    record = json_lines(proc.stdout)[0]
    assert proc.returncode == 1 and record["status"] == "error" and record["error"]["kind"] == "backend"
    message = record["error"]["message"]
    limit = fit.pages_room(4096, 512) - fit.PAGE_TEXT_TOKENS
    fits = fit.fitting_hd((2000, 2000), 25, 336, QWEN, limit + fit.PAGE_TEXT_TOKENS)
    for fragment in ("image needs 3,600 visual tokens at HD-25", "4,096-token context", f"leaves {limit:,}",
                     f"--hd {fits} or lower"):
        assert fragment in message, message
    assert server.requests == []  # refused before anything was sent
