"""Grounding: a model's box, in its own coordinates, lands on the right source pixels of the page and
names the words under it -- for portrait, landscape and padded canvases, over random plans."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given, settings, strategies as st

from docvision import ingest
from docvision.document import IngestOptions, Word
from docvision.tasks import grounding
from docvision.tasks.pages import draw
from docvision.tiling import plan
from tests.scripted import ScriptedBackend, make_pdf

REFERENCE_SIZES = [(1000, 1000), (2550, 3300), (3840, 1600), (816, 5133)]  # square, Letter, 4K, poster


def _model_box(source_box, page_plan, fmt, model_size=None) -> list[int]:
    """What a model would write for ``source_box``: whole numbers in its own coordinates."""
    x0, y0, x1, y1 = page_plan.to_canvas(source_box)
    cw, ch = page_plan.canvas_size
    if fmt == grounding.RELATIVE:
        fx, fy = 1000 / cw, 1000 / ch
    else:
        mw, mh = model_size or page_plan.canvas_size
        fx, fy = mw / cw, mh / ch
    return [round(x0 * fx), round(y0 * fy), round(x1 * fx), round(y1 * fy)]


def _tolerance(page_plan, fmt, model_size=None) -> tuple[float, float]:
    """Half a model unit, in source pixels, per axis: the most that rounding to whole numbers moves a box."""
    cw, ch = page_plan.canvas_size
    if fmt == grounding.RELATIVE:
        ux, uy = cw / 1000, ch / 1000
    else:
        mw, mh = model_size or page_plan.canvas_size
        ux, uy = cw / mw, ch / mh
    sx = page_plan.content_size[0] / page_plan.source_size[0]
    sy = page_plan.content_size[1] / page_plan.source_size[1]
    return 0.5 * ux / sx + 1e-6, 0.5 * uy / sy + 1e-6


@st.composite
def pages_and_boxes(draw_):
    width = draw_(st.integers(40, 8000))
    height = draw_(st.integers(40, 8000))
    hd = draw_(st.integers(1, 60))
    tile = draw_(st.sampled_from([336, 384, 448]))
    xs = sorted(draw_(st.lists(st.floats(0, width), min_size=2, max_size=2)))
    ys = sorted(draw_(st.lists(st.floats(0, height), min_size=2, max_size=2)))
    return plan((width, height), hd, tile), (xs[0], ys[0], xs[1], ys[1])


@settings(max_examples=300, deadline=None)
@given(pages_and_boxes(), st.sampled_from([grounding.PIXELS, grounding.RELATIVE]), st.floats(0.3, 1.0))
@example((plan((816, 5133), 25), (100.0, 4000.0, 700.0, 4100.0)), grounding.PIXELS, 1.0)  # portrait poster
@example((plan((3840, 1600), 25), (10.0, 20.0, 3000.0, 1500.0)), grounding.RELATIVE, 1.0)  # landscape
@example((plan((2550, 3300), 25), (0.0, 0.0, 2550.0, 3300.0)), grounding.PIXELS, 0.5)  # padded, resized
def test_a_model_box_maps_back_to_the_source_box_it_was_made_from(case, fmt, resize):
    page_plan, source_box = case
    cw, ch = page_plan.canvas_size
    model_size = (max(1, round(cw * resize)), max(1, round(ch * resize))) if fmt == grounding.PIXELS else None
    reply = f'The answer.\n{{"bbox_2d": {json.dumps(_model_box(source_box, page_plan, fmt, model_size))}}}'
    text, [found] = grounding.locate(reply, fmt, [("page 1", page_plan, [])], [model_size])
    assert text == "The answer."
    tx, ty = _tolerance(page_plan, fmt, model_size)
    for got, want, tol in zip(found.source_box, source_box, (tx, ty, tx, ty)):
        assert abs(got - want) <= tol, (found, source_box)
    left, top, right, bottom = page_plan.content_box
    x0, y0, x1, y1 = found.canvas_box
    assert 0 <= x0 <= x1 <= cw and 0 <= y0 <= y1 <= ch


@pytest.mark.parametrize("size", REFERENCE_SIZES)
def test_a_box_over_the_padding_is_cut_to_the_page(size):
    page_plan = plan(size, 25)
    cw, ch = page_plan.canvas_size
    text, [found] = grounding.locate('{"bbox_2d": [0, 0, 1000, 1000]}', grounding.RELATIVE,
                                     [("page 1", page_plan, [])])
    assert found.canvas_box == (0.0, 0.0, float(cw), float(ch))
    assert found.source_box == pytest.approx((0.0, 0.0, *size))  # the whole page, none of the padding
    assert text == ""


def test_replies_in_every_shape_the_families_write():
    text, boxes = grounding.parse('Total: $1,204.\n```json\n[\n  {"bbox_2d": [310, 40, 20, 90], '
                                  '"label": "total"}\n]\n```')
    assert text == "Total: $1,204."
    assert boxes == [grounding.ModelBox((20.0, 40.0, 310.0, 90.0), None, "total")]  # corners put in order
    text, boxes = grounding.parse('It is 42. {"page": "page 3", "bbox_2d": [1, 2, 3, 4]} and more')
    assert text == "It is 42.  and more" and boxes[0].page == "page 3"
    text, boxes = grounding.parse("<|box_start|>(10,20),(30,40)<|box_end|> answer [1, 2]")
    assert boxes == [grounding.ModelBox((10.0, 20.0, 30.0, 40.0))] and text == "answer [1, 2]"
    assert grounding.parse('no box here {"bbox_2d": [1, 2, 3]} [true, 1]')[1] == []
    assert grounding.box_format("qwen2_5_vl") == grounding.PIXELS
    assert grounding.box_format("qwen3_vl") == grounding.RELATIVE and grounding.box_format("idefics3") is None


def test_a_box_naming_a_page_lands_on_that_page_of_the_call():
    plans = [plan((2550, 3300), 9), plan((3300, 2550), 9)]
    words = [[], [Word("Revenue", (1000, 1000, 1400, 1100))]]
    reply = '{"page": "Page 7", "bbox_2d": [250, 300, 500, 500]}'
    _text, [found] = grounding.locate(reply, grounding.RELATIVE,
                                      [("page 6", plans[0], words[0]), ("page 7", plans[1], words[1])])
    assert found.page == "page 7" and [w.text for w in found.words] == ["Revenue"]
    _text, [fallback] = grounding.locate('{"bbox_2d": [1, 1, 2, 2]}', grounding.RELATIVE,
                                         [("page 6", plans[0], words[0]), ("page 7", plans[1], words[1])])
    assert fallback.page == "page 6"


def test_words_in_a_region_need_half_their_area_inside():
    words = [Word("in", (10, 10, 20, 20)), Word("half", (25, 10, 35, 20)), Word("out", (38, 10, 60, 20))]
    assert [w.text for w in grounding.words_in((0, 0, 30, 30), words)] == ["in", "half"]
    assert grounding.agrees("The totals were 42", [Word("Total:", (0, 0, 1, 1))])
    assert not grounding.agrees("nothing matches", [Word("Total:", (0, 0, 1, 1))])


def test_prompt_names_the_convention_and_the_pages():
    one = grounding.prompt("What is the total?", ["page 2"], grounding.PIXELS)
    assert one.startswith("What is the total?") and "pixel coordinates" in one and '"page"' not in one
    two = grounding.prompt("What is the total?", ["page 2", "page 5"], grounding.RELATIVE)
    assert "0 to 1000" in two and '"page": "page 2"' in two and "(page 2, page 5)" in two


@pytest.mark.parametrize("fmt", [grounding.PIXELS, grounding.RELATIVE])
def test_a_scripted_backend_box_finds_the_printed_word_on_a_real_pdf_page(tmp_path, fmt):
    path = make_pdf(tmp_path / "one.pdf", ["Annual figures.\nThe axolotl census counted 4312 animals."])
    with ingest.load(str(path), IngestOptions()) as document:
        page = next(document.pages())
        target = next(w for w in page.words if w.text == "4312")
        backend = ScriptedBackend()
        view, page_plan = draw(page, 25, backend)
        x0, y0, x1, y1 = target.box
        loose = (x0 - 20, y0 - 15, x1 + 20, y1 + 15)  # a model's box is never tight
        backend.replies = [f'4312 animals.\n{{"bbox_2d": {_model_box(loose, page_plan, fmt)}, "label": "count"}}']
        reply = backend.generate([view], grounding.prompt("How many axolotl?", [view.label], fmt)).text
        text, [found] = grounding.locate(reply, fmt, [(view.label, page_plan, page.words)])
    assert text == "4312 animals."
    assert [w.text for w in found.words] == ["4312"]
    assert grounding.agrees(text, found.words)
    assert found.as_dict()["words"] == ["4312"] and found.as_dict()["page"] == "page 1"
