"""Scans made in code, with the truth about them: where every printed word is.

In: a seed and a few words about what to print. Out: PIL images that look scanned or photographed
(paper tint, noise, blur, a slight rotation, JPEG) together with the box of every word drawn, in that
image's pixels after rotation; and PDFs made of such page images (no text layer) for the ingestors.
Used by the OCR tests and by tests/benchmarks/bench_ocr.py.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")  # fonts-dejavu-core, installed by .ci/run
VOCABULARY = ("annual report quarter revenue margin customer supplier contract delivery shipment "
              "warehouse invoice balance payment account budget forecast review audit committee "
              "meeting agenda proposal project schedule milestone resource capacity region office "
              "service product market growth decline increase policy standard quality safety").split()
# One topic per page of the routing scan: a word nowhere else in the document, and a fact about it.
TOPICS = ("turbine", "orchard", "glacier", "harbour", "vineyard", "lighthouse", "quarry", "monastery",
          "aqueduct", "observatory", "brewery", "tramway", "sawmill", "reservoir", "foundry", "granary",
          "ferry", "kiln", "windmill", "canal")


@dataclass
class Scan:
    """An image and the words printed on it: (text, box in the image's pixels)."""

    image: Image.Image
    words: list[tuple[str, tuple[float, float, float, float]]]


def font(size: int, bold: bool = False, serif: bool = False) -> ImageFont.FreeTypeFont:
    name = f"DejaVu{'Serif' if serif else 'Sans'}{'-Bold' if bold else ''}.ttf"
    return ImageFont.truetype(str(FONT_DIR / name), size)


def _draw_line(draw: ImageDraw.ImageDraw, x: float, y: float, words: list[str], face, fill, out: list) -> None:
    space = draw.textlength(" ", font=face)
    for word in words:
        draw.text((x, y), word, font=face, fill=fill)
        out.append((word, tuple(float(v) for v in draw.textbbox((x, y), word, font=face))))
        x += draw.textlength(word, font=face) + space


def page_image(lines: list[list[str]], size: tuple[int, int] = (1700, 2200), text_px: int = 30,
               title: list[str] | None = None) -> Scan:
    """A clean white page (US Letter at 200 dpi by default) with a title and lines of words."""
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    words: list = []
    margin = size[0] // 10
    y = size[1] // 12
    if title:
        _draw_line(draw, margin, y, title, font(int(text_px * 1.6), bold=True), (0, 0, 0), words)
        y += int(text_px * 3)
    face = font(text_px, serif=True)
    for line in lines:
        _draw_line(draw, margin, y, line, face, (20, 20, 20), words)
        y += int(text_px * 1.7)
    return Scan(image, words)


def _rotated_box(box, angle: float, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """Where ``box`` lands when the image rotates ``angle`` degrees counter-clockwise about its centre."""
    cx, cy = size[0] / 2, size[1] / 2
    a = math.radians(angle)
    xs, ys = [], []
    for x, y in ((box[0], box[1]), (box[2], box[1]), (box[0], box[3]), (box[2], box[3])):
        dx, dy = x - cx, y - cy
        # Image y grows downward, so a counter-clockwise turn on screen is (x cos + y sin, -x sin + y cos).
        xs.append(cx + dx * math.cos(a) + dy * math.sin(a))
        ys.append(cy - dx * math.sin(a) + dy * math.cos(a))
    return (min(xs), min(ys), max(xs), max(ys))


def degrade(scan: Scan, seed: int, angle: float = 0.8, noise: float = 14.0, tint=(244, 240, 228),
            quality: int = 70, specks: int = 400) -> Scan:
    """Make a clean page look scanned: paper tint, a slight rotation, blur, grain, JPEG artefacts."""
    import numpy as np

    rng = np.random.default_rng(seed)
    image = scan.image.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255))
    image = image.filter(ImageFilter.GaussianBlur(0.6))
    pixels = np.asarray(image, dtype=np.float32) * (np.array(tint, dtype=np.float32) / 255.0)
    pixels += rng.normal(0.0, noise, pixels.shape[:2])[..., None]
    for _ in range(specks):  # dust on the scanner glass
        x, y = int(rng.integers(0, image.width - 3)), int(rng.integers(0, image.height - 3))
        pixels[y:y + 2, x:x + 2] = 60
    image = Image.fromarray(np.clip(pixels, 0, 255).astype("uint8"))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    words = [(text, _rotated_box(box, angle, image.size)) for text, box in scan.words]
    return Scan(Image.open(buffer).convert("RGB"), words)


