"""Grounded answers: the region of a page the model says it read its answer from, checked against anchors.

In: a model's reply (text that ends with a box), the model family's box convention, the page's Plan and
words. Out: the reply without the box, and per box a Region -- the box in the model's coordinates, in
canvas pixels and in the page's source pixels, and the page's words inside it, so a record can say
whether the words there carry the answer. Pure: no model, no pixels.

Box conventions (as the model families were trained):
- Qwen2.5-VL: absolute pixels of the image as the processor handed it to the model. docvision gives the
  Qwen processor the canvas with a pixel budget equal to its area, so that image is the canvas itself;
  ``model_size`` says otherwise where a server resized it.
- Qwen3-VL and Qwen2-VL: 0..1000 of the image's width and height, whatever its size.
Both write {"bbox_2d": [x1, y1, x2, y2], "label": ...} in JSON; Qwen2-VL also
<|box_start|>(x1,y1),(x2,y2)<|box_end|>.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Sequence

from docvision.document import Box, Word
from docvision.tiling import Plan

PIXELS = "pixels"  # absolute pixels of the model's input image
RELATIVE = "relative1000"  # 0..1000 of the image's width and height
FORMATS = {"qwen2_5_vl": PIXELS, "qwen2_vl": RELATIVE, "qwen3_vl": RELATIVE, "qwen3_vl_moe": RELATIVE}
SCALE = 1000.0
# A word belongs to a region when at least this much of its box lies inside (boxes from a model are
# loose: half a word is in, a word two lines away is not).
WORD_INSIDE = 0.5

_EMPTY_FENCE = re.compile(r"```(?:json)?\s*```")
_QWEN2_BOX = re.compile(r"<\|box_start\|>\s*\(\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*\)\s*,\s*\(\s*(-?[\d.]+)\s*,"
                        r"\s*(-?[\d.]+)\s*\)\s*<\|box_end\|>")
_BOX_KEYS = ("bbox_2d", "bbox", "box")


@dataclass(frozen=True)
class ModelBox:
    """A box as the model wrote it: its four numbers, the page label it named (if any), its label."""

    box: Box
    page: str | None = None
    label: str | None = None


@dataclass
class Region:
    """Where on a page an answer was read: model coordinates, canvas pixels, source pixels, the words."""

    page: str
    model_box: Box
    canvas_box: Box
    source_box: Box
    words: list[Word] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-ready, boxes rounded to 0.1 px, words as their texts."""
        return {"page": self.page, "model_box": _rounded(self.model_box), "box": _rounded(self.canvas_box),
                "source_box": _rounded(self.source_box), "words": [w.text for w in self.words]}


def box_format(model_type: str) -> str | None:
    """The box convention of a model type (config.json's model_type); None where it does not ground."""
    return FORMATS.get(model_type)


def prompt(question: str, labels: Sequence[str], fmt: str) -> str:
    """The question, asking for the answer first and then the region it was read from, as one JSON line."""
    units = ("pixel coordinates of that page image" if fmt == PIXELS
             else "coordinates from 0 to 1000 across that page image's width and height")
    page = f' "page": "{labels[0]}",' if len(labels) > 1 else ""
    which = f" Name the page as it is labelled ({', '.join(labels)})." if len(labels) > 1 else ""
    return (f"{question}\n\nAnswer the question. Then, on a last line of its own, give the region of the page "
            f"you read the answer from as JSON: {{{page} \"bbox_2d\": [x1, y1, x2, y2]}} in {units}.{which} "
            "If the answer is not on the page, give no JSON line.")


# -- reading a reply -------------------------------------------------------------------------------

def parse(reply: str) -> tuple[str, list[ModelBox]]:
    """The reply without its boxes, and the boxes it gives, in order: JSON objects or lists with a
    bbox_2d (bbox, box) of four numbers, anywhere (fenced or not, one line or many), and Qwen2-VL tokens."""
    found: list[tuple[int, int, ModelBox]] = [
        (m.start(), m.end(), ModelBox(_ordered(tuple(float(v) for v in m.groups()))))
        for m in _QWEN2_BOX.finditer(reply)]
    decoder = json.JSONDecoder()
    at = 0
    while (start := _next_json(reply, at)) >= 0:
        try:
            data, end = decoder.raw_decode(reply, start)
        except ValueError:
            at = start + 1
            continue
        items = data if isinstance(data, list) else [data]
        boxes = [box for item in items if (box := _from_json(item)) is not None]
        found.extend((start, end, box) for box in boxes)
        at = end if boxes else start + 1
    found.sort(key=lambda f: f[0])
    pieces, cut = [], 0
    for start, end, _box in found:
        if start >= cut:
            pieces.append(reply[cut:start])
            cut = end
    pieces.append(reply[cut:])
    rest = _EMPTY_FENCE.sub("", "".join(pieces)).strip()
    return "\n".join(line.rstrip() for line in rest.splitlines()), [box for _s, _e, box in found]


