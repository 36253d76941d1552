"""A checkpoint folder in, a ready IXCForCausalLM and its tokenizer out.

The folder is read as published: config.json through IXCConfig.from_checkpoint (its auto_map is never
followed, nothing from the folder is imported), safetensors or .bin shards under the original names, with
one renaming: each decoder projection's ``.weight`` -> ``.base.weight`` (transformers reverses it on save,
so a saved copy looks like the checkpoint again). CLIP's ``vision_model.`` level is mapped by transformers
itself. Every weight must be found: a missing one would otherwise stay random without a word.

Precision: bf16 by default (CPU too); --dtype float16/float32 for unquantized models. 4-bit puts exactly
the decoder's base projections in NF4 (bitsandbytes, double quant, bf16 compute) and keeps the Partial
LoRA adapters, the vision tower, projector, separators, embeddings and output head in bf16; the
quantized model is saved once to the user cache (with the tokenizer) so the next load skips quantizing.
"""

from __future__ import annotations

import logging
import json
import struct
from dataclasses import dataclass
from pathlib import Path

from docvision.errors import ModelError

# Base weights of the PLoRA projections live one module down (decoder.PLoRALinear.base). Unanchored at the
# end on purpose: the quantization state of a saved NF4 copy (``wqkv.weight.absmax``...) follows it.
KEY_MAPPING = {r"\.(wqkv|wo|w1|w2|w3)\.weight": r".\1.base.weight"}
# Everything bitsandbytes would otherwise convert, except the decoder's base projections.
KEEP_BF16 = ["vit", "vision_proj", "output", "Plora_A", "Plora_B"]
_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_SINGLE = ("model.safetensors", "pytorch_model.bin")
_MARKS = ("plora_glb_GN", "plora_sub_GN", "vision_proj.0.weight")


@dataclass
class Loaded:
    """A loaded model, its tokenizer, and whether it came from the pre-quantized cache."""

    model: object
    tokenizer: object
    from_cache: bool


def weight_names(folder: Path) -> set[str] | None:
    """Tensor names of a checkpoint folder from its index or safetensors header; None for a lone .bin
    (reading its names means unpickling it). Raises when the folder has no weights at all."""
    for name in _INDEXES:
        index = folder / name
        if index.is_file():
            return set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}))
    single = folder / _SINGLE[0]
    if single.is_file():
        with single.open("rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            return set(json.loads(handle.read(size))) - {"__metadata__"}
    if (folder / _SINGLE[1]).is_file():
        return None
    raise ModelError(f"{folder} has no weights (no *.safetensors or pytorch_model*.bin): download the whole "
                     f"checkpoint folder")


def check_checkpoint(folder: Path) -> None:
    """Raise unless the folder's weights are those of an XComposer2-4KHD (separators and HD projector)."""
    names = weight_names(folder)
    if names is not None and not all(mark in names for mark in _MARKS):
        raise ModelError(f"{folder} is an InternLM-XComposer2 checkpoint without the 4KHD vision parts "
                         f"(plora_glb_GN, plora_sub_GN, vision_proj): only internlm-xcomposer2-4khd-7b is supported")


def _config(folder: Path):
    from docvision.models.ixc.config import IXCConfig

    return IXCConfig.from_checkpoint(json.loads((folder / "config.json").read_text(encoding="utf-8")))


def _from_pretrained(folder: Path, dtype: str, device: str, quantization_config=None, hub_kernels: bool = False):
    """IXCForCausalLM from ``folder``; raises when a weight is missing or has the wrong shape."""
    import torch

    import docvision.models.placement as placement
    from docvision.models.ixc.model import IXCForCausalLM

    model, info = IXCForCausalLM.from_pretrained(
        folder, config=_config(folder), key_mapping=KEY_MAPPING, dtype=getattr(torch, dtype),
        device_map={"": device}, attn_implementation="sdpa", quantization_config=quantization_config,
        output_loading_info=True, **placement.load_keywords(hub_kernels))
    wrong = list(info.get("missing_keys") or []) + [str(k) for k in info.get("mismatched_keys") or []]
    if wrong:
        raise ModelError(f"{folder} does not hold a complete IXC2-4KHD: weights missing or of the wrong shape: "
                         f"{len(wrong)} (first: {sorted(wrong)[0]}); download the checkpoint again")
    return model.eval()


def load(folder: Path, model_id: str, revision: str, device: str, quant: str, dtype: str,
         hub_kernels: bool = False) -> Loaded:
    """Load the checkpoint in ``folder`` as asked, from or into the pre-quantized cache when quantized; hub
    kernels only with ``hub_kernels``."""
    import docvision.models.ixc.chat as chat
    import docvision.models.placement as placement
    from docvision.models.transformers import _quant_config, _save_atomically, quantized_path

    folder = Path(folder)
    check_checkpoint(folder)
    if quant == "none":
        return Loaded(_from_pretrained(folder, dtype, device, hub_kernels=hub_kernels), chat.load_tokenizer(folder),
                      False)
    placement.import_bitsandbytes(hub_kernels)
    cached = quantized_path(model_id, revision, quant, device)
    if (cached / "config.json").is_file():
        return Loaded(_from_pretrained(cached, dtype, device, hub_kernels=hub_kernels), chat.load_tokenizer(cached),
                      True)
    model = _from_pretrained(folder, dtype, device, _quant_config(quant, list(KEEP_BF16)), hub_kernels)
    tokenizer = chat.load_tokenizer(folder)
    try:
        _save_atomically(model, tokenizer, cached)
    except (OSError, NotImplementedError, ValueError) as exc:
        # A cache that cannot be written costs time next load, not this answer.
        logging.getLogger("docvision").warning(f"could not keep a quantized copy in {cached}: {exc}")
    return Loaded(model, tokenizer, False)


__all__ = ["KEEP_BF16", "KEY_MAPPING", "Loaded", "check_checkpoint", "load",
           "weight_names"]
