"""OCR: a text layer read from the pixels, for pages that have none (scans, photos, posters).

In: a PIL image (``read``), or a Document (``with_ocr``). Out: Words with ``origin="ocr"`` and boxes in
that image's pixels, or pages whose words include them, in each page's source pixels like every other
anchor. The engine is Debian's tesseract (tesseract-ocr and its tesseract-ocr-LANG packs), run as a
process per page: a timeout can kill it, its OpenMP threads can be capped, and nothing is loaded into
ours. docs/ocr.md compares it with RapidOCR and says why.

OCR is lazy: ``with_ocr`` gives a page words that are read the first time anyone looks at them, and only
for pages that need them (no text layer under "auto", every page under "always"). OCR never stops a page:
whatever goes wrong becomes a warning on it and the page keeps the words it had.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import subprocess
import time
from typing import TYPE_CHECKING, Callable, Iterator, Protocol, Sequence

from docvision.document import Document, Page, Word

if TYPE_CHECKING:
    from PIL import Image

MODES = ("auto", "always", "never")
DEFAULT_LANG = "eng"
# Tesseract's per-word confidence (0-100). On our scans (tests/benchmarks/bench_ocr.py) real words sit
# above 80 and the noise it reads as words (specks, rules, edges of photos) mostly below 40.
MIN_CONFIDENCE = 40.0
TIMEOUT = 120.0  # seconds for one page
# Source pixels are OCR'd as they are (a PDF page's are at 300 dpi, tesseract's own sweet spot) within
# these bounds: a small picture is enlarged (tesseract misses letters under ~20 px), a huge poster
# shrunk (time grows with pixels; 12 MP is a US Letter page at 300 dpi with room to spare).
MAX_PIXELS = 12_000_000
MIN_LONG_SIDE = 1600
MAX_UPSCALE = 2.0
# Under "always", an OCR word is dropped when this much of it is already covered by a text-layer word.
DUPLICATE_COVER = 0.5
_LANG = re.compile(r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$")


@dataclasses.dataclass(frozen=True)
class Reading:
    """What one OCR call found: words in the image's pixels, a warning when it failed, its cost."""

    words: tuple[Word, ...] = ()
    warning: str | None = None
    ms: float = 0.0


# -- the engine ------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def languages() -> frozenset[str]:
    """The tesseract language packs installed here (empty when tesseract itself is missing)."""
    if shutil.which("tesseract") is None:
        return frozenset()
    try:
        done = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(line.strip() for line in done.stdout.splitlines()[1:] if line.strip())


def lang_problem(lang: str) -> str | None:
    """Why ``lang`` (tesseract codes joined by +, "eng+deu") cannot be read here, or None when it can."""
    if not _LANG.match(lang or ""):
        return f"bad OCR language {lang!r}: use tesseract codes such as eng, deu or eng+fra"
    if shutil.which("tesseract") is None:
        return "OCR needs tesseract, which is not installed: apt-get install tesseract-ocr"
    missing = [code for code in lang.split("+") if code not in languages()]
    if missing:
        packs = " ".join(f"tesseract-ocr-{code.lower().replace('_', '-')}" for code in missing)
        return f"no tesseract language pack for {', '.join(missing)}: apt-get install {packs}"
    return None


def ocr_size(size: tuple[int, int]) -> tuple[int, int]:
    """The pixel size a page of source ``size`` is read at (see MAX_PIXELS and MIN_LONG_SIDE)."""
    width, height = size
    factor = min(MAX_UPSCALE, max(1.0, MIN_LONG_SIDE / max(width, height)))
    if width * height * factor * factor > MAX_PIXELS:
        factor = (MAX_PIXELS / (width * height)) ** 0.5
    return max(1, round(width * factor)), max(1, round(height * factor))


