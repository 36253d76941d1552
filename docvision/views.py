"""Draw what the model sees: a page on its HD-N canvas, the global view, the tiles, an overview.

In: a Page and its Plan. Out: Pillow images. The page is drawn straight at the plan's content size
(``Page.render``), so nothing is rendered large and shrunk afterwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from docvision.document import Page
from docvision.tiling import Plan

if TYPE_CHECKING:
    from PIL import Image

WHITE = (255, 255, 255)


def canvas(page: Page, plan: Plan) -> "Image.Image":
    """The page resized to the plan's content size and padded with white, centred, to whole tiles."""
    from PIL import Image

    content = page.render(*plan.content_size)
    if content.size != plan.content_size:
        raise ValueError(
            f"{page.label}: renderer returned {content.size}, plan needs {plan.content_size}"
        )
    if content.mode != "RGB":
        content = content.convert("RGB")
    if plan.content_box == (0, 0, *plan.canvas_size):
        return content
    board = Image.new("RGB", plan.canvas_size, WHITE)
    board.paste(content, plan.content_box[:2])
    return board


def global_view(board: "Image.Image", plan: Plan) -> "Image.Image":
    """The whole canvas squashed to one tile; the aspect is distorted on purpose, as in 4KHD."""
    from PIL import Image

    return board.resize(plan.global_size, Image.Resampling.BICUBIC, reducing_gap=3.0)


def tiles(board: "Image.Image", plan: Plan) -> list["Image.Image"]:
    """The canvas cut into T x T tiles, row-major."""
    return [board.crop(box) for box in plan.tiles]


def overview(board: "Image.Image", plan: Plan, max_side: int = 2048) -> "Image.Image":
    """The canvas with the tile grid drawn and numbered over it and the padding tinted.

    Shrunk to at most ``max_side`` pixels on its long side so posters stay viewable.
    """
    from PIL import Image, ImageDraw, ImageFont

    factor = min(1.0, max_side / max(plan.canvas_size))
    size = (max(1, round(plan.canvas_size[0] * factor)), max(1, round(plan.canvas_size[1] * factor)))
    picture = board.resize(size, Image.Resampling.LANCZOS) if factor < 1 else board.copy()
    shade = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(shade)
    x0, y0, x1, y1 = (v * factor for v in plan.content_box)
    # Padding: an orange tint with diagonal hatching, so that even a strip a few pixels wide on a
    # shrunk poster overview reads as "not the page" (a faint flat tint vanished there).
    padding = Image.new("L", size, 0)
    # Pillow rectangles include their far edge: stop one pixel before the content box.
    for box in ((0, 0, size[0], y0 - 1), (0, y1, size[0], size[1]), (0, 0, x0 - 1, size[1]),
                (x1, 0, size[0], size[1])):
        if box[2] >= box[0] and box[3] >= box[1] and box[0] < size[0] and box[1] < size[1]:
            ImageDraw.Draw(padding).rectangle(box, fill=255)
    if padding.getbbox():
        tint = Image.new("RGBA", size, (255, 150, 0, 110))
        step = max(6, int(plan.tile * factor / 14))
        hatch = ImageDraw.Draw(tint)
        for k in range(-size[1], size[0], step):
            hatch.line((k, 0, k + size[1], size[1]), fill=(190, 80, 0, 190), width=max(1, step // 5))
        shade.paste(tint, (0, 0), padding)
    tile_px = plan.tile * factor
    font = ImageFont.load_default(size=max(10, int(tile_px / 5)))
    for index, (tx0, ty0, tx1, ty1) in enumerate(plan.tiles, start=1):
        rect = (tx0 * factor, ty0 * factor, tx1 * factor - 1, ty1 * factor - 1)
        draw.rectangle(rect, outline=(220, 0, 0, 255), width=max(1, int(tile_px / 120)))
        label = str(index)
        draw.text((rect[0] + tile_px * 0.06, rect[1] + tile_px * 0.04), label, font=font,
                  fill=(220, 0, 0, 230), stroke_width=max(1, int(tile_px / 100)),
                  stroke_fill=(255, 255, 255, 230))
    picture = picture.convert("RGBA")
    picture.alpha_composite(shade)
    return picture.convert("RGB")