def report_page(seed: int, topic: str | None = None, fact: list[str] | None = None, lines: int = 22) -> Scan:
    """A scanned report page: a title, lines of vocabulary words, and the page's fact among them."""
    rng = random.Random(seed)
    body = [[rng.choice(VOCABULARY) for _ in range(rng.randint(6, 9))] for _ in range(lines)]
    if fact:
        body.insert(lines // 2, fact)
    title = ["Section", str(seed % 1000 + 1)]
    angle = rng.uniform(-1.2, 1.2)
    return degrade(page_image(body, title=title), seed, angle=angle)


def routing_fact(index: int) -> tuple[str, list[str], str]:
    """Page ``index``'s topic, the line stating its fact, and a question only that line answers."""
    topic = TOPICS[index]
    figure = f"{(index + 3) * 1117 % 9000 + 1000}"
    line = ["The", topic, "inspection", "logged", figure, "hours", "last", "year."]
    return topic, line, f"How many hours did the {topic} inspection log?"


def scanned_pdf(path: Path, pages: int = 20, seed: int = 1) -> list[Scan]:
    """A PDF of ``pages`` scanned report pages (JPEG images, no text layer); page i holds fact i."""
    import pymupdf

    doc = pymupdf.open()
    scans = []
    for index in range(pages):
        topic, line, _question = routing_fact(index)
        scan = report_page(seed * 1000 + index, topic, line)
        buffer = io.BytesIO()
        scan.image.save(buffer, format="JPEG", quality=75)
        page = doc.new_page(width=612, height=792)
        page.insert_image(page.rect, stream=buffer.getvalue())
        scans.append(scan)
    doc.save(str(path), deflate=True)
    doc.close()
    return scans


def poster(seed: int = 5, size: tuple[int, int] = (1400, 1900)) -> Scan:
    """A photographed poster: a coloured gradient, coloured panels, text of several sizes, a tilt."""
    import numpy as np

    rng = random.Random(seed)
    ys = np.linspace(0.0, 1.0, size[1], dtype=np.float32)[:, None, None]
    top, bottom = np.array([236, 214, 170], np.float32), np.array([196, 222, 236], np.float32)
    background = np.broadcast_to(top + (bottom - top) * ys, (size[1], size[0], 3))
    image = Image.fromarray(background.astype("uint8"))
    draw = ImageDraw.Draw(image)
    words: list = []
    draw.rectangle((60, 60, size[0] - 60, 330), fill=(250, 246, 236))
    _draw_line(draw, 100, 110, ["Spring", "Science", "Fair"], font(110, bold=True), (150, 30, 30), words)
    facts = [["Saturday", "April", "26", "10am"], ["Central", "Library", "Hall", "B"],
             ["Robots", "rockets", "and", "volcanoes"], ["Free", "entry", "for", "students"]]
    y = 430
    for line in facts:
        draw.rectangle((80, y - 20, size[0] - 80, y + 110), fill=(255, 255, 255))
        _draw_line(draw, 120, y, line, font(rng.choice((64, 72, 80)), bold=rng.random() < 0.5),
                   (20, 40, 90), words)
        y += 190
    _draw_line(draw, 120, y + 80, ["Register", "at", "the", "front", "desk"], font(48), (40, 40, 40), words)
    return degrade(Scan(image, words), seed, angle=-1.5, noise=10.0, tint=(250, 248, 240), quality=80,
                   specks=0)


def iou(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def clean(text: str) -> str:
    """A word without the punctuation around it ("year." -> "year"), for comparing readings."""
    return text.strip(".,;:!?()[]\"'")


def matched(truth: list, found: list, min_iou: float = 0.5) -> list[tuple[str, float]]:
    """Each printed word read back with the same text and a box overlapping by at least ``min_iou``:
    (text, IoU) per match, every found word used once."""
    used: set[int] = set()
    hits = []
    for text, box in truth:
        best, best_iou = None, min_iou
        for index, (other, other_box) in enumerate(found):
            if index not in used and clean(other) == clean(text):
                overlap = iou(box, other_box)
                if overlap >= best_iou:
                    best, best_iou = index, overlap
        if best is not None:
            used.add(best)
            hits.append((text, best_iou))
    return hits
