"""ask --ground and --evidence-out through the engine: a model box lands on the right words of the right
page, the answer keeps no JSON, and the pictures show the evidence (tesseract reads it back)."""

from __future__ import annotations

from pathlib import Path

import pytest

from docvision.models.families import detect
from docvision.tasks.ask import AskTask
from docvision.tasks.render import ViewFolders
from docvision.tiling import plan
from tests.helpers import read_back, run_task
from tests.scripted import ScriptedBackend, make_pdf

PAGES = ["Quarterly notes. Nothing to see here.", "Invoice summary. Total due: 1,234.50 EUR. Thank you."]


class Grounding(ScriptedBackend):
    """A Qwen3-VL-like backend (0..1000 boxes) that answers with the box of a word it is told about."""

    family = detect({"model_type": "qwen3_vl"})


def _box_of(tmp_path, word: str) -> tuple[list[float], Path]:
    """The word's box on page 2 in Qwen3's 0..1000 coordinates of that page's canvas."""
    from docvision.document import IngestOptions
    from docvision.ingest import load

    pdf = make_pdf(tmp_path / "invoice.pdf", PAGES)
    with load(str(pdf), IngestOptions()) as document:
        page = list(document.pages())[1]
        target = next(w for w in page.words if w.text == word)
        page_plan = plan(page.size, 4, 336)
    x0, y0, x1, y1 = page_plan.to_canvas(target.box)
    w, h = page_plan.canvas_size
    return [x0 / w * 1000 - 5, y0 / h * 1000 - 5, x1 / w * 1000 + 5, y1 / h * 1000 + 5], pdf


@pytest.mark.ocr
def test_a_grounded_answer_names_its_region_and_the_pictures_show_it(tmp_path):

    box, pdf = _box_of(tmp_path, "1,234.50")
    reply = f'The total due is 1,234.50 EUR.\n{{"bbox_2d": [{", ".join(f"{v:.0f}" for v in box)}]}}'
    backend = Grounding([reply])
    task = AskTask("What is the total due?", hd=4, ground=True, evidence_out=ViewFolders(tmp_path / "pics"))
    [record], _ = run_task([pdf], task, backend)
    assert record["status"] == "ok", record["error"]
    assert record["answer"] == "The total due is 1,234.50 EUR." and "bbox" not in record["answer"]
    assert "bbox_2d" in backend.calls[0][1] and "0 to 1000" in backend.calls[0][1]
    [entry] = record["evidence"]
    assert entry["label"] == "page 2" and entry["region"]["words"] == ["1,234.50"]
    assert entry["region"]["agrees"] is True and len(entry["region"]["source_box"]) == 4
    crop = Path(entry["pictures"]["regions"][0]["file"])
    assert crop.is_file() and Path(entry["pictures"]["page"]).is_file()
    assert "1,234.50" in read_back(crop)


def test_a_model_without_boxes_falls_back_to_the_matched_words(tmp_path):
    _, pdf = _box_of(tmp_path, "1,234.50")
    [record], _ = run_task([pdf], AskTask("What is the total due?", hd=4, ground=True), ScriptedBackend(["1,234.50"]))
    assert record["status"] == "ok" and any("gives no boxes" in w for w in record["warnings"])
    [entry] = record["evidence"]
    assert entry["region"] is None and "Total" in entry["words"] and entry["boxes"]
