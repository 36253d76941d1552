"""The transformers backend on tiny random-weight models: loading, 4-bit on CPU, the quantized cache,
visual tokens against the plan, streaming and timings."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

import docvision.models.placement as placement
from docvision.models import transformers as tb
from docvision.models.base import PageView
from docvision.errors import ModelError, UsageError
from docvision.tiling import plan


def page_view(tile: int, hd: int, size=(850, 1100)) -> PageView:
    page = Image.new("RGB", size, "white")
    ImageDraw.Draw(page).text((40, 40), "Total due: 1,234.50", fill="black")
    page_plan = plan(size, hd, tile)
    board = Image.new("RGB", page_plan.canvas_size, "white")
    board.paste(page.resize(page_plan.content_size), page_plan.content_box[:2])
    return PageView("page 1", board, page_plan)


def test_incompatible_linears():
    linears = [("a", 64, 128), ("b", 1152, 4304), ("c", 3420, 1280), ("d", 100, 64), ("e", 128, 96)]
    assert tb.incompatible_linears(linears) == ["b", "c", "d"]


def test_choices(monkeypatch):
    assert placement.choose_quant("auto", "cuda") == "4bit"
    assert placement.choose_quant("auto", "cpu") == "none"
    assert placement.choose_quant("8bit", "cpu") == "8bit"
    with pytest.raises(UsageError):
        placement.choose_quant("3bit", "cpu")
    with pytest.raises(UsageError):
        placement.choose_device("tpu")
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert placement.choose_device("auto") == "cpu"
    with pytest.raises(ModelError, match="no CUDA GPU"):
        placement.choose_device("cuda")


def test_no_nvidia_driver_means_cpu_without_importing_torch(tmp_path):
    """`docvision models` stays fast on a machine without a GPU: torch is not imported to learn that."""
    import subprocess
    import sys

    code = ("import sys; import docvision.models.placement as placement; placement.driver_present = lambda: False; "
            "assert placement.choose_device('auto') == 'cpu'; assert 'torch' not in sys.modules; "
            "from docvision.cli import run; sys.exit(run(['models', '--json']) or ('torch' in sys.modules) * 3)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert '"device": "cpu"' in proc.stdout


def test_quantized_path_depends_on_revision_and_quant(tmp_path, monkeypatch):
    monkeypatch.setenv(tb.CACHE_ENV, str(tmp_path))
    one = tb.quantized_path("Qwen/X", "rev1", "4bit", "cpu")
    assert one.parent == tmp_path / "quantized" and one.name.startswith("Qwen_X-4bit-")
    assert one != tb.quantized_path("Qwen/X", "rev2", "4bit", "cpu")
    assert one != tb.quantized_path("Qwen/X", "rev1", "8bit", "cpu")
    assert one != tb.quantized_path("Qwen/X", "rev1", "4bit", "cuda")


@pytest.mark.model
def test_generate_streams_and_times(tiny_model_dir):
    """Per-family token counts are checked through the CLI (tests/test_ask_cli.py); here the call itself."""
    backend = tb.TransformersBackend(model=str(tiny_model_dir("qwen3_vl")), device="cpu", quant="auto")
    assert backend.info()["quant"] == "none" and backend.info()["dtype"] == "bfloat16"
    pieces: list[str] = []
    view = page_view(backend.tile, 1)
    generation = backend.generate([view], "What is the total?", max_new_tokens=4, on_text=pieces.append)
    assert generation.visual_tokens == backend.visual_tokens(view.plan) == 144
    assert generation.prompt_tokens > generation.visual_tokens and 1 <= generation.new_tokens <= 4
    assert "".join(pieces).strip() == generation.text
    timings = generation.timings
    assert timings["prefill_s"] > 0 and timings["generate_s"] >= 0 and "tokens_per_s" in timings
    again = backend.generate([view], "What is the total?", max_new_tokens=4)
    assert again.text == generation.text  # greedy: the same answer twice
    backend.close()


@pytest.mark.model
def test_4bit_on_cpu_and_the_quantized_cache(tiny_model_dir, tmp_path, monkeypatch):
    import torch

    family = "qwen3_vl"
    monkeypatch.setenv(tb.CACHE_ENV, str(tmp_path / "cache"))
    first = tb.TransformersBackend(model=str(tiny_model_dir(family)), device="cpu", quant="4bit")
    kinds = {type(m).__name__ for m in first.model.modules()}
    assert "Linear4bit" in kinds and not first.from_cache
    cached = list((tmp_path / "cache" / "quantized").iterdir())
    assert len(cached) == 1 and (cached[0] / "config.json").is_file()
    assert (cached[0] / "processor_config.json").is_file()
    second = tb.TransformersBackend(model=str(tiny_model_dir(family)), device="cpu", quant="4bit")
    assert second.from_cache and "Linear4bit" in {type(m).__name__ for m in second.model.modules()}
    # The cached copy is the same model: every tensor, the 4-bit ones included, byte for byte; stricter
    # than comparing greedy text, where a random model's top two logits can sit within one bf16 step.
    # Compared before any forward: bitsandbytes (0.50 here) repacks 4-bit weights for its CPU kernel on the
    # first call, which changes what state_dict() shows.
    one, two = first.model.state_dict(), second.model.state_dict()
    assert set(one) == set(two)
    assert all(one[k].dtype == two[k].dtype and torch.equal(one[k], two[k]) for k in one)
    view = page_view(first.tile, 4)
    answer = first.generate([view], "What is the total?", max_new_tokens=2)
    assert answer.visual_tokens == first.visual_tokens(view.plan)
    assert second.generate([view], "What is the total?", max_new_tokens=2).new_tokens >= 1


@pytest.mark.model
def test_skip_modules_on_cpu_lists_odd_widths(tiny_model_dir, tmp_path):
    import json
    import shutil

    folder = tmp_path / "odd"
    shutil.copytree(tiny_model_dir("qwen2_5_vl"), folder)
    config = json.loads((folder / "config.json").read_text())
    config["vision_config"]["intermediate_size"] = 100  # like Qwen2.5-VL's 3420: not a multiple of 64
    (folder / "config.json").write_text(json.dumps(config))
    skip = tb.skip_modules(folder, "cpu")
    assert "lm_head" in skip
    assert any(name.endswith("mlp.down_proj") and "visual" in name for name in skip)
    assert not any("language_model" in name for name in skip if name != "lm_head")
    assert tb.skip_modules(folder, "cuda") == ["lm_head"]


@pytest.mark.model
def test_4bit_on_cpu_keeps_odd_width_layers_in_bf16(tiny_model_dir, tmp_path, monkeypatch):
    """A vision MLP 100 wide cannot be NF4 on CPU: it stays bf16 and the model still answers."""
    import shutil

    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    monkeypatch.setenv(tb.CACHE_ENV, str(tmp_path / "cache"))
    source = tiny_model_dir("qwen2_5_vl")
    folder = tmp_path / "odd"
    config = AutoConfig.from_pretrained(source)
    config.vision_config.intermediate_size = 100
    torch.manual_seed(0)
    AutoModelForImageTextToText.from_config(config).to(torch.bfloat16).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "processor_config.json", "chat_template.jinja"):
        shutil.copy(source / name, folder / name)
    backend = tb.TransformersBackend(model=str(folder), device="cpu", quant="4bit")
    modules = dict(backend.model.named_modules())
    odd = [name for name, m in modules.items() if name.endswith("mlp.down_proj") and "visual" in name]
    assert odd and all(type(modules[name]).__name__ == "Linear" for name in odd)
    assert any(type(m).__name__ == "Linear4bit" for m in modules.values())
    view = page_view(backend.tile, 1)
    assert backend.generate([view], "Total?", max_new_tokens=2).visual_tokens == 144


@pytest.mark.model
@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl", "internvl", "idefics3"])
def test_a_text_only_call_works_for_every_family(tiny_model_dir, family):
    """Combining notes sends no page: no image tokens, no processor options that need images."""
    backend = tb.TransformersBackend(model=str(tiny_model_dir(family)), device="cpu", quant="none")
    generation = backend.generate([], "Combine these notes: 41 MW, 44 MW.", max_new_tokens=2)
    assert generation.visual_tokens == 0 and generation.prompt_tokens > 0 and generation.new_tokens >= 1
    assert backend.family.processor_kwargs([]) == {}
    backend.close()


@pytest.mark.model
def test_system_text_reaches_the_chat_template_and_dtype_float32_loads(tiny_model_dir):
    backend = tb.TransformersBackend(model=str(tiny_model_dir("qwen3_vl")), device="cpu", quant="none",
                                     dtype="float32")
    assert backend.info()["dtype"] == "float32"
    view = page_view(backend.tile, 1)
    ids = backend.prepare([view], "What is the total?", system="You are a careful auditor.")["input_ids"][0]
    assert "You are a careful auditor." in backend.processor.tokenizer.decode(ids)
    assert backend.generate([view], "Total?", max_new_tokens=2, system="Be brief.").new_tokens >= 1
    with pytest.raises(UsageError, match="--dtype float16 is for unquantized models"):
        tb.TransformersBackend(model=str(tiny_model_dir("qwen3_vl")), device="cpu", quant="4bit", dtype="float16")


@pytest.mark.model
def test_a_thread_limit_does_not_corrupt_bf16_matmuls(tiny_model_dir):
    """OMP_THREAD_LIMIT below torch's thread count left bf16 matmul outputs half unwritten (NaN); a
    backend holds torch to the limit, so after it loads, bf16 matmuls match float32."""
    import os
    import subprocess
    import sys

    script = f"""
import torch
from docvision.models import transformers as tb
backend = tb.TransformersBackend(model={str(tiny_model_dir("qwen2_5_vl"))!r}, device="cpu", quant="none")
torch.manual_seed(0)
wrong = 0
for n in [1, 2, 16, 100, 1000] * 8:
    x, w = torch.randn(1, n, 128, dtype=torch.bfloat16), torch.randn(256, 128, dtype=torch.bfloat16) * 0.05
    exact = torch.nn.functional.linear(x.float(), w.float())
    wrong += not (torch.nn.functional.linear(x, w).float() - exact).abs().max() < 0.1
print(wrong, torch.get_num_threads())
"""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "1"], proc.stdout
