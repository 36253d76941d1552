"""Pictures of the evidence, for a person to check an answer at a glance.

In: the canvas of a page as the model saw it, its Plan, the evidence boxes in canvas pixels (a grounded
region, or the words that matched the question), a folder and a file stem, and where the page can still be
drawn, its renderer. Out: one crop per evidence region with the box drawn and some of the page around it,
and the whole page (the canvas less its padding) with every box drawn and numbered like the crops; the
paths of those files, for records and the human output.

Crops come from the page drawn at OCR resolution (300 dpi for a PDF) when a renderer is given: at HD-9 a
canvas shows 11 pt text 14 px tall, which a person squints at and tesseract misread in 6 of 9 crops.
Without one they come from the canvas, enlarged.

Words that sit together (a figure and its label on one line) make one region, so a matched phrase gives
one crop rather than one per word.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from docvision.document import Box
from docvision.ingest.ocr import ocr_size
from docvision.tasks.grounding import to_source
from docvision.tiling import Plan

if TYPE_CHECKING:
    from PIL import Image

MAX_REGIONS = 8  # crops per page; more boxes are still drawn on the page picture
PAGE_MAX_SIDE = 2048  # the whole-page picture, like the overview
CROP_MIN_SIDE = 240  # a crop smaller than this is enlarged (by a whole factor, at most 4x) to be readable
BOX_COLOUR = (220, 0, 0)
FILL = (255, 200, 0, 110)  # a highlighter's yellow over the region: the words stay readable
# In a crop the box is a highlight with the ends of its top and bottom edges drawn, a quarter of the
# text's height above and below it: no vertical strokes. On 14 matched words of a scan tesseract read
# back 14 from plain crops and 14 with these marks, but 13 with L-shaped corners and 8 to 13 with full
# outlines of any colour (a stroke beside a word reads as a letter of it; 2 of 27 with an outline tight
# against the letters). The whole-page picture, where boxes must be found, keeps full outlines.
GAP = 0.25
CORNER = 0.6  # length of an edge mark, in text heights


def _inflate(box: Box, dx: float, dy: float) -> Box:
    return (box[0] - dx, box[1] - dy, box[2] + dx, box[3] + dy)


def _touch(a: Box, b: Box) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def regions(boxes: Sequence[Box]) -> list[Box]:
    """Boxes grouped into regions, in reading order: boxes on one line within a couple of words of each
    other join (three times the text's height apart at most); lines apart stay apart."""
    merged: list[Box] = []
    for box in boxes:
        height = box[3] - box[1]
        reach = (max(8.0, 3.0 * height), max(2.0, 0.3 * height))
        current = box
        changed = True
        while changed:  # a new union can reach regions that the box alone did not
            changed = False
            for other in list(merged):
                if _touch(_inflate(current, *reach), other):
                    merged.remove(other)
                    current = _union(current, other)
                    changed = True
        merged.append(current)
    return sorted(merged, key=lambda b: (round(b[1] / 8), b[0]))


def _context(box: Box, bounds: Box) -> tuple[int, int, int, int]:
    """The crop around a region: a line's worth above and below, a few words' worth either side, within
    ``bounds`` (the page on its canvas: never the white padding)."""
    height = box[3] - box[1]
    x0, y0, x1, y1 = _inflate(box, max(48.0, 3.0 * height), max(24.0, 1.5 * height))
    left, top, right, bottom = bounds
    return (int(max(left, x0)), int(max(top, y0)), int(min(right, x1 + 1)), int(min(bottom, y1 + 1)))


class _Detail:
    """The picture crops are cut from, and how a canvas box lands on it."""

    def __init__(self, board: "Image.Image", plan: Plan, render: Callable | None):
        self.plan = plan
        if render is None:
            self.image, self.bounds, self.factor = board, tuple(plan.content_box), None
        else:
            size = ocr_size(plan.source_size)
            self.image, self.bounds = render(*size), (0, 0, *size)
            self.factor = (size[0] / plan.source_size[0], size[1] / plan.source_size[1])

    def box(self, canvas_box: Box) -> Box:
        if self.factor is None:
            return canvas_box
        x0, y0, x1, y1 = to_source(canvas_box, self.plan)
        fx, fy = self.factor
        return (x0 * fx, y0 * fy, x1 * fx, y1 * fy)


def crop(image: "Image.Image", bounds: Box, box: Box) -> "Image.Image":
    """The region ``box`` of ``image`` with its context, enlarged when small, with the box drawn."""
    from PIL import Image

    area = _context(box, bounds)
    picture = image.crop(area)
    factor = min(4, max(1, -(-CROP_MIN_SIDE // max(1, min(picture.size)))))
    if factor > 1:
        picture = picture.resize((picture.width * factor, picture.height * factor), Image.Resampling.LANCZOS)
    shown = [(v - area[i % 2]) * factor for i, v in enumerate(box)]
    _draw_box(picture, shown, width=max(2, factor + 1), corners=True)
    return picture


def _draw_box(picture: "Image.Image", box: Sequence[float], width: int, label: str | None = None,
              corners: bool = False) -> None:
    """Highlight ``box`` and frame it (an outline, or the ends of its top and bottom edges), with a tag."""
    from PIL import Image, ImageDraw, ImageFont

    wash = Image.new("RGBA", picture.size, (0, 0, 0, 0))
    ImageDraw.Draw(wash).rectangle(box, fill=FILL)
    base = picture.convert("RGBA")
    base.alpha_composite(wash)
    picture.paste(base.convert(picture.mode))
    draw = ImageDraw.Draw(picture)
    height = box[3] - box[1]
    pad = width + max(2, round(GAP * height))
    x0, y0, x1, y1 = box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad
    if corners:
        mark = min(max(4.0, CORNER * height), (box[2] - box[0]) / 2)
        for y in (y0, y1):
            draw.line((box[0], y, box[0] + mark, y), fill=BOX_COLOUR, width=width)
            draw.line((box[2] - mark, y, box[2], y), fill=BOX_COLOUR, width=width)
    else:
        draw.rectangle((x0, y0, x1, y1), outline=BOX_COLOUR, width=width)
    if label:
        font = ImageFont.load_default(size=max(12, width * 6))
        x, y = x0, y0
        left, top, right, bottom = draw.textbbox((x, y), label, font=font, anchor="lb")
        draw.rectangle((left - 3, top - 2, right + 3, bottom + 2), fill=BOX_COLOUR)
        draw.text((x, y), label, font=font, fill=(255, 255, 255), anchor="lb")


def page_picture(board: "Image.Image", plan: Plan, boxes: Sequence[Box]) -> "Image.Image":
    """The page as the model saw it, without the canvas padding (shrunk to PAGE_MAX_SIDE), with every
    region drawn and numbered 1, 2, ... like the crops."""
    from PIL import Image

    left, top, _right, _bottom = plan.content_box
    picture = board.crop(plan.content_box).convert("RGB")
    factor = min(1.0, PAGE_MAX_SIDE / max(picture.size))
    if factor < 1:
        size = (max(1, round(picture.width * factor)), max(1, round(picture.height * factor)))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    width = max(2, round(3 * factor))
    for number, box in enumerate(boxes, start=1):
        shifted = (box[0] - left, box[1] - top, box[2] - left, box[3] - top)
        _draw_box(picture, [v * factor for v in shifted], width, str(number))
    return picture


def write(board: "Image.Image", plan: Plan, boxes: Sequence[Box], folder: Path, stem: str,
          render: Callable[[int, int], "Image.Image"] | None = None) -> dict:
    """Write ``stem``.page.png (the page, every region numbered) and ``stem``.region-N.png (a crop per
    region, at most MAX_REGIONS; cut from ``render``'s page at OCR resolution when given) into
    ``folder``; return {"page": path, "regions": [{"box": canvas box, "file": path}]}."""
    folder.mkdir(parents=True, exist_ok=True)
    grouped = regions([b for b in boxes if b[2] > b[0] and b[3] > b[1]])
    page_file = folder / f"{stem}.page.png"
    page_picture(board, plan, grouped).save(page_file, compress_level=3)
    out = []
    detail = _Detail(board, plan, render) if grouped else None
    for number, box in enumerate(grouped[:MAX_REGIONS], start=1):
        path = folder / f"{stem}.region-{number}.png"
        crop(detail.image, detail.bounds, detail.box(box)).save(path, compress_level=3)
        out.append({"box": [round(v, 1) for v in box], "file": str(path)})
    return {"page": str(page_file), "regions": out}
