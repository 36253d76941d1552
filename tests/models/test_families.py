"""Family adapters: tile sizes, predicted visual tokens, message layout -- and the real processors agree."""

from __future__ import annotations

import pytest
from PIL import Image

from docvision.models import families
from docvision.models.base import PageView
from docvision.tiling import plan

SIZES = [(850, 1100), (1000, 1000), (3840, 1600), (816, 5133), (2550, 3300)]


def _view(size, hd, tile, label="page 1"):
    page_plan = plan(size, hd, tile)
    return PageView(label, Image.new("RGB", page_plan.canvas_size, "white"), page_plan)


def test_detect_tiles_from_config():
    assert families.detect({"model_type": "qwen2_5_vl", "vision_config": {"patch_size": 14}}).tile == 336
    assert families.detect({"model_type": "qwen2_vl"}).tile == 336
    qwen3 = families.detect({"model_type": "qwen3_vl", "vision_config": {"patch_size": 16, "spatial_merge_size": 2}})
    assert (qwen3.name, qwen3.tile, qwen3.unit) == ("qwen", 384, 32)
    intern = families.detect({"model_type": "internvl", "vision_config": {"image_size": [448, 448],
                                                                         "patch_size": [14, 14]}})
    assert (intern.name, intern.tile, intern.tokens_per_tile) == ("internvl", 448, 256)
    smol = families.detect({"model_type": "smolvlm", "scale_factor": 4,
                            "vision_config": {"image_size": 512, "patch_size": 16}})
    assert (smol.name, smol.tile, smol.tokens_per_tile) == ("idefics3", 512, 64)
    idefics = families.detect({"model_type": "idefics3", "scale_factor": 2,
                               "vision_config": {"image_size": 364, "patch_size": 14}})
    assert (idefics.tile, idefics.tokens_per_tile) == (364, 169)
    generic = families.detect({"model_type": "llava"})
    assert (generic.name, generic.tile) == ("generic", 336)


def test_qwen_tokens_are_canvas_units():
    family = families.detect({"model_type": "qwen3_vl"})
    page_plan = plan((2550, 3300), 25, family.tile)  # US letter at HD-25: 4x5 tiles of 384
    assert page_plan.canvas_size == (1536, 1920)
    assert family.visual_tokens(page_plan) == 48 * 60 == 144 * 20
    view = _view((2550, 3300), 25, family.tile)
    assert family.processor_kwargs([view]) == {"size": {"shortest_edge": 1536 * 1920, "longest_edge": 1536 * 1920}}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("hd", [1, 4, 9, 25, 55])
def test_internvl_picks_the_plans_grid(size, hd):
    page_plan = plan(size, hd, 448)
    assert families.internvl_grid(page_plan.canvas_size, 448, page_plan.tile_count) == page_plan.grid


def test_idefics_and_internvl_token_counts():
    idefics = families.detect({"model_type": "idefics3", "scale_factor": 4,
                               "vision_config": {"image_size": 512, "patch_size": 16}})
    assert idefics.visual_tokens(plan((1000, 1000), 1, 512)) == 64  # one tile: no split, no global image
    assert idefics.visual_tokens(plan((1000, 1000), 9, 512)) == (9 + 1) * 64
    intern = families.detect({"model_type": "internvl"})
    assert intern.visual_tokens(plan((1000, 1000), 1, 448)) == 256  # no thumbnail for one tile
    assert intern.visual_tokens(plan((3840, 1600), 9, 448)) == (8 + 1) * 256


def test_generic_layout_follows_4khd():
    family = families.detect({"model_type": "llava"})
    view = _view((3840, 1600), 9, family.tile, "page 2")  # 4 x 2 tiles
    parts = family.content([view], "Question: why?")
    kinds = "".join("I" if p["type"] == "image" else "T" for p in parts)
    assert kinds == "TITIIIITIIIIT"  # label, global, separator, row 1, newline, row 2, newline + prompt
    assert parts[0]["text"] == "page 2, whole page:\n"
    assert parts[2]["text"] == "\ntiles, row by row:\n"
    assert parts[-1]["text"] == "\nQuestion: why?"
    images = family.images([view])
    assert len(images) == 1 + 8 and images[0].size == (336, 336) and images[1].size == (336, 336)


def test_native_layout_labels_pages_only_when_several():
    family = families.detect({"model_type": "qwen2_5_vl"})
    one = [_view((850, 1100), 4, family.tile)]
    assert family.content(one, "Q?") == [{"type": "image"}, {"type": "text", "text": "Q?"}]
    two = one + [_view((850, 1100), 4, family.tile, "page 2")]
    parts = family.content(two, "Q?")
    assert [p.get("text") for p in parts] == ["page 1:\n", None, "page 2:\n", None, "Q?"]
    assert len(family.images(two)) == 2


@pytest.mark.model
@pytest.mark.parametrize("family_name", ["qwen2_5_vl", "qwen3_vl", "internvl", "idefics3"])
def test_processor_produces_the_predicted_tokens(tiny_model_dir, family_name):
    """The real processor, given the adapter's images and options, makes exactly the predicted tokens."""
    from transformers import AutoProcessor

    folder = tiny_model_dir(family_name)
    family = families.family_of(folder)
    processor = AutoProcessor.from_pretrained(folder)
    image_id = processor.image_token_id
    for size, hd in [((850, 1100), 1), ((850, 1100), 4), ((3840, 1600), 6), ((816, 5133), 3)]:
        view = _view(size, hd, family.tile)
        messages = [{"role": "user", "content": family.content([view], "Q?")}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = processor(text=[text], images=family.images([view]), return_tensors="pt",
                           **family.processor_kwargs([view]))
        counted = int((inputs["input_ids"][0] == image_id).sum())
        assert counted == family.visual_tokens(view.plan), (family_name, size, hd)
        if family.name == "qwen":
            t, h, w = inputs["image_grid_thw"][0].tolist()
            unit = family.unit // 2  # grid_thw counts patches before the 2x2 merge
            assert (w * unit, h * unit) == view.plan.canvas_size
        if family.name == "internvl":
            extra = 1 if view.plan.tile_count > 1 else 0
            assert inputs["pixel_values"].shape[0] == view.plan.tile_count + extra
