"""A captured page (``capture.Shot``) as a Document: one Page per segment, words in its device pixels.

In: a Shot and IngestOptions (the page range). Out: a Document of kind "web" whose Pages are labelled
"segment i/n", hold their PNG bytes until drawn, and carry the DOM words whose centre falls in them.
"""

from __future__ import annotations

import io
import struct

from docvision.document import Document, IngestOptions, Page, Word, parse_page_range
from docvision.sources import redact

ZOOM_LIMIT = 4.0  # canvas px per CSS px: the plan enlarges a capture to 400 % at most, as it does a sheet


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, without decoding it."""
    return struct.unpack(">II", data[16:24])


def document(shot, options: IngestOptions) -> Document:
    """The Document of a Shot: segments in order, each word in the segment holding its centre."""
    scale = shot.scale
    # A screenshot enlarged past 400 % zoom (4 canvas px per CSS px) only spends tiles: never past its
    # own pixels when it was drawn denser than that.
    max_scale = max(1.0, ZOOM_LIMIT / scale)
    segments = shot.pngs
    count = len(segments)
    per_segment: list[list[Word]] = [[] for _ in segments]
    for text, x0, y0, x1, y1 in shot.words:
        centre = (y0 + y1) / 2
        if centre < 0 or centre >= shot.height or x0 >= shot.width or x1 <= 0:
            continue
        index = min(count - 1, int(centre // shot.step))
        size = png_size(segments[index][1])
        oy = segments[index][0] * scale
        box = (max(0.0, x0 * scale), max(0.0, y0 * scale - oy),
               min(float(size[0]), x1 * scale), min(float(size[1]), y1 * scale - oy))
        per_segment[index].append(Word(text, box))
    source = redact(shot.source)
    warnings = list(shot.warnings)
    chosen = parse_page_range(options.pages, count, source, warnings)

    def iter_pages():
        for index in chosen:
            data = segments[index][1]
            yield Page(label=f"segment {index + 1}/{count}", number=index + 1, size=png_size(data),
                       render=_renderer(data), words=per_segment[index], max_scale=max_scale)

    return Document(source=source, kind="web", page_count=count, iter_pages=iter_pages,
                    warnings=warnings, metadata=dict(shot.metadata))


def _renderer(data: bytes):
    def render(width: int, height: int):
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            rgb = image.convert("RGB")
        if rgb.size != (width, height):
            rgb = rgb.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
        return rgb

    return render
