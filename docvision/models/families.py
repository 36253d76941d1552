"""Model families: how each processor is made to see exactly the HD-N plan, and what that costs.

In: a model's config.json (as a dict; no weights, no torch) and the page views of a request. Out: the
family's tile size (for the planner), the number of visual tokens a plan costs on that model, the
images and per-call processor options to pass, and the chat message layout. Pure Python.

Visual tokens are counted as the image *placeholder* tokens the processor puts in the prompt
(<|image_pad|>, <IMG_CONTEXT>, <image>); start/end/row markers are text and are not counted.

- Qwen2-VL / Qwen2.5-VL / Qwen3-VL read an image at its native resolution, one token per
  (patch * merge)^2 pixels: 28 px for Qwen2/2.5 (patch 14), 32 px for Qwen3 (patch 16). The tile is
  12 of those units -- 336 px and 384 px -- so a tile costs 144 tokens, the same as a 4KHD tile, and
  a canvas of whole tiles is a whole number of units. The canvas goes in with a pixel budget equal to
  its own area (min_pixels = max_pixels = W*H), so smart_resize keeps it unchanged.
- InternVL (-hf) crops an image into 448 px tiles itself, choosing the grid whose aspect ratio is
  closest to the image's among grids of at most ``max_patches`` tiles, and adds a thumbnail when it
  made more than one tile. Given the canvas (exactly cols x rows tiles) and max_patches = cols*rows,
  its choice is the plan's grid; the thumbnail plays the 4KHD global view.
- Idefics3 / SmolVLM split an image into tiles of the vision encoder's size plus a global image.
  With resizing turned off the canvas (already whole tiles) is split as planned.
- InternLM-XComposer2-4KHD (model_type internlm2 with the XComposer2 architecture, run natively by
  docvision.models.ixc) is the model the HD-N rule comes from: it reads the canvas itself, 336 px tiles,
  and costs exactly (cols*rows + 1)*144 + 1 + (rows + 1)*12 tokens.
- Anything else gets the generic multi-image path: the global view, then the tiles row by row with a
  newline marker after each row, as in the 4KHD layout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from docvision.models.ixc import is_ixc
from docvision.tiling import DEFAULT_TILE, Plan, ixc_tokens

if TYPE_CHECKING:
    from PIL import Image

    from docvision.models.base import PageView

QWEN_TYPES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe")
INTERNVL_TYPES = ("internvl",)
IDEFICS_TYPES = ("idefics3", "smolvlm")
KNOWN_TYPES = QWEN_TYPES + INTERNVL_TYPES + IDEFICS_TYPES
UNITS_PER_TILE = 12  # 12 x 12 = 144 tokens per tile, as in 4KHD


@dataclass(frozen=True)
class Family:
    """The generic multi-image path; subclasses override what their processor does differently."""

    name: str
    model_type: str
    tile: int = DEFAULT_TILE
    tokens_per_image: int | None = None  # known for some generic models (image_seq_length & co)

    def visual_tokens(self, plan: Plan) -> int:
        """Visual tokens of one page planned as ``plan`` (an estimate when the model does not say)."""
        if self.tokens_per_image:
            return (plan.tile_count + 1) * self.tokens_per_image
        return plan.tokens

    def images(self, views: Sequence["PageView"]) -> list["Image.Image"]:
        """The images to hand the processor, in the order the message's image parts name them."""
        import docvision.views as drawing

        out = []
        for view in views:
            out.append(drawing.global_view(view.image, view.plan))
            out.extend(drawing.tiles(view.image, view.plan))
        return out

    def processor_kwargs(self, views: Sequence["PageView"]) -> dict:
        """Per-call processor options (``apply_chat_template(..., processor_kwargs=...)``); none for a
        text-only call (no views), whatever the family."""
        return {}

    def content(self, views: Sequence["PageView"], prompt: str) -> list[dict]:
        """The user message's content parts: 4KHD layout per page, then the prompt."""
        parts: list[dict] = []
        for view in views:
            parts.append(_text(f"{view.label}, whole page:\n"))
            parts.append({"type": "image"})
            parts.append(_text("\ntiles, row by row:\n"))
            cols, rows = view.plan.grid
            for _ in range(rows):
                parts.extend({"type": "image"} for _ in range(cols))
                parts.append(_text("\n"))
        parts.append(_text(prompt))
        return _merge_text(parts)


