"""Where a page's capture ends: the box of its content, and a device scale Chromium and Pillow can take.

In: the page's measures (``scripts.EXTENT_JS``: what it draws, in CSS px) and the capture options. Out: the
CSS box to capture and the device scale factor to draw it at, with a warning when --scale had to give.
A page is captured at the extent of its content, not the browser window: three lines of text sat in a
corner of 1280x720 and cost 24 tiles (docs/web.md, One page, step by step).
"""

from __future__ import annotations

import math

# Device pixels: Chromium draws at most 16384 across, and Pillow refuses to open (as a decompression bomb)
# a PNG past ~179 M pixels, warning past 89 M: a segment stays under 64 M (8192 x 8192).
MAX_DEVICE_WIDTH = 16_384
MAX_SEGMENT_PIXELS = 8192 * 8192
MARGIN = 8  # CSS px kept around a page's content (a browser's default body margin)


def device_scale(width: int, scale: float) -> tuple[float, list[str]]:
    """The device scale factor a page of ``width`` CSS px is drawn at: --scale, or less where that would
    be wider than Chromium draws (with a warning saying so)."""
    if width * scale <= MAX_DEVICE_WIDTH:
        return scale, []
    bounded = MAX_DEVICE_WIDTH / width
    return bounded, [f"--scale {scale:g} at a viewport {width} px wide would draw {round(width * scale)} px "
                     f"across, more than the browser draws ({MAX_DEVICE_WIDTH}): drew it at scale {bounded:.3g}"]


def content_box(extent: dict, width: int, height: int) -> tuple[int, int]:
    """(width, height) in CSS px of what to capture from the page's top left: to the right and bottom of
    its content with a margin, inside the page, at least one line high; the whole page when its content
    could not be measured in time. The left and top are kept: word boxes stay in page coordinates, and
    list markers and right-to-left text, left of their boxes, stay in."""
    if not extent.get("complete"):
        return width, height
    line = max(1, math.ceil(extent["line"]))
    if not extent.get("found"):  # a page that draws nothing: one line of it
        return min(width, line), min(height, line)
    right = max(1, min(width, math.ceil(extent["right"]) + MARGIN))
    bottom = max(1, min(height, max(math.ceil(extent["bottom"]) + MARGIN, line)))
    return right, bottom
