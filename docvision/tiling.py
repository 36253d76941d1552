"""HD-N dynamic-resolution planning, exactly as InternLM-XComposer2-4KHD (arXiv 2404.06512) does it.

In: a page's natural size, a tile budget N and a tile size T. Out: a Plan saying where the page
lands on a canvas of whole T x T tiles, which tiles are read in which order, and how many visual
tokens the 4KHD layout spends on it. Pure arithmetic, no images: ``docvision.views`` draws them.

The policy (docs/architecture.md, The HD-N rule, with the reference table the tests reproduce):
  1. transpose a portrait page so that r = W/H >= 1;
  2. s = the largest integer with s * ceil(s / r) <= N;
  3. resize to new_w = T*s, new_h = int(new_w / r) -- up or down, the budget is always filled (but for
     a page that says how far it may be enlarged: a web capture, a sheet);
  4. pad the short side with white to a whole number of tiles, centred (top = floor(pad / 2));
  5. transpose back; tiles are read row-major;
  6. the global view is the whole canvas squashed to T x T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from docvision.document import Box

DEFAULT_TILE = 336
# IXC2-4KHD: a 336 px tile is 24x24 ViT patches of 14 px, merged 2x2 into 12x12 = 144 tokens.
PATCH_MERGE_PX = 28


@dataclass(frozen=True)
class Plan:
    """Where one page lands at HD-N. Boxes are (x0, y0, x1, y1) in canvas pixels."""

    source_size: tuple[int, int]
    hd: int
    tile: int
    content_size: tuple[int, int]  # the page after resizing, before padding
    canvas_size: tuple[int, int]
    grid: tuple[int, int]  # (cols, rows)
    content_box: tuple[int, int, int, int]  # where the page sits; the rest is white padding

    @property
    def scale(self) -> float:
        """Canvas pixels per source pixel along the page's long side."""
        sw, sh = self.source_size
        cw, ch = self.content_size
        return cw / sw if sw >= sh else ch / sh

    @property
    def tile_count(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def tiles(self) -> list[tuple[int, int, int, int]]:
        """Tile boxes, row-major (the order the model reads them)."""
        cols, rows = self.grid
        t = self.tile
        return [(c * t, r * t, (c + 1) * t, (r + 1) * t) for r in range(rows) for c in range(cols)]

    @property
    def global_size(self) -> tuple[int, int]:
        return (self.tile, self.tile)

    @property
    def tokens(self) -> int:
        """Visual tokens of the 4KHD layout: global rows + newlines, a separator, local rows + newlines."""
        return ixc_tokens(self.grid, self.tile)

    def to_canvas(self, box: Box) -> Box:
        """Map a box in source pixels to canvas pixels."""
        sx = self.content_size[0] / self.source_size[0]
        sy = self.content_size[1] / self.source_size[1]
        ox, oy = self.content_box[0], self.content_box[1]
        x0, y0, x1, y1 = box
        return (ox + x0 * sx, oy + y0 * sy, ox + x1 * sx, oy + y1 * sy)

    def as_dict(self) -> dict:
        """The plan as plain JSON-ready data (for records and ``render --json``)."""
        return {
            "hd": self.hd,
            "tile": self.tile,
            "source_size": list(self.source_size),
            "scale": round(self.scale, 6),
            "content_size": list(self.content_size),
            "canvas_size": list(self.canvas_size),
            "grid": list(self.grid),
            "tiles": self.tile_count,
            "content_box": list(self.content_box),
            "global_view": list(self.global_size),
            "visual_tokens": self.tokens,
        }


def ixc_tokens(grid: tuple[int, int], tile: int = DEFAULT_TILE) -> int:
    """(cols*rows + 1) * side^2 + 1 + (rows + 1) * side, with side = tile / 28 (12 at 336 px)."""
    cols, rows = grid
    side = tile // PATCH_MERGE_PX
    return (cols * rows + 1) * side * side + 1 + (rows + 1) * side


def best_scale(ratio: float, hd: int) -> int:
    """The largest s with s * ceil(s / ratio) <= hd, counting up from 1 (ratio >= 1)."""
    s = 1
    while s * math.ceil(s / ratio) <= hd:
        s += 1
    return max(1, s - 1)


def plan(size: tuple[int, int], hd: int = 25, tile: int = DEFAULT_TILE, max_scale: float | None = None) -> Plan:
    """Plan a page of natural ``size`` (width, height) at HD-``hd`` with ``tile``-pixel tiles.

    ``max_scale``: the most the page may be enlarged (canvas px per source px), for pages whose pixels
    hold no more than that (a web capture, a small sheet): s is then capped too, and the page spends
    fewer tiles on the same content instead of being blown up to fill the budget (docs/architecture.md).
    """
    if hd < 1:
        raise ValueError(f"HD-N needs N >= 1, got {hd}")
    if tile < 1:
        raise ValueError(f"tile size must be positive, got {tile}")
    width, height = size
    if width < 1 or height < 1:
        raise ValueError(f"page size must be positive, got {width}x{height}")
    transposed = width < height
    long_side, short_side = (height, width) if transposed else (width, height)
    ratio = long_side / short_side
    s = best_scale(ratio, hd)
    if max_scale is not None:
        s = max(1, min(s, int(long_side * max_scale / tile)))
    new_long = tile * s
    # int(), not round(): the reference truncates, and the reference table depends on it.
    new_short = max(1, int(new_long / ratio))
    padded_short = math.ceil(new_short / tile) * tile
    offset = (padded_short - new_short) // 2
    if transposed:
        content = (new_short, new_long)
        canvas = (padded_short, new_long)
        box = (offset, 0, offset + new_short, new_long)
    else:
        content = (new_long, new_short)
        canvas = (new_long, padded_short)
        box = (0, offset, new_long, offset + new_short)
    grid = (canvas[0] // tile, canvas[1] // tile)
    return Plan(
        source_size=(width, height),
        hd=hd,
        tile=tile,
        content_size=content,
        canvas_size=canvas,
        grid=grid,
        content_box=box,
    )