def _text(text: str) -> dict:
    return {"type": "text", "text": text}


def _merge_text(parts: list[dict]) -> list[dict]:
    """Join neighbouring text parts so templates see one text part between images."""
    merged: list[dict] = []
    for part in parts:
        if part["type"] == "text" and merged and merged[-1]["type"] == "text":
            merged[-1] = _text(merged[-1]["text"] + part["text"])
        else:
            merged.append(part)
    return merged


@dataclass(frozen=True)
class NativeFamily(Family):
    """Families whose processor takes the whole canvas as one image per page."""

    def images(self, views: Sequence["PageView"]) -> list["Image.Image"]:
        return [view.image for view in views]

    def content(self, views: Sequence["PageView"], prompt: str) -> list[dict]:
        parts: list[dict] = []
        for view in views:
            if len(views) > 1:
                parts.append(_text(f"{view.label}:\n"))
            parts.append({"type": "image"})
        parts.append(_text(prompt))
        return _merge_text(parts)


@dataclass(frozen=True)
class QwenFamily(NativeFamily):
    unit: int = 28  # pixels per visual token side: patch * spatial merge

    def visual_tokens(self, plan: Plan) -> int:
        width, height = plan.canvas_size
        return (width // self.unit) * (height // self.unit)

    def processor_kwargs(self, views: Sequence["PageView"]) -> dict:
        # One budget per call: the smallest and largest canvas area. Every canvas is a whole number
        # of units and inside the range, so smart_resize leaves each one as it is.
        areas = [v.image.size[0] * v.image.size[1] for v in views]
        if not areas:  # a text-only call: no pixels to budget
            return {}
        return {"size": {"shortest_edge": min(areas), "longest_edge": max(areas)}}


@dataclass(frozen=True)
class InternVLFamily(NativeFamily):
    tokens_per_tile: int = 256

    def visual_tokens(self, plan: Plan) -> int:
        patches = plan.tile_count + (1 if plan.tile_count > 1 else 0)  # + thumbnail
        return patches * self.tokens_per_tile

    def processor_kwargs(self, views: Sequence["PageView"]) -> dict:
        # One max_patches per call; with several pages of different grids the largest budget is
        # used and InternVL picks each page's grid by aspect ratio within it (see internvl_grid).
        if not views:  # a text-only call
            return {}
        return {"crop_to_patches": True, "min_patches": 1,
                "max_patches": max(v.plan.tile_count for v in views)}


@dataclass(frozen=True)
class IdeficsFamily(NativeFamily):
    tokens_per_tile: int = 64

    def visual_tokens(self, plan: Plan) -> int:
        # A canvas of one tile is not split: one image, no global view.
        images = plan.tile_count + 1 if plan.tile_count > 1 else 1
        return images * self.tokens_per_tile

    def processor_kwargs(self, views: Sequence["PageView"]) -> dict:
        # No resize: the canvas is already whole tiles, so it is split exactly as planned (and is
        # not squeezed under the processor's 4096 px resize cap).
        if not views:  # a text-only call
            return {}
        return {"do_resize": False, "do_image_splitting": True,
                "max_image_size": {"longest_edge": self.tile}}


@dataclass(frozen=True)
class IXCFamily(NativeFamily):
    """IXC2-4KHD: the plan is its own, so the canvas goes in as it is and the layout's formula is the cost."""

    def visual_tokens(self, plan: Plan) -> int:
        return ixc_tokens(plan.grid, self.tile)


def internvl_grid(size: tuple[int, int], tile: int, max_patches: int, min_patches: int = 1) -> tuple[int, int]:
    """(cols, rows) InternVL/GOT-OCR2 picks for an image of ``size``: closest aspect ratio, then more tiles."""
    width, height = size
    grids = sorted({(c, r) for n in range(min_patches, max_patches + 1) for c in range(1, n + 1)
                    for r in range(1, n + 1) if min_patches <= c * r <= max_patches},
                   key=lambda g: g[0] * g[1])
    best, best_diff = (1, 1), float("inf")
    for cols, rows in grids:
        diff = abs(width / height - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and width * height > 0.5 * tile * tile * cols * rows:
            best = (cols, rows)
    return best


def _sub(config: dict, key: str) -> dict:
    value = config.get(key) or {}
    return value if isinstance(value, dict) else {}


def _first(value, default: int) -> int:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return int(value) if value else default


def detect(config: dict) -> Family:
    """The family adapter for a model, from its config.json contents."""
    model_type = str(config.get("model_type", ""))
    vision = _sub(config, "vision_config")
    if is_ixc(config):
        return IXCFamily("ixc", model_type, tile=_first(vision.get("image_size"), DEFAULT_TILE))
    if model_type in QWEN_TYPES:
        default_patch = 16 if model_type.startswith("qwen3") else 14
        unit = _first(vision.get("patch_size"), default_patch) * _first(vision.get("spatial_merge_size"), 2)
        return QwenFamily("qwen", model_type, tile=UNITS_PER_TILE * unit, unit=unit)
    if model_type in INTERNVL_TYPES:
        tile = _first(vision.get("image_size"), 448)
        patch = _first(vision.get("patch_size"), 14)
        ratio = float(config.get("downsample_ratio", 0.5))
        per_tile = int(config.get("image_seq_length") or round((tile // patch) ** 2 * ratio * ratio))
        return InternVLFamily("internvl", model_type, tile=tile, tokens_per_tile=per_tile)
    if model_type in IDEFICS_TYPES:
        tile = _first(vision.get("image_size"), 512)
        patch = _first(vision.get("patch_size"), 16)
        scale = int(config.get("scale_factor", 4))
        return IdeficsFamily("idefics3", model_type, tile=tile,
                             tokens_per_tile=(tile // patch) ** 2 // (scale * scale))
    per_image = config.get("image_seq_length") or config.get("mm_tokens_per_image")
    return Family("generic", model_type, tile=DEFAULT_TILE, tokens_per_image=int(per_image) if per_image else None)


# Served model names -> the config.json facts detect() needs, for servers that do not share the model's
# config. Checked in order; the first match wins.
_NAME_FAMILIES = (
    (r"(xcomposer2|ixc)[-_.]?4khd", {"model_type": "internlm2", "architectures": ["InternLMXComposer2ForCausalLM"]}),
    (r"qwen3[-_.]?vl", {"model_type": "qwen3_vl"}),
    (r"qwen2[-_.]?5[-_.]?vl", {"model_type": "qwen2_5_vl"}),
    (r"qwen2[-_.]?vl", {"model_type": "qwen2_vl"}),
    (r"internvl", {"model_type": "internvl"}),
    (r"smolvlm", {"model_type": "smolvlm", "vision_config": {"image_size": 512, "patch_size": 16},
                  "scale_factor": 4}),
    (r"idefics3", {"model_type": "idefics3", "vision_config": {"image_size": 364, "patch_size": 14},
                   "scale_factor": 2}),
)


def from_name(model: str) -> Family:
    """The family adapter a model's name implies (a served name, a hub id); the generic path otherwise."""
    import re

    name = model.lower().rsplit("/", 1)[-1] if model else ""
    for pattern, config in _NAME_FAMILIES:
        if re.search(pattern, name):
            return detect(config)
    return detect({})


def read_config(folder: Path) -> dict:
    """A model folder's config.json as a dict."""
    return json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))


def family_of(folder: Path) -> Family:
    """The family adapter of the model saved in ``folder`` (reads config.json only)."""
    return detect(read_config(folder))


__all__ = ["Family", "IXCFamily", "IdeficsFamily", "InternVLFamily", "NativeFamily", "QwenFamily", "detect",
           "family_of", "from_name", "internvl_grid", "read_config"]
