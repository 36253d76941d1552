"""The overview, for people: thin grid, tile numbers in small corner badges, the anchors as a layer (text
layer blue, OCR green); the canvas beside it stays the untouched model input."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from docvision import views
from docvision.document import Page, Word
from docvision.tiling import plan
from tests.scripted import make_pdf


def _page(size, colour=(235, 240, 250), words=()) -> Page:
    return Page(label="page 1", number=1, size=size, words=list(words),
                render=lambda w, h: Image.new("RGB", (w, h), colour))


def _tinted(pixel, colour) -> bool:
    """The pixel leans clearly toward ``colour``'s strongest channel (drawings are half transparent)."""
    strongest = max(range(3), key=lambda i: colour[i])
    return all(pixel[strongest] >= pixel[i] + 50 for i in range(3) if i != strongest)


def test_grid_is_one_pixel_and_numbers_sit_in_small_corner_badges():
    page = _page((2000, 2000))
    page_plan = plan(page.size, 9)  # 3 x 3 tiles of 336 px, no padding
    board = views.canvas(page, page_plan)
    over = views.overview(board, page_plan)
    # a grid line at the boundary of tiles 1 and 2, and the page's own colour two pixels away
    assert _tinted(over.getpixel((336, 200)), views.GRID)
    assert over.getpixel((338, 200)) == board.getpixel((338, 200))
    # tile 5's badge: red with a white number, in its top-left corner only
    badge = [over.getpixel((336 + dx, 336 + dy)) for dx in range(0, 20) for dy in range(0, 20)]
    assert any(_tinted(p, views.GRID) for p in badge) and any(min(p) > 200 for p in badge)
    changed = sum(over.getpixel((x, y)) != board.getpixel((x, y))
                  for x in range(0, 1008, 4) for y in range(0, 1008, 4))
    assert changed / (252 * 252) < 0.04  # grid and badges cover under 4% of the page


def test_anchor_layer_draws_text_layer_and_ocr_words_in_their_colours():
    words = [Word("Total", (100, 100, 400, 160)), Word("1,204", (100, 600, 400, 660), origin="ocr")]
    page = _page((1000, 1000), colour=(255, 255, 255), words=words)
    page_plan = plan(page.size, 4)
    board = views.canvas(page, page_plan)
    over = views.overview(board, page_plan, words=page.words)
    for word, colour in zip(words, (views.ANCHOR_COLOURS["text"], views.ANCHOR_COLOURS["ocr"])):
        x0, y0, x1, y1 = (round(v) for v in page_plan.to_canvas(word.box))
        assert _tinted(over.getpixel((x0 + 20, y0)), colour), over.getpixel((x0 + 20, y0))
        inside = over.getpixel(((x0 + x1) // 2, (y0 + y1) // 2))
        assert inside != (255, 255, 255) and min(inside) > 180  # a light wash: the word stays readable
    assert views.overview(board, page_plan).getpixel((x0 + 20, y0)) == (255, 255, 255)  # no words, no layer


def test_render_names_the_model_input_and_the_annotated_picture(tmp_path):
    from tests.helpers import json_lines, run_cli

    source = make_pdf(tmp_path / "doc.pdf", ["Quarterly totals by region"])
    human = run_cli("render", source, "--hd", "9", "--views", tmp_path / "out")
    assert "page-NNN.canvas.png is what the model sees; .overview.png is annotated for people" in human.stdout
    proc = run_cli("render", source, "--hd", "9", "--views", tmp_path / "out", "--json")
    files = json_lines(proc.stdout)[0]["pages"][0]["files"]
    assert set(files) == {"canvas", "global", "overview", "anchors"}
    anchors = json.loads(Path(files["anchors"]).read_text())
    assert [a["text"] for a in anchors] == ["Quarterly", "totals", "by", "region"]
    assert "origin" not in anchors[0]  # text-layer words need no label; OCR words carry "origin": "ocr"
    canvas, overview = Image.open(files["canvas"]).convert("RGB"), Image.open(files["overview"]).convert("RGB")
    x0, y0, _x1, _y1 = (round(v) for v in anchors[0]["box"])
    assert canvas.getpixel((x0 + 3, y0)) != overview.getpixel((x0 + 3, y0))  # the anchor drawn for people
