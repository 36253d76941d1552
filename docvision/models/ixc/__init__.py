"""The native InternLM-XComposer2-4KHD (IXC2-4KHD): the model the HD-N rule was made for, run without
its checkpoint's own code.

In: the official checkpoint folder as published (config.json with model_type internlm2 and an auto_map to
the remote XComposer2 files, safetensors or .bin shards under the original tensor names, a SentencePiece
tokenizer.model). Out: an ``IXCBackend`` (backend.py) that answers about HD-N canvases.

The pieces: config.py (the checkpoint's config.json -> IXCConfig), decoder.py (InternLM2 with Partial LoRA
on image positions), vision.py (CLIP ViT-L/14-336, 2x2 channel merge, separator layout, projector),
load.py (folder -> model: names, dtype, NF4 of the decoder's base projections, pre-quantized cache),
chat.py (tokenizer setup, prompt pieces, stop tokens), backend.py (the Backend).

This module is pure Python (no torch): ``is_ixc`` lets the registry and the family table recognise the
checkpoint from its config alone.
"""

from __future__ import annotations

import json

FAMILY = "ixc"
TILE = 336
# Rows of positions the model's one-token forward takes (models/decode.py): plain RoPE, one.
IXC_GRAPH_ROWS = 1
# The remote code's class and file names: how a config.json says "this is an XComposer2 checkpoint".
_ARCHITECTURE_MARK = "xcomposer2"


def is_ixc(config: dict) -> bool:
    """Whether a config.json (as a dict) describes an InternLM-XComposer2 checkpoint.

    By its content, never its folder name: model_type internlm2 plus an XComposer2 architecture or
    auto_map entry. Plain InternLM2 chat models (model_type internlm2, no XComposer2) are not.
    """
    if config.get("model_type") != "internlm2":
        return False
    architectures = " ".join(str(a) for a in (config.get("architectures") or []))
    auto_map = json.dumps(config.get("auto_map") or {})
    return _ARCHITECTURE_MARK in (architectures + auto_map).lower()


__all__ = ["FAMILY", "IXC_GRAPH_ROWS", "TILE", "is_ixc"]
