"""The vision side of IXC2-4KHD: an HD-N canvas in, the image's token embeddings (before the projector) out.

1. Pixels: the canvas (whole 336 px tiles, as docvision's planner drew it) as a float tensor in [0, 1],
   normalised with CLIP's mean/std; the global view is the *normalised* canvas resized to 336 x 336 with
   torch's bicubic interpolation (no antialias), as the reference does, not a PIL resize; the tiles are
   cut row-major. The ViT sees [global, tile 1, ..., tile n].
2. Features: CLIP ViT-L/14-336's last hidden state before post_layernorm, CLS dropped: 24 x 24 patches.
3. Merge: each 2x2 block of neighbouring patches side by side along channels (space-to-depth):
   12 x 12 tokens of 4 x 1024 = 4096 channels.
4. Layout, all at 4096 channels: the global view's 12 rows, each followed by ``plora_sub_GN``; then
   ``plora_glb_GN``; then the canvas's 12*rows token rows, each 12*cols tokens followed by
   ``plora_sub_GN``. (cols*rows + 1)*144 + 1 + (rows + 1)*12 tokens.
5. ``vision_proj`` (Linear - GELU - Linear) maps them to the decoder's width (in the model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# ViT images per forward: bounds activation memory at HD-55 (56 images) without slowing small pages.
VIT_CHUNK = 16


def canvas_pixels(canvas: "Image.Image", tile: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(1 + cols*rows, 3, tile, tile) float32 pixels -- the global view, then the tiles row-major -- and
    the canvas's (cols, rows). The canvas must be whole tiles (a plan's canvas is)."""
    import numpy as np
    import torch.nn.functional as F

    width, height = canvas.size
    if width % tile or height % tile:
        raise ValueError(f"canvas {width}x{height} is not whole {tile} px tiles")
    array = np.asarray(canvas.convert("RGB"), dtype=np.uint8)
    pixels = torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255)
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
    std = torch.tensor(CLIP_STD).view(3, 1, 1)
    pixels = (pixels - mean) / std
    cols, rows = width // tile, height // tile
    tiles = pixels.reshape(3, rows, tile, cols, tile).permute(1, 3, 0, 2, 4).reshape(-1, 3, tile, tile)
    overview = F.interpolate(pixels[None], size=(tile, tile), mode="bicubic", align_corners=False)
    return torch.cat([overview, tiles]), (cols, rows)


class IXCVisionTower(nn.Module):
    """The CLIP tower under its checkpoint name (``vit.vision_tower.vision_model.*``; transformers 5.x
    drops the ``vision_model`` level in memory and maps the names both ways itself)."""

    def __init__(self, vision_config):
        super().__init__()
        from transformers import CLIPVisionModel

        self.vision_tower = CLIPVisionModel(vision_config)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(n, 3, T, T) pixels -> (n, patches, width) patch features, CLS dropped, before post_layernorm."""
        device, dtype = self.vision_tower.device, self.vision_tower.dtype
        parts = []
        for chunk in pixels.split(VIT_CHUNK):
            out = self.vision_tower(pixel_values=chunk.to(device, dtype))
            parts.append(out.last_hidden_state[:, 1:])  # last_hidden_state precedes post_layernorm in CLIP
        return torch.cat(parts)


def merge_2x2(features: torch.Tensor) -> torch.Tensor:
    """(n, side*side, C) patch features -> (n, side/2, side/2, 4C): each 2x2 block concatenated, row by row."""
    count, patches, width = features.shape
    side = int(round(patches ** 0.5))
    if side * side != patches or side % 2:
        raise ValueError(f"{patches} patches per image cannot be merged 2x2")
    half = side // 2
    blocks = features.reshape(count, half, 2, half, 2, width).permute(0, 1, 3, 2, 4, 5)
    return blocks.reshape(count, half, half, 4 * width)


def layout(merged: torch.Tensor, grid: tuple[int, int], glb_gn: torch.Tensor, sub_gn: torch.Tensor) -> torch.Tensor:
    """One page's token sequence (tokens, 4C) from its merged features (1 + cols*rows, h, h, 4C):
    global rows + row separators, the global separator, canvas rows + row separators."""
    cols, rows = grid
    _, half, _, width = merged.shape
    newline = sub_gn.reshape(1, 1, width).to(merged.dtype)
    overview = torch.cat([merged[0], newline.expand(half, 1, width)], dim=1).reshape(-1, width)
    canvas = merged[1:].reshape(rows, cols, half, half, width).permute(0, 2, 1, 3, 4)
    canvas = canvas.reshape(rows * half, cols * half, width)
    canvas = torch.cat([canvas, newline.expand(rows * half, 1, width)], dim=1).reshape(-1, width)
    return torch.cat([overview, glb_gn.reshape(1, width).to(merged.dtype), canvas])


def build_projector(in_width: int, hidden: int) -> nn.Sequential:
    """``vision_proj``: Linear(4C, hidden) - GELU - Linear(hidden, hidden), as ``vision_proj.0`` / ``.2``."""
    return nn.Sequential(nn.Linear(in_width, hidden), nn.GELU(), nn.Linear(hidden, hidden))


__all__ = ["CLIP_MEAN", "CLIP_STD", "IXCVisionTower", "build_projector", "canvas_pixels", "layout", "merge_2x2"]
