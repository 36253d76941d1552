"""Benchmark: weight memory of InternLM-XComposer2-4KHD in bf16 against 4-bit NF4, at the real widths.

Run: python3 tests/benchmarks/bench_ixc.py [--layers 2] [--device cpu|cuda] [--lean]

Builds a random checkpoint with the 7B's decoder widths (hidden 4096, intermediate 14336, 32 heads / 8 KV
heads, vocab 92544, the real Partial LoRA ranks) and the real CLIP ViT-L/14-336, but only ``--layers``
decoder layers, saved like the official folder. Loads it through docvision's loader in bf16, then with the
decoder's base projections in NF4 (the shipped setting: adapters, tower, projector, embeddings and output
stay bf16), and with ``--lean`` a third time with the output head and the rank-256 adapters in NF4 too
(not shipped; it shows what the 0.35 target would take). Weight memory is the bytes of every tensor of
the loaded model's state: for NF4 the packed weights plus their quantization state. Per decoder layer is
the mean over the layers built; totals are extrapolated to 32 layers; the ratio is NF4 / bf16.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

FULL_LAYERS = 32
TARGET = 0.35
PARTS = ("decoder layer", "  base projections", "  PLoRA adapters", "  norms", "token embeddings",
         "output head", "vision tower", "projector + separators", "final norm")


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def measure(model) -> dict[str, float]:
    """MB per part of a loaded IXCForCausalLM (its state_dict, quantization state included)."""
    state = model.state_dict()
    layers = model.config.num_hidden_layers

    def part(test) -> float:
        return _bytes(v for k, v in state.items() if test(k)) / 2**20

    in_layers = lambda k: k.startswith("model.layers.")  # noqa: E731
    return {
        "decoder layer": part(in_layers) / layers,
        "  base projections": part(lambda k: in_layers(k) and ".base." in k) / layers,
        "  PLoRA adapters": part(lambda k: in_layers(k) and ".Plora_" in k) / layers,
        "  norms": part(lambda k: in_layers(k) and "_norm" in k) / layers,
        "token embeddings": part(lambda k: k.startswith("model.tok_embeddings")),
        "output head": part(lambda k: k.startswith("output.")),
        "vision tower": part(lambda k: k.startswith("vit.")),
        "projector + separators": part(lambda k: k.startswith("vision_proj.") or "_GN" in k),
        "final norm": part(lambda k: k.startswith("model.norm")),
    }


def total(parts: dict[str, float], layers: int = FULL_LAYERS) -> float:
    fixed = sum(v for k, v in parts.items() if not k.startswith(" ") and k != "decoder layer")
    return fixed + layers * parts["decoder layer"]


def load(folder: Path, device: str, keep: list[str] | None) -> tuple[dict, float]:
    """Parts of the model loaded from ``folder`` (bf16 when ``keep`` is None, else NF4 keeping ``keep``)."""
    from docvision.models.ixc import load as loader
    from docvision.models.transformers import _quant_config

    started = time.perf_counter()
    quantization = None if keep is None else _quant_config("4bit", keep)
    model = loader._from_pretrained(folder, "bfloat16", device, quantization)
    seconds = time.perf_counter() - started
    parts = measure(model)
    del model
    gc.collect()
    return parts, seconds


def report(columns: dict[str, dict], layers: int) -> None:
    names = list(columns)
    print(f"\nweight memory, MB ({layers} decoder layers built; per layer = their mean)")
    print(f"{'part':<26}" + "".join(f"{n:>14}" for n in names))
    for part in PARTS:
        print(f"{part:<26}" + "".join(f"{columns[n][part]:>14.1f}" for n in names))
    base = total(columns[names[0]])
    print(f"{'total at 32 layers':<26}" + "".join(f"{total(columns[n]):>14.1f}" for n in names))
    print(f"{'ratio to bf16':<26}" + "".join(f"{total(columns[n]) / base:>14.3f}" for n in names))
    shipped = total(columns[names[1]]) / base
    verdict = "meets" if shipped <= TARGET else "misses"
    print(f"\nshipped NF4 / bf16 at 32 layers: {shipped:.3f} ({verdict} the {TARGET} target); "
          f"{total(columns[names[1]]) / 1024:.2f} GiB against {base / 1024:.2f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--lean", action="store_true", help="also load with the output head and rank-256 adapters in NF4")
    args = parser.parse_args()
    from docvision.models.ixc.load import KEEP_BF16
    from docvision.models.transformers import _quiet
    from tests.tinyixc import bench_shape, build_tiny_ixc

    _quiet()
    with tempfile.TemporaryDirectory(prefix="bench-ixc-") as temp:
        started = time.perf_counter()
        text, vision = bench_shape(args.layers)
        folder = build_tiny_ixc(Path(temp) / "ixc", text=text, vision=vision)
        print(f"built a {args.layers}-layer random IXC2-4KHD at the 7B's widths in {time.perf_counter() - started:.1f} s")
        columns: dict[str, dict] = {}
        for name, keep in [("bf16", None), ("NF4 shipped", list(KEEP_BF16)),
                           ("NF4 lean", ["vit", "vision_proj", "attention.wqkv.Plora_A", "attention.wqkv.Plora_B"])]:
            if name == "NF4 lean" and not args.lean:
                continue
            columns[name], seconds = load(folder, args.device, keep)
            print(f"loaded {name} on {args.device} in {seconds:.1f} s")
        report(columns, args.layers)


if __name__ == "__main__":
    main()