def _next_json(text: str, at: int) -> int:
    positions = [i for i in (text.find("{", at), text.find("[", at)) if i >= 0]
    return min(positions) if positions else -1


def _from_json(item) -> ModelBox | None:
    if not isinstance(item, dict):
        return None
    numbers = next((item[k] for k in _BOX_KEYS if k in item), None)
    if not (isinstance(numbers, list) and len(numbers) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers)):
        return None
    page = item.get("page")
    label = item.get("label")
    return ModelBox(_ordered(tuple(float(v) for v in numbers)), str(page) if page is not None else None,
                    str(label) if label is not None else None)


def _ordered(box: Box) -> Box:
    x0, y0, x1, y1 = box
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


# -- from the model's coordinates to the page --------------------------------------------------------

def to_canvas(box: Box, fmt: str, plan: Plan, model_size: tuple[int, int] | None = None) -> Box:
    """A model box in canvas pixels, clipped to the canvas. ``model_size``: the image the model saw
    (PIXELS only; the canvas itself unless a server resized it)."""
    cw, ch = plan.canvas_size
    if fmt == PIXELS:
        mw, mh = model_size or plan.canvas_size
        sx, sy = cw / mw, ch / mh
    elif fmt == RELATIVE:
        sx, sy = cw / SCALE, ch / SCALE
    else:
        raise ValueError(f"unknown box format {fmt!r}")
    x0, y0, x1, y1 = box
    return (_clip(x0 * sx, cw), _clip(y0 * sy, ch), _clip(x1 * sx, cw), _clip(y1 * sy, ch))


def to_source(box: Box, plan: Plan) -> Box:
    """A canvas box in the page's source pixels (the inverse of Plan.to_canvas); padding is cut away."""
    left, top, right, bottom = plan.content_box
    sx = plan.content_size[0] / plan.source_size[0]
    sy = plan.content_size[1] / plan.source_size[1]
    x0, y0, x1, y1 = (max(left, min(right, box[0])), max(top, min(bottom, box[1])),
                      max(left, min(right, box[2])), max(top, min(bottom, box[3])))
    return ((x0 - left) / sx, (y0 - top) / sy, (x1 - left) / sx, (y1 - top) / sy)


def words_in(box: Box, words: Sequence[Word], inside: float = WORD_INSIDE) -> list[Word]:
    """The words (boxes in the same pixels as ``box``) with at least ``inside`` of their area in it."""
    found = []
    for word in words:
        x0, y0, x1, y1 = word.box
        area = (x1 - x0) * (y1 - y0)
        ix = min(x1, box[2]) - max(x0, box[0])
        iy = min(y1, box[3]) - max(y0, box[1])
        if area > 0 and ix > 0 and iy > 0 and ix * iy >= inside * area:
            found.append(word)
    return found


def region(model_box: ModelBox, fmt: str, plan: Plan, label: str, words: Sequence[Word] = (),
           model_size: tuple[int, int] | None = None) -> Region:
    """A model's box on one page: in canvas and source pixels, with the page's words inside it."""
    canvas_box = to_canvas(model_box.box, fmt, plan, model_size)
    source_box = to_source(canvas_box, plan)
    return Region(label, model_box.box, canvas_box, source_box, words_in(source_box, words))


def locate(reply: str, fmt: str, pages: Sequence[tuple[str, Plan, Sequence[Word]]],
           model_sizes: Sequence[tuple[int, int] | None] | None = None) -> tuple[str, list[Region]]:
    """The reply's text and its boxes placed on the pages of the call: (label, plan, words in source px)
    per page, in the order shown. A box naming no page, or a page not shown, lands on the first page."""
    text, boxes = parse(reply)
    by_label = {label.lower(): index for index, (label, _plan, _words) in enumerate(pages)}
    found = []
    for box in boxes if pages else []:
        index = by_label.get((box.page or "").strip().lower(), 0)
        label, page_plan, words = pages[index]
        size = model_sizes[index] if model_sizes else None
        found.append(region(box, fmt, page_plan, label, words, size))
    return text, found


def agrees(answer: str, found: Sequence[Word]) -> bool:
    """Whether some term of the answer (routing's terms: lowercase, plurals folded) is among the words."""
    from docvision.tasks.routing import terms_of

    said = set(terms_of(answer))
    return bool(said) and bool(said & {t for w in found for t in terms_of(w.text)})


def _clip(value: float, limit: float) -> float:
    return max(0.0, min(float(limit), value))


def _rounded(box: Box) -> list[float]:
    return [round(v, 1) for v in box]
