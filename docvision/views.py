"""Draw what the model sees: a page on its HD-N canvas, the global view, the tiles, an overview.

In: a Page and its Plan (and for the overview, the page's words). Out: Pillow images. The page is drawn
straight at the plan's content size (``Page.render``), so nothing is rendered large and shrunk afterwards.
The canvas is the model's input; the overview is annotated for people and never shown to a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from docvision.document import Page, Word
from docvision.tiling import Plan

if TYPE_CHECKING:
    from PIL import Image, ImageDraw

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


ANCHOR_COLOURS = {"text": (0, 90, 230), "ocr": (0, 160, 60)}  # text layer blue, OCR green
GRID = (220, 0, 0)


def overview(board: "Image.Image", plan: Plan, max_side: int = 2048, words: Sequence[Word] = ()) -> "Image.Image":
    """The canvas for people: padding tinted, a thin tile grid, each tile's number in a small badge in its
    corner, and with ``words`` (source pixels) their boxes drawn: the text layer blue, OCR words green.

    Shrunk to at most ``max_side`` pixels on its long side so posters stay viewable.
    """
    from PIL import Image, ImageDraw

    factor = min(1.0, max_side / max(plan.canvas_size))
    size = (max(1, round(plan.canvas_size[0] * factor)), max(1, round(plan.canvas_size[1] * factor)))
    picture = board.resize(size, Image.Resampling.LANCZOS) if factor < 1 else board.copy()
    shade = Image.new("RGBA", size, (0, 0, 0, 0))
    _tint_padding(shade, plan, factor)
    draw = ImageDraw.Draw(shade)
    for word in words:
        x0, y0, x1, y1 = (v * factor for v in plan.to_canvas(word.box))
        colour = ANCHOR_COLOURS.get(word.origin, ANCHOR_COLOURS["text"])
        draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), fill=(*colour, 40), outline=(*colour, 200))
    _grid(draw, plan, factor)
    picture = picture.convert("RGBA")
    picture.alpha_composite(shade)
    return picture.convert("RGB")


def _tint_padding(shade: "Image.Image", plan: Plan, factor: float) -> None:
    """Padding: an orange tint with diagonal hatching, so that even a strip a few pixels wide on a
    shrunk poster overview reads as "not the page" (a faint flat tint vanished there)."""
    from PIL import Image, ImageDraw

    size = shade.size
    x0, y0, x1, y1 = (v * factor for v in plan.content_box)
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


def _grid(draw: "ImageDraw.ImageDraw", plan: Plan, factor: float) -> None:
    """One-pixel tile lines and a small numbered badge in each tile's top-left corner (about 1/12 of the
    tile high: at 336 px it covers 2% of the tile, where the old numbers over the content covered 10%)."""
    from PIL import ImageFont

    tile_px = plan.tile * factor
    font = ImageFont.load_default(size=max(9, round(tile_px / 14)))
    for index, (tx0, ty0, tx1, ty1) in enumerate(plan.tiles, start=1):
        x0, y0 = tx0 * factor, ty0 * factor
        draw.rectangle((x0, y0, tx1 * factor - 1, ty1 * factor - 1), outline=(*GRID, 170), width=1)
        left, top, right, bottom = draw.textbbox((x0 + 3, y0 + 2), str(index), font=font)
        draw.rectangle((x0, y0, right + 3, bottom + 2), fill=(*GRID, 215))
        draw.text((x0 + 3, y0 + 2), str(index), font=font, fill=(255, 255, 255, 255))
