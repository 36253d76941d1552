"""What bench_gpu.py measures with: random checkpoints built on the device, US-letter page views, the backends,
the environment it ran in, and the phases of a model load.

Checkpoints are built where the benchmark runs (random init on a GPU takes a second; on a CPU a 4B model
takes minutes), in bf16, and saved as the real ones are: the Qwen3-VL with the tiny models' processor
(tests/tinymodels.py), the IXC2-4KHD under the official tensor names with a small SentencePiece tokenizer
(tests/tinyixc.py; ids past its 320 pieces decode to nothing, which is all a random model needs).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import shutil
import time
from pathlib import Path

from PIL import Image, ImageDraw

LETTER = (2550, 3300)  # US letter at 300 dpi


def start(device: str) -> dict:
    """Import what every load needs and bring CUDA up, timing each, so loads compare weights alone."""
    timings = {}
    for name in ("torch", "transformers", "docvision.models.transformers", "transformers.models.auto.processing_auto",
                 "bitsandbytes"):
        started = time.perf_counter()
        if name == "bitsandbytes":
            from docvision.models import placement

            placement.import_bitsandbytes()
        else:
            __import__(name)
        timings[name] = round(time.perf_counter() - started, 2)
    import torch
    import transformers

    from docvision.models.transformers import _quiet

    _quiet()
    info = {"import_s": timings, "torch": torch.__version__, "transformers": transformers.__version__}
    if device == "cuda":
        started = time.perf_counter()
        torch.ones(1, device="cuda").matmul(torch.ones(1, 1, device="cuda"))
        torch.cuda.synchronize()
        info.update(cuda_init_s=round(time.perf_counter() - started, 2), gpu=torch.cuda.get_device_name(),
                    gpu_mb=round(torch.cuda.get_device_properties(0).total_memory / 2**20))
    import bitsandbytes

    info["bitsandbytes"] = bitsandbytes.__version__
    return info


def build(kind: str, folder: Path, args) -> Path:
    if kind == "qwen":
        return build_qwen(folder, args.scale, args.device)
    if kind == "ixc":
        return build_ixc(folder, args.ixc_layers, args.ixc_width, args.device)
    raise SystemExit(f"unknown model {kind!r}: qwen or ixc")


def build_qwen(folder: Path, scale: str, device: str) -> Path:
    """A random-weight Qwen3-VL of ``scale`` (tests/tinymodels.bench_config), built on ``device``, saved in bf16."""
    import torch
    import transformers as tf

    from tests.tinymodels import _ids, _qwen, bench_config

    if scale == "tiny":  # the tests' 2-layer model: a quick try-out of the benchmark itself on a CPU
        from tests.tinymodels import build_tiny_model

        return build_tiny_model("qwen3_vl", folder)
    _, _, processor = _qwen("qwen3_vl")
    config = bench_config(scale)
    tokens = processor.tokenizer
    config.image_token_id, config.video_token_id, config.vision_start_token_id, config.vision_end_token_id = _ids(
        tokens, "<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")
    torch.manual_seed(0)
    with torch.device(device):
        model = tf.Qwen3VLForConditionalGeneration(config).to(torch.bfloat16).eval()
    model.generation_config.eos_token_id = tokens.convert_tokens_to_ids("<|im_end|>")
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    del model
    return folder


def build_ixc(folder: Path, layers: int, width: str, device: str) -> Path:
    """A random IXC2-4KHD: the 7B's widths (or the tiny ones) with ``layers`` layers, official names and files."""
    import torch

    from docvision.models.ixc.config import IXCConfig
    from docvision.models.ixc.model import IXCForCausalLM
    from tests.tinyixc import (TINY, TINY_VISION, _write_json, _write_remote_code, bench_shape, official_config,
                               official_names, save_shards, train_tokenizer)

    text, vision = bench_shape(layers) if width == "7b" else (dict(TINY, num_hidden_layers=layers), TINY_VISION)
    vocab_size = int(text.pop("vocab_size", 320))
    folder.mkdir(parents=True, exist_ok=True)
    train_tokenizer(folder, 320)
    config = official_config(text, vision, vocab_size)
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = IXCForCausalLM(IXCConfig.from_checkpoint(config))
    finally:
        torch.set_default_dtype(previous)
    with torch.no_grad():  # the adapters and separators act, as in the real checkpoint
        for name, param in model.named_parameters():
            if "Plora_B" in name or "_GN" in name:
                param.normal_(0.0, 0.02 if "Plora_B" in name else 1.0)
    state = official_names(model.state_dict())
    del model
    _write_json(folder / "config.json", config)
    save_shards(state, folder, "safetensors")
    _write_remote_code(folder)
    return folder


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def page_views(tile: int, hd: int, count: int) -> list:
    """``count`` different US-letter pages with a few lines of text, each planned and drawn at HD-``hd``."""
    from docvision.models.base import PageView
    from docvision.tiling import plan

    views = []
    for number in range(1, count + 1):
        page = Image.new("RGB", LETTER, "white")
        draw = ImageDraw.Draw(page)
        for line in range(12):
            draw.text((200, 200 + 220 * line), f"Page {number}, line {line}: total due {number * 1000 + line}.50",
                      fill="black")
        page_plan = plan(page.size, hd, tile)
        board = Image.new("RGB", page_plan.canvas_size, "white")
        board.paste(page.resize(page_plan.content_size), page_plan.content_box[:2])
        views.append(PageView(f"page {number}", board, page_plan))
    return views


