"""docs/api.md runs: every ```python block, top to bottom in one namespace, with a tiny random-weight
Qwen3-VL standing in for the ``small`` alias (laid out in the Hugging Face cache as ``hf download`` does),
so the documentation cannot drift from the API. HD-4 and no OCR come from the environment, which the
examples leave to the defaults (an example that set them would win, as arguments do)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = [pytest.mark.model, pytest.mark.slow]
DOC = Path(ROOT) / "docs" / "api.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def as_small(home: Path, model: Path, monkeypatch) -> None:
    """The tiny model in the HF cache under the ``small`` alias's hub id."""
    import huggingface_hub.constants as constants

    from docvision.models.registry import ALIASES

    repo = home / "hub" / f"models--{ALIASES['small'][0].replace('/', '--')}"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(model, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(snapshot.name)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))  # read from HF_HOME at import


def files(folder: Path) -> None:
    """The files the examples read."""
    import pymupdf as fitz
    from PIL import Image, ImageDraw, ImageFont

    shutil.copy(Path(ROOT) / "samples" / "report.pdf", folder / "report.pdf")
    poster = Image.new("RGB", (600, 1400), "white")
    ImageDraw.Draw(poster).text((40, 60), "Talk: reading at 4KHD, May 5", font=ImageFont.load_default(size=28),
                                fill="black")
    poster.save(folder / "poster.png")
    document = fitz.open()
    page = document.new_page(width=612, height=792)
    page.insert_text((72, 100), "INVOICE 2041  Total due: 1,234.50 EUR  Due date: 2026-12-31", fontsize=12)
    document.save(folder / "invoice.pdf")
    (folder / "inbox" / "scans").mkdir(parents=True)
    shutil.copy(folder / "invoice.pdf", folder / "inbox" / "invoice.pdf")
    shutil.copy(folder / "poster.png", folder / "inbox" / "scans" / "poster.png")


def test_the_document_has_examples():
    assert len(blocks()) >= 8


def test_every_example_runs(tmp_path, isolated, tiny_model_dir, monkeypatch, capsys):
    as_small(isolated / "hf", tiny_model_dir("qwen3_vl"), monkeypatch)
    # Fewer tiles and no OCR keep a random model on a CPU quick; the examples do not set them.
    monkeypatch.setenv("DOCVISION_HD", "4")
    monkeypatch.setenv("DOCVISION_OCR", "never")
    files(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "api_md"}
    for number, code in enumerate(blocks(), start=1):
        try:
            exec(compile(code, f"docs/api.md block {number}", "exec"), namespace)  # noqa: S102 - our own docs
        except Exception as exc:  # noqa: BLE001 - say which example broke
            pytest.fail(f"docs/api.md example {number} failed: {type(exc).__name__}: {exc}\n{code}")
    out = capsys.readouterr().out
    assert "usage: " in out and "missing.pdf" in out
    assert (tmp_path / "summaries.jsonl").read_text().count("\n") == 2
