"""The document model every ingestor produces and everything downstream consumes.

A Document is an ordered, lazily produced sequence of Pages. A Page knows its label, its natural
size in source pixels, how to draw itself at any exact pixel size (so PDFs render straight at the
resolution the plan needs, with no render-then-shrink), and, where the source has a text layer, its
words with boxes in source pixels. ``Plan.to_canvas`` maps those boxes into canvas pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

if TYPE_CHECKING:
    from PIL import Image

Box = tuple[float, float, float, float]  # x0, y0, x1, y1


@dataclass(frozen=True)
class Word:
    """One word of a page's text layer, its box in the page's source pixels.

    ``ref`` names where the word lives in the source when that is finer than the page: the cell of a
    sheet ("Sales!B3"). ``origin`` says how it was found: "text" (a text layer, the DOM, cells) or
    "ocr" (read from the pixels).
    """

    text: str
    box: Box
    ref: str | None = None
    origin: str = "text"


@dataclass
class Page:
    """One page (or sheet, or segment) of a source.

    ``render(width, height)`` returns an RGB image of exactly that size showing the whole page;
    it is called once per size needed and must not keep the image alive afterwards.
    """

    label: str
    number: int  # 1-based position in the source
    size: tuple[int, int]  # natural (width, height) in source pixels
    render: Callable[[int, int], "Image.Image"]
    words: Sequence[Word] = ()
    scanned: bool = False
    warnings: list[str] = field(default_factory=list)
    # Facts the source states about this page beyond its words: a chart's title, series and categories
    # on a sheet. Routing reads them like words; prompts may quote them.
    facts: list[str] = field(default_factory=list)
    # The most the plan may enlarge this page (canvas px per source px); None: as the budget allows. A
    # web capture or a sheet shown past 400% zoom gains nothing but tiles (docs/architecture.md).
    max_scale: float | None = None

    @property
    def text(self) -> str:
        """The page's words (then its facts) as one string, in reading order of the source."""
        return " ".join([*(w.text for w in self.words), *self.facts])


@dataclass
class Document:
    """A source turned into pages. Iterate ``pages()`` once; call ``close()`` when done."""

    source: str
    kind: str  # ingestor name: "pdf", "image", "web", "office"
    page_count: int
    iter_pages: Callable[[], Iterator[Page]]
    warnings: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    closer: Callable[[], None] | None = None
    # Numbers of pages that are damaged (read in part or not at all), filled in as pages are read; a
    # source with damaged pages fails unless the run accepts partial documents (--allow-partial).
    damaged: list[int] = field(default_factory=list)

    def pages(self) -> Iterator[Page]:
        """Yield pages one at a time, so a long document never sits in memory whole."""
        return self.iter_pages()

    def close(self) -> None:
        if self.closer is not None:
            closer, self.closer = self.closer, None
            closer()

    def also_close(self, step: Callable[[], None]) -> None:
        """Run ``step`` after the document's own closer (it runs even if that one fails)."""
        inner = self.closer

        def both() -> None:
            try:
                if inner is not None:
                    inner()
            finally:
                step()

        self.closer = both

    def __enter__(self) -> "Document":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class IngestOptions:
    """Options every ingestor accepts; each reads the ones that apply to it."""

    pages: str | None = None  # page range spec, "1-3,7"
    password: str | None = None
    max_image_pixels: int = 250_000_000  # decompression-bomb limit for images
    timeout: float = 60.0  # seconds for any external step (browser, converter)
    viewport_width: int = 1280  # web pages, CSS pixels
    device_scale_factor: float = 2.0  # web pages
    segment_height: int = 8192  # tall web pages and sheets split into segments of this many pixels
    browser: str | None = None  # explicit Chromium executable
    render_dpi: float = 300.0  # nominal resolution defining a PDF page's source pixels
    offline: bool = False  # no network for any source (a URL then fails); see docs/security.md
    ocr: str = "auto"  # "auto" | "always" | "never": which pages get words read from their pixels (docs/ocr.md)
    lang: str = "eng"  # tesseract language codes for OCR, joined by + ("eng+deu")
    local_pages_online: bool = False  # a local .html file may reach the network (never with offline); docs/web.md
    local_root: str | None = None  # the site local .html pages inside it take styles, fonts, images from; docs/web.md


def check_pages(spec: str | None) -> None:
    """Refuse a malformed page range once, before any source runs (not once per file of a batch).

    Whether the pages exist depends on each document, so that check stays with ``parse_page_range``.
    """
    import re

    from docvision.errors import UsageError

    parts = [part for part in (spec or "").replace(" ", "").split(",") if part]
    if spec is not None and not parts:
        raise UsageError(f"--pages {spec!r} names no page; use numbers like 1-3,7")
    for part in parts:
        match = re.fullmatch(r"(\d*)-(\d*)|(\d+)", part)
        if part == "-":
            continue
        if match is None:
            raise UsageError(f"--pages {spec}: {part!r} is not a page or a range; use numbers like 1-3,7")
        numbers = [int(n) for n in match.groups() if n]
        if any(n < 1 for n in numbers):
            raise UsageError(f"--pages {spec}: pages count from 1; use numbers like 1-3,7")
        if match.group(1) and match.group(2) and numbers[0] > numbers[1]:
            raise UsageError(f"--pages {spec}: the range {part} runs backwards; write {numbers[1]}-{numbers[0]}")


def parse_page_range(spec: str | None, page_count: int, source: str = "",
                     warnings: list[str] | None = None) -> list[int]:
    """Turn "1-3,7,10-" into sorted 0-based page indices, for every kind of source alike (docs/records.md):
    pages past the end are left out, with a note in ``warnings``; a range that leaves no page of this
    source raises PageRangeError."""
    from docvision.errors import PageRangeError

    if not spec:
        return list(range(page_count))
    chosen: set[int] = set()
    past = False
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part:
                lo_s, hi_s = part.split("-", 1)
                lo = int(lo_s) if lo_s else 1
                hi = int(hi_s) if hi_s else page_count
            else:
                lo = hi = int(part)
        except ValueError:
            raise PageRangeError(
                f"bad page range {spec!r}: use numbers like 1-3,7", source=source
            ) from None
        if lo < 1 or hi < lo:
            raise PageRangeError(f"bad page range {part!r} in {spec!r}", source=source)
        past |= hi > page_count
        chosen.update(range(lo - 1, min(hi, page_count)))
    has = f"{page_count} page{'s' if page_count != 1 else ''}"
    if not chosen:
        raise PageRangeError(f"pages {spec} are outside the document, which has {has}", source=source)
    if past and warnings is not None:
        warnings.append(f"pages {spec} reach past the end (the document has {has}): read "
                        f"{_ranges(sorted(chosen))}")
    return sorted(chosen)


def _ranges(indices: list[int]) -> str:
    """0-based sorted indices as page ranges people write: [0, 1, 2, 6] -> "1-3,7"."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(f"{a + 1}" if a == b else f"{a + 1}-{b + 1}" for a, b in runs)