def backend_factory(kind: str, folder: Path, device: str, prefix_cache_mb: int):
    """``quant -> backend`` for the model in ``folder``."""
    from docvision.models.ixc.backend import IXCBackend
    from docvision.models.transformers import TransformersBackend

    cls = IXCBackend if kind == "ixc" else TransformersBackend
    return lambda quant: cls(model=str(folder), device=device, quant=quant, prefix_cache_mb=prefix_cache_mb)


class Phases:
    """Seconds spent inside named steps of a model load (wrapped while the ``with`` block runs)."""

    STEPS = (("transformers.modeling_utils", "caching_allocator_warmup"),
             ("transformers.modeling_utils", "convert_and_load_state_dict_in_model"),
             ("transformers.integrations.bitsandbytes", "Bnb4bitDeserialize.convert"),
             ("transformers.modeling_utils", "PreTrainedModel._finalize_model_loading"),
             ("transformers.models.auto.processing_auto", "AutoProcessor.from_pretrained"),
             ("docvision.models.ixc.chat", "load_tokenizer"))

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._saved: list = []

    def __enter__(self):
        import importlib

        for module_name, path in self.STEPS:
            owner = importlib.import_module(module_name)
            *parents, attr = path.split(".")
            for parent in parents:
                owner = getattr(owner, parent)
            raw = vars(owner).get(attr)
            if raw is None:  # moved in another transformers version: that phase is not reported
                continue
            self._saved.append((owner, attr, raw))
            setattr(owner, attr, self._wrap(path, raw))
        return self

    def _wrap(self, name: str, raw):
        kind = type(raw) if isinstance(raw, (staticmethod, classmethod)) else None
        func = raw.__func__ if kind else raw

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

        return kind(timed) if kind else timed

    def __exit__(self, *exc):
        for owner, attr, raw in reversed(self._saved):
            setattr(owner, attr, raw)
        self._saved.clear()

    def report(self) -> dict:
        return {name: round(seconds, 2) for name, seconds in self.seconds.items()}


# A load as a command-line run makes it: a fresh process, torch and transformers imported before the clock
# starts (as bench_model.py measures), everything else -- docvision, the processor's and bitsandbytes'
# imports, CUDA's start -- on it. ``plain`` imports bitsandbytes first the way it imports by itself.
FRESH = r"""
import json, sys, time
folder, quant, device, how = sys.argv[1:5]
import torch, transformers
started = time.perf_counter()
if how == "plain":
    import bitsandbytes
from docvision.models.transformers import TransformersBackend
backend = TransformersBackend(model=folder, device=device, quant=quant)
if device == "cuda":
    torch.cuda.synchronize()
print("RESULT " + json.dumps({"load_s": round(time.perf_counter() - started, 2), "from_cache": backend.from_cache}))
"""


def fresh_load(folder: Path, quant: str, device: str, how: str = "docvision") -> dict:
    """Seconds of one load in a fresh process (FRESH)."""
    import json
    import os
    import subprocess
    import sys

    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), root]))}
    # cwd: ``python -c`` puts the working folder first on the path, and the checkout a GPU call runs in may
    # hold another docvision.
    proc = subprocess.run([sys.executable, "-c", FRESH, str(folder), quant, device, how], capture_output=True,
                          text=True, env=env, timeout=600, cwd=root)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}


def profile(call, top: int = 35) -> str:
    """The ``top`` functions by cumulative time of one ``call``, as text."""
    profiler = cProfile.Profile()
    profiler.enable()
    call()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


__all__ = ["FRESH", "Phases", "backend_factory", "build", "fresh_load", "page_views", "profile", "remove",
           "start"]