def _pnm(image: "Image.Image") -> bytes:
    """The image as a binary greyscale PGM: tesseract reads it from stdin with no decoding cost (a PNG
    of a 300 dpi page took ~0.3 s to encode), and it binarises grey anyway."""
    grey = image.convert("L")
    return f"P5 {grey.width} {grey.height} 255\n".encode() + grey.tobytes()


def _parse_tsv(tsv: str, min_confidence: float) -> tuple[Word, ...]:
    """Words (level 5 rows) of tesseract's TSV output, in its reading order, above the floor."""
    words = []
    for line in tsv.splitlines()[1:]:
        cells = line.split("\t")
        if len(cells) < 12 or cells[0] != "5":
            continue
        text = cells[11].strip()
        try:
            left, top, width, height, conf = (float(c) for c in cells[6:11])
        except ValueError:
            continue
        if text and conf >= min_confidence:
            words.append(Word(text, (left, top, left + width, top + height), origin="ocr"))
    return tuple(words)


def read(image: "Image.Image", lang: str = DEFAULT_LANG, min_confidence: float = MIN_CONFIDENCE,
         timeout: float = TIMEOUT, psm: int = 3) -> Reading:
    """The words tesseract reads in ``image``, boxes in its pixels; never raises for a failed read."""
    started = time.perf_counter()
    problem = lang_problem(lang)
    if problem:
        return Reading(warning=f"OCR skipped: {problem}")
    # OMP_THREAD_LIMIT=1: tesseract's OpenMP threads fight over shared cores and over a model running
    # beside it; one thread per page measured no slower here. Set for the child only (torch reads it too).
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    command = ["tesseract", "stdin", "stdout", "-l", lang, "--psm", str(psm), "tsv"]
    try:
        done = subprocess.run(command, input=_pnm(image), capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return Reading(warning=f"OCR gave up after {timeout:g} s on this page", ms=_ms(started))
    except OSError as exc:
        return Reading(warning=f"OCR failed: cannot run tesseract ({exc.strerror or exc})", ms=_ms(started))
    if done.returncode != 0:
        detail = " ".join(done.stderr.decode(errors="replace").split())[:200] or f"exit {done.returncode}"
        return Reading(warning=f"OCR failed: tesseract said {detail}", ms=_ms(started))
    return Reading(_parse_tsv(done.stdout.decode("utf-8", errors="replace"), min_confidence), ms=_ms(started))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


# -- pages -----------------------------------------------------------------------------------------

def read_page(render: Callable[[int, int], "Image.Image"], size: tuple[int, int], lang: str = DEFAULT_LANG,
              min_confidence: float = MIN_CONFIDENCE, timeout: float = TIMEOUT) -> Reading:
    """OCR a page drawn by ``render`` at ``ocr_size(size)``; words come back in source pixels."""
    width, height = ocr_size(size)
    reading = read(render(width, height), lang, min_confidence, timeout)
    sx, sy = size[0] / width, size[1] / height
    words = tuple(dataclasses.replace(w, box=(w.box[0] * sx, w.box[1] * sy, w.box[2] * sx, w.box[3] * sy))
                  for w in reading.words)
    return dataclasses.replace(reading, words=words)


class OcrStore(Protocol):
    """Where OCR words of a document's pages are kept between runs (the render cache is one)."""

    def load(self, number: int, lang: str) -> Sequence[Word] | None: ...

    def save(self, number: int, lang: str, words: Sequence[Word]) -> None: ...


def needs_ocr(page: Page, mode: str) -> bool:
    """Whether ``mode`` reads this page: "always" every page, "auto" one with no word of letters or digits.

    A scan with a stamped page number has a text layer of one word and is not read under "auto" (reading
    every sparse page would OCR title slides too, at a second or two each): "always" reads it.
    """
    if mode == "always":
        return True
    return mode == "auto" and not any(ch.isalnum() for w in page.words for ch in w.text)


def merged(layer: Sequence[Word], found: Sequence[Word]) -> tuple[Word, ...]:
    """The text layer's words, then the OCR words it does not already cover (text in pictures)."""
    if not layer:
        return tuple(found)
    return (*layer, *(w for w in found if not any(_covered(w.box, t.box) for t in layer)))


def _covered(box, by) -> bool:
    ix = min(box[2], by[2]) - max(box[0], by[0])
    iy = min(box[3], by[3]) - max(box[1], by[1])
    area = (box[2] - box[0]) * (box[3] - box[1])
    return ix > 0 and iy > 0 and area > 0 and ix * iy >= DUPLICATE_COVER * area


class OcrWords(Sequence[Word]):
    """A page's words where OCR adds to them: read from the pixels the first time they are looked at.

    ``layer`` keeps the page's own text layer (what a cache stores as the page's words). Once read, the
    renderer is dropped, so a list of surveyed pages does not keep every page's pixels reachable.
    """

    def __init__(self, page: Page, lang: str, store: OcrStore | None = None,
                 min_confidence: float = MIN_CONFIDENCE, timeout: float = TIMEOUT):
        self.layer = tuple(page.words)
        self.number, self.size, self.lang = page.number, page.size, lang
        self._render: Callable | None = page.render
        self._warnings = page.warnings  # the same list every copy of the page shares
        self._store, self._floor, self._timeout = store, min_confidence, timeout
        self._words: tuple[Word, ...] | None = None

    @property
    def read(self) -> bool:
        """Whether OCR has run (or its words came from the store)."""
        return self._words is not None

    def _resolve(self) -> tuple[Word, ...]:
        if self._words is None:
            self._words = merged(self.layer, self._found())
            self._render = None
        return self._words

    def _found(self) -> Sequence[Word]:
        keep = self._store is not None and _LANG.match(self.lang)  # the language names the stored file
        stored = self._store.load(self.number, self.lang) if keep else None
        if stored is not None:
            return stored
        try:  # OCR never stops a page: a renderer or engine failure is a warning
            reading = read_page(self._render, self.size, self.lang, self._floor, self._timeout)
        except Exception as exc:  # noqa: BLE001 - any failure here must leave the page usable
            reading = Reading(warning=f"OCR failed: {type(exc).__name__}: {exc}")
        if reading.warning:
            if reading.warning not in self._warnings:
                self._warnings.append(reading.warning)
            return ()
        if keep:
            self._store.save(self.number, self.lang, reading.words)
        return reading.words

    def __len__(self) -> int:
        return len(self._resolve())

    def __getitem__(self, index):
        return self._resolve()[index]

    def __iter__(self) -> Iterator[Word]:
        return iter(self._resolve())

    def __repr__(self) -> str:
        state = f"{len(self._words)} words" if self._words is not None else "not read yet"
        return f"OcrWords(page {self.number}, {self.lang}, {state})"


def text_layer(page: Page) -> Sequence[Word]:
    """The page's own words, without OCR's (and without running it)."""
    return page.words.layer if isinstance(page.words, OcrWords) else page.words


def attach(page: Page, mode: str = "auto", lang: str = DEFAULT_LANG, store: OcrStore | None = None) -> Page:
    """The page with OCR words attached (read lazily) where ``mode`` says it needs them."""
    if isinstance(page.words, OcrWords) or not needs_ocr(page, mode):
        return page
    return dataclasses.replace(page, words=OcrWords(page, lang, store))


def with_ocr(document: Document, mode: str = "auto", lang: str = DEFAULT_LANG,
             store: OcrStore | None = None) -> Document:
    """The document with OCR words on the pages that need them, each read when first looked at.

    ``mode``: "auto" (pages with no usable text layer), "always" (every page; OCR words the text layer
    already has are dropped), "never" (the document unchanged).
    """
    if mode not in MODES:
        raise ValueError(f"OCR mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "never":
        return document
    inner = document.iter_pages
    document.iter_pages = lambda: (attach(page, mode, lang, store) for page in inner())
    return document
