"""Benchmark: loading and memory of a random-weight Qwen3-VL through the transformers backend.

Run: python3 tests/benchmarks/bench_model.py [--scale small|4b] [--hd 1] [--device cpu|cuda]

Builds a random-weight Qwen3-VL (``small``: the 4B's vision widths with fewer layers, ~0.4 B
parameters; ``4b``: Qwen3-VL-4B-Instruct's published shape) in a temporary folder, then, each in a fresh
process so peaks do not mix:
  1. bf16 load + one answer about a US-letter page (the baseline);
  2. 4-bit NF4 load from a cold start (quantize on load, then save the pre-quantized copy) + one answer;
  3. 4-bit load from the pre-quantized cache + one answer.
Prints load time, peak RSS (VmHWM, reset after the imports), the model's own memory (RSS growth over the load, torch's footprint, and
on CUDA the peak allocated), prefill and tokens/s, and the ratios against the baseline of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, os, sys, time
from PIL import Image, ImageDraw
from docvision.models.base import PageView
from docvision.tiling import plan

def status_mb(key):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0.0

def rss_mb():
    return status_mb("VmRSS")

def reset_peak():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the parent that built the model.
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")

folder, quant, device, hd = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
import torch, transformers  # imported before timing: import cost is the same for every variant
from docvision.models.transformers import TransformersBackend
before = rss_mb()
reset_peak()
started = time.perf_counter()
backend = TransformersBackend(model=folder, device=device, quant=quant)
load_s = time.perf_counter() - started
load_peak = status_mb("VmHWM")
page = Image.new("RGB", (2550, 3300), "white")
ImageDraw.Draw(page).text((200, 200), "Total due: 1,234.50", fill="black")
page_plan = plan(page.size, hd, backend.tile)
board = Image.new("RGB", page_plan.canvas_size, "white")
board.paste(page.resize(page_plan.content_size), page_plan.content_box[:2])
if device == "cuda":
    torch.cuda.reset_peak_memory_stats()
generation = backend.generate([PageView("page 1", board, page_plan)], "What is the total?", max_new_tokens=8)
result = {
    "quant": backend.quant, "from_cache": backend.from_cache, "load_s": round(load_s, 2),
    "load_peak_rss_mb": round(load_peak),
    "peak_rss_mb": round(status_mb("VmHWM")),
    # after one answer every weight page has been touched (safetensors are memory-mapped)
    "model_rss_mb": round(rss_mb() - before),
    "footprint_mb": round(backend.model.get_memory_footprint() / 2**20),
    "cuda_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20) if device == "cuda" else None,
    "visual_tokens": generation.visual_tokens, **generation.timings,
}
print("RESULT " + json.dumps(result))
"""


def run_child(folder: Path, quant: str, device: str, hd: int, cache: Path) -> dict:
    env = {**os.environ, "DOCVISION_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(folder), quant, device, str(hd)],
                          capture_output=True, text=True, env=env, timeout=3600, cwd=ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SystemExit(f"child failed ({quant}):\n{proc.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", choices=["small", "4b"])
    parser.add_argument("--hd", type=int, default=1, help="HD-N of the page (1: 144 visual tokens)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.tinymodels import build_bench_model

    with tempfile.TemporaryDirectory(prefix="bench-model-") as temp:
        folder, cache = Path(temp) / "model", Path(temp) / "cache"
        build_bench_model(folder, scale=args.scale)
        weights = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
        print(f"random-weight Qwen3-VL ({args.scale}): {weights / 2**20:.0f} MB of bf16 weights "
              f"(~{weights / 2 / 1e6:.0f} M parameters); US-letter page at HD-{args.hd}; device {args.device}")
        rows = [("bf16 (baseline)", run_child(folder, "none", args.device, args.hd, cache)),
                ("4-bit, cold (quantize + save)", run_child(folder, "4bit", args.device, args.hd, cache)),
                ("4-bit, pre-quantized cache", run_child(folder, "4bit", args.device, args.hd, cache))]
    header = f"{'variant':32} {'load s':>7} {'load peak RSS':>13} {'peak RSS MB':>11} {'model RSS MB':>12} " \
             f"{'footprint MB':>12} {'CUDA peak MB':>12} {'prefill s':>9} {'tok/s':>6} {'vis tok':>7}"
    print(header)
    for name, r in rows:
        print(f"{name:32} {r['load_s']:>7.2f} {r['load_peak_rss_mb']:>13} {r['peak_rss_mb']:>11} "
              f"{r['model_rss_mb']:>12} {r['footprint_mb']:>12} "
              f"{str(r['cuda_peak_mb'] or '-'):>12} {r['prefill_s']:>9.2f} {str(r['tokens_per_s']):>6} "
              f"{r['visual_tokens']:>7}")
    base, cold, warm = (r for _, r in rows)
    print(f"load from the pre-quantized cache vs cold 4-bit load: {warm['load_s'] / cold['load_s']:.2f}x "
          f"({cold['load_s']:.1f} s -> {warm['load_s']:.1f} s)")
    print(f"4-bit vs bf16: load peak RSS {warm['load_peak_rss_mb'] / base['load_peak_rss_mb']:.2f}x, "
          f"peak RSS {warm['peak_rss_mb'] / base['peak_rss_mb']:.2f}x, model RSS "
          f"{warm['model_rss_mb'] / max(1, base['model_rss_mb']):.2f}x, footprint "
          f"{warm['footprint_mb'] / base['footprint_mb']:.2f}x, prefill {warm['prefill_s'] / base['prefill_s']:.2f}x")
    if args.device == "cuda":
        print(f"4-bit vs bf16 CUDA peak: {warm['cuda_peak_mb'] / base['cuda_peak_mb']:.2f}x")


if __name__ == "__main__":
    main()
