"""HD-N planning: the reference table of DESIGN.md section 1, and properties over many random sizes."""

from __future__ import annotations

import math
import random

import pytest
from PIL import Image

from docvision import views
from docvision.document import Page
from docvision.tiling import DEFAULT_TILE, best_scale, ixc_tokens, plan

# (input size, HD-N) -> (canvas, grid, tokens), every cell of DESIGN.md section 1.
REFERENCE = {
    ((1000, 1000), 9): ((1008, 1008), (3, 3), 1489),
    ((1000, 1000), 25): ((1680, 1680), (5, 5), 3817),
    ((1000, 1000), 55): ((2352, 2352), (7, 7), 7297),
    ((2550, 3300), 9): ((1008, 1008), (3, 3), 1489),
    ((2550, 3300), 25): ((1344, 1680), (4, 5), 3097),
    ((2550, 3300), 55): ((2016, 2352), (6, 7), 6289),
    ((3840, 1600), 9): ((1344, 672), (4, 2), 1333),
    ((3840, 1600), 25): ((2352, 1008), (7, 3), 3217),
    ((3840, 1600), 55): ((3696, 1680), (11, 5), 8137),
    ((816, 5133), 9): ((336, 2016), (1, 6), 1093),
    ((816, 5133), 25): ((672, 4032), (2, 12), 3757),
    ((816, 5133), 55): ((1008, 6048), (3, 18), 8149),
}


@pytest.mark.parametrize(("size", "hd"), list(REFERENCE), ids=lambda v: str(v))
def test_reference_table(size, hd):
    canvas, grid, tokens = REFERENCE[(size, hd)]
    p = plan(size, hd)
    assert p.canvas_size == canvas
    assert p.grid == grid
    assert p.tokens == tokens
    assert p.tile == DEFAULT_TILE == 336
    assert p.tile_count == grid[0] * grid[1]
    assert len(p.tiles) == p.tile_count


def test_token_formula_matches_paper_layout():
    # (cols*rows + 1) tiles of 12x12 merged tokens, one separator, a newline after each of rows+1 rows
    assert ixc_tokens((4, 5)) == 21 * 144 + 1 + 6 * 12
    assert ixc_tokens((1, 1)) == 2 * 144 + 1 + 2 * 12


def test_letter_page_details():
    p = plan((2550, 3300), 25)
    assert p.content_size == (1298, 1680)  # int(1680 * 2550 / 3300) = 1298
    assert p.content_box == (23, 0, 1321, 1680)  # pad 46 split 23 / 23
    assert p.tiles[0] == (0, 0, 336, 336)
    assert p.tiles[4] == (0, 336, 336, 672)  # row-major: the 5th tile starts row 2
    d = p.as_dict()
    assert d["canvas_size"] == [1344, 1680] and d["tiles"] == 20 and d["visual_tokens"] == 3097
    assert d["global_view"] == [336, 336]


@pytest.mark.parametrize("bad", [((0, 10), 9, 336), ((10, 10), 0, 336), ((10, 10), 9, 0)])
def test_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        plan(*bad)


def _random_cases(count: int, seed: int = 20240406):
    rng = random.Random(seed)
    for _ in range(count):
        if rng.random() < 0.2:  # extreme posters and banners
            long_side, short_side = rng.randint(2000, 60000), rng.randint(1, 900)
            w, h = (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)
        else:
            w, h = rng.randint(1, 9000), rng.randint(1, 9000)
        yield (w, h), rng.choice([1, 2, 4, 6, 9, 12, 16, 25, 36, 55, 65, 100]), rng.choice([28, 224, 336, 448])


CASES = list(_random_cases(3000))


def test_properties_over_random_sizes():
    for (w, h), hd, tile in CASES:
        p = plan((w, h), hd, tile)
        cw, ch = p.content_size
        ctx = ((w, h), hd, tile, p)
        # budget: never more than N tiles, whole tiles only
        assert p.tile_count <= hd, ctx
        assert p.canvas_size == (p.grid[0] * tile, p.grid[1] * tile), ctx
        # the long side is exactly T*s with s the largest admissible scale (budget filled)
        ratio = max(w, h) / min(w, h)
        s = best_scale(ratio, hd)
        assert max(cw, ch) == tile * s, ctx
        assert s * math.ceil(s / ratio) <= hd or s == 1, ctx
        assert (s + 1) * math.ceil((s + 1) / ratio) > hd, ctx
        # aspect ratio kept within a pixel before padding (short side truncated, never stretched)
        if w >= h:
            assert abs(ch - cw * h / w) < 1 or ch == 1, ctx
        else:
            assert abs(cw - ch * w / h) < 1 or cw == 1, ctx
        # padding only on the short side, centred with the odd pixel below / right
        x0, y0, x1, y1 = p.content_box
        assert (x1 - x0, y1 - y0) == (cw, ch), ctx
        assert x0 == (p.canvas_size[0] - cw) // 2 and y0 == (p.canvas_size[1] - ch) // 2, ctx
        assert (x0 == 0) or (y0 == 0), ctx
        assert p.canvas_size[0] - cw < tile and p.canvas_size[1] - ch < tile, ctx
        # tokens follow the paper's layout
        assert p.tokens == ixc_tokens(p.grid, tile), ctx


