"""A Backend that answers from a script, for tests of the task logic (extract's repair path, map-reduce).

Real models are tested through tests/tinymodels.py; this one exists where the test needs to choose what
the model says. It records every call (labels of the pages shown, prompt).
"""

from __future__ import annotations

import os
import time

from docvision.models.base import Backend, Generation


class ScriptedBackend(Backend):
    """Replies with ``replies`` in turn (then "reply N"); sleeps ``delay`` seconds per call."""

    name = "scripted"
    tile = 336

    def __init__(self, replies=None, delay: float = 0.0, model: str | None = None, device: str = "auto",
                 quant: str = "auto", dtype: str = "auto"):
        self.model_id = model or "scripted"
        self.replies = list(replies or [])
        self.delay = float(os.environ.get("SCRIPTED_DELAY", delay))
        self.calls: list[tuple[list[str], str]] = []

    def generate(self, views, prompt, *, max_new_tokens=512, on_text=None, system=None) -> Generation:
        self.calls.append(([v.label for v in views], prompt))
        self.systems = getattr(self, "systems", []) + [system]
        if os.environ.get("SCRIPTED_STARTED"):  # lets a test know a call is under way (to interrupt it)
            with open(os.environ["SCRIPTED_STARTED"], "a") as fh:
                fh.write("call\n")
        if self.delay:
            time.sleep(self.delay)
        if self.replies:
            text = self.replies.pop(0)
        elif "Reply with only a JSON object" in prompt:  # extract: an object of nulls is always valid
            text = "{}"
        else:
            text = f"reply {len(self.calls)}"
        if on_text is not None:
            on_text(text)
        return Generation(text, prompt_tokens=len(prompt), visual_tokens=0, new_tokens=len(text),
                          timings={"generate_s": self.delay})


def make_pdf(path, texts: list[str]):
    """A PDF with one page per text (US Letter, Helvetica 12), built with PyMuPDF."""
    import pymupdf

    doc = pymupdf.open()
    for text in texts:
        page = doc.new_page(width=612, height=792)
        page.insert_textbox(pymupdf.Rect(72, 72, 540, 720), text, fontsize=12)
    doc.save(str(path))
    doc.close()
    return path


def make_png(path, size=(800, 600), colour=(30, 120, 200)):
    """A plain picture (no text layer)."""
    from PIL import Image

    Image.new("RGB", size, colour).save(path)
    return path


FILLER = ("Quarterly operations report. Shipping volumes, staffing levels and maintenance schedules "
          "were reviewed by the committee. No further actions were recorded for this section. ")


def batch_folder(folder, count: int, broken: str | None = None):
    """``count`` small sources (PDFs and pictures alternating), plus a broken PDF named ``broken``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        if i % 3 == 2:
            paths.append(make_png(folder / f"s{i:02d}.png", colour=(10 * i % 255, 90, 160)))
        else:
            paths.append(make_pdf(folder / f"s{i:02d}.pdf", [f"Source {i}. " + FILLER, f"Part two of {i}."]))
    if broken:
        (folder / broken).write_bytes(b"%PDF-1.7\n% truncated and useless\n")
        paths.append(folder / broken)
    return sorted(paths)