def test_portrait_is_the_transpose_of_landscape():
    for (w, h), hd, tile in CASES[:1000]:
        a, b = plan((w, h), hd, tile), plan((h, w), hd, tile)
        assert a.content_size == b.content_size[::-1]
        assert a.canvas_size == b.canvas_size[::-1]
        assert a.grid == b.grid[::-1]
        x0, y0, x1, y1 = b.content_box
        assert a.content_box == (y0, x0, y1, x1)
        assert a.tile_count == b.tile_count


def test_to_canvas_maps_corners_onto_the_content_box():
    for (w, h), hd, tile in CASES[:1000]:
        p = plan((w, h), hd, tile)
        x0, y0, x1, y1 = p.to_canvas((0, 0, w, h))
        bx0, by0, bx1, by1 = p.content_box
        assert (x0, y0) == pytest.approx((bx0, by0))
        assert (x1, y1) == pytest.approx((bx1, by1))
        mx, my, _, _ = p.to_canvas((w / 2, h / 2, w / 2, h / 2))
        assert (mx, my) == pytest.approx(((bx0 + bx1) / 2, (by0 + by1) / 2))


def _solid_page(size, colour=(30, 60, 90)) -> Page:
    calls = []

    def render(width, height):
        calls.append((width, height))
        return Image.new("RGB", (width, height), colour)

    page = Page(label="page 1", number=1, size=size, render=render)
    page.calls = calls
    return page


def test_canvas_padding_is_white_and_centred():
    colour = (30, 60, 90)
    rng = random.Random(7)
    for _ in range(120):
        size = (rng.randint(1, 5000), rng.randint(1, 5000))
        p = plan(size, rng.choice([1, 4, 9, 16]), rng.choice([28, 56, 112]))
        page = _solid_page(size, colour)
        board = views.canvas(page, p)
        assert page.calls == [p.content_size]  # drawn once, straight at the planned size
        assert board.size == p.canvas_size and board.mode == "RGB"
        x0, y0, x1, y1 = p.content_box
        W, H = p.canvas_size
        assert board.crop((x0, y0, x1, y1)).getextrema() == tuple((c, c) for c in colour)
        for pad in ((0, 0, W, y0), (0, y1, W, H), (0, 0, x0, H), (x1, 0, W, H)):
            if pad[2] > pad[0] and pad[3] > pad[1]:
                assert board.crop(pad).getextrema() == ((255, 255), (255, 255), (255, 255)), (size, p, pad)
        pad_x, pad_y = W - (x1 - x0), H - (y1 - y0)
        assert (x0, y0) == (pad_x // 2, pad_y // 2)


def test_views_global_and_tiles():
    p = plan((2550, 3300), 9)
    board = views.canvas(_solid_page((2550, 3300)), p)
    assert views.global_view(board, p).size == (336, 336)
    cut = views.tiles(board, p)
    assert len(cut) == 9 and all(t.size == (336, 336) for t in cut)
    over = views.overview(board, p)
    assert over.size == board.size and over.mode == "RGB"
    tall = plan((816, 5133), 55)
    over = views.overview(views.canvas(_solid_page((816, 5133)), tall), tall)
    assert max(over.size) <= 2048


def test_a_page_that_says_how_far_it_may_be_enlarged_spends_fewer_tiles():
    # A 598x210 web capture (three lines at scale 2) may be enlarged to 2x: 3 tiles across, not 8.
    capped = plan((598, 210), 25, max_scale=2.0)
    assert capped.content_size[0] == 3 * 336 and capped.content_size[0] / 598 <= 2.0
    assert capped.grid == (3, 2) and capped.tokens == 1045
    assert plan((598, 210), 25).grid == (8, 3)  # the paper's rule fills the budget
    assert plan((200, 50), 25, max_scale=1.0).grid == (1, 1)  # never below one tile
    assert plan((2550, 3300), 25, max_scale=2.0) == plan((2550, 3300), 25)  # a large page: no change
