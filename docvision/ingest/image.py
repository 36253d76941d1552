"""Image ingestor (Pillow): a PNG, JPEG, WebP, TIFF, GIF or BMP file in, a lazy Document out.

Every TIFF frame is a page ("frame N"); GIF and animated WebP give their first frame. A page's
size is the image's size after EXIF orientation. Nothing is decoded until ``Page.render(w, h)``
asks for pixels; it then decodes as little as the format allows (JPEG ``draft`` decodes at 1/2,
1/4 or 1/8 scale), shrinks by whole factors with ``reduce`` before the final resize so posters of
any size stay within bounded memory, and returns RGB with transparency composited onto white.

Traps (docs/architecture.md, Bad input): Pillow turns transparent pixels black on ``convert("RGB")``, clips
16-bit greys to white when converting to 8 bits, and refuses images over ~179 MP with its own
error; the size limit here comes from ``--max-image-pixels`` and is checked from the header.
"""

from __future__ import annotations

import re
import struct
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from docvision.document import Document, IngestOptions, Page, parse_page_range
from docvision.errors import DamagedSource, ImageTooLarge
from docvision.ingest.checks import check_content, check_file
import docvision.ingest.tiff as tiff

if TYPE_CHECKING:
    from PIL import Image

WHITE = (255, 255, 255)
# EXIF orientation -> the transpose that shows the image upright (the table of ImageOps.exif_transpose,
# applied here after shrinking, so the full-size image is never transposed).
_UPRIGHT = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
            6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}
_SWAPS_AXES = {5, 6, 7, 8}
_ALPHA_MODES = {"LA", "La", "PA", "RGBA", "RGBa"}
# What Pillow raises on a damaged or hostile file, besides OSError: its plugins parse headers with
# struct and indexing, so a broken TIFF gives TypeError ("Missing dimensions"), others KeyError ...
_BROKEN = (OSError, SyntaxError, ValueError, EOFError, TypeError, KeyError, IndexError, ZeroDivisionError,
           struct.error)
# What Pillow says when the file ends before the picture does (JPEG, GIF, TIFF strips).
_CUT_SHORT = re.compile(r"truncated|broken data stream|premature end", re.IGNORECASE)
# Pillow's complaints by what they mention, in a reader's words.
_DAMAGE = (
    (("truncated", "premature end", "eof"), "the file is cut short"),
    (("crc", "checksum"), "a checksum does not match: bytes of the file were changed"),
    (("dimension", "size", "tile", "strip"), "its header gives no usable picture size or layout"),
    (("decoder", "data stream", "decompress", "huffman", "marker"), "its compressed picture data is damaged"),
    (("mode", "bits per sample", "bitspersample", "sample"), "its pixel format is not one a picture can have"),
)
TRUNCATED = "damaged: the file is cut short; the part it holds is shown (viewers draw the rest grey)"
_LENIENT = threading.Lock()


def _open(path: Path, source: str) -> "Image.Image":
    """Open an image lazily (header only); unreadable content becomes one-line errors."""
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"{exc}; raise the limit with --max-image-pixels", source=source) from None
    except UnidentifiedImageError:
        raise DamagedSource("not a readable image: the file is damaged or not the format its "
                            "name says", source=source) from None
    except _BROKEN as exc:
        raise DamagedSource(_damaged(exc), source=source) from None


def _damaged(exc: BaseException) -> str:
    """One line for a broken image: what is wrong in a reader's words (never Pillow's own text), and what
    to do."""
    reason = str(exc).lower()
    meaning = next((words for keys, words in _DAMAGE if any(key in reason for key in keys)),
                   "its data is damaged or not what its header describes")
    return f"the image is truncated or corrupt: {meaning}; export or download it again"


@contextmanager
def _collect(notes: list[str]):
    """Turn Pillow's warnings (damaged EXIF or TIFF tags, which it skips) into document warnings.

    Left alone, Python prints them on stderr as two lines naming Pillow's source file.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        note = f"damaged image metadata was skipped ({' '.join(str(warning.message).split())})"
        if note not in notes:
            notes.append(note)


def _check_size(size: tuple[int, int], limit: int, source: str) -> None:
    width, height = size
    if width * height > limit:
        raise ImageTooLarge(
            f"the image is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{limit:,}; raise it with --max-image-pixels if you trust the file", source=source)


def _orientation(image: "Image.Image") -> int:
    try:
        value = int(image.getexif().get(0x0112, 1))
    except _BROKEN:
        return 1
    return value if value in _UPRIGHT else 1


def _verify(path: Path, source: str) -> None:
    """Catch a truncated or corrupt PNG before any decoding (verify checks every chunk's CRC)."""
    from PIL import Image

    try:
        with Image.open(path) as probe:
            if probe.format == "PNG":
                probe.verify()
    except _BROKEN as exc:
        raise DamagedSource(_damaged(exc), source=source) from None


def load(source: str, options: IngestOptions, tools=None) -> Document:
    """Open an image file as a Document: one page per TIFF frame, else one page."""
    from PIL import Image

    path = check_file(source)
    check_content(path, "image", source)
    # Our limit is checked from the header, so the message names the flag; Pillow's own guard
    # (a warning over MAX_IMAGE_PIXELS, an error over twice it) then matches it for decoding.
    Image.MAX_IMAGE_PIXELS = None
    notes: list[str] = []
    try:
        try:
            with _collect(notes):
                image = _open(path, source)
        except DamagedSource:
            if not tiff.is_tiff(path):
                raise
            return _tifffile_document(path, source, options, notes)  # a TIFF in a pixel mode Pillow lacks
        try:
            _check_size(image.size, options.max_image_pixels, source)
            fmt = image.format or "image"
            with _collect(notes):  # counting TIFF frames reads every frame's header, where damage shows
                frames = getattr(image, "n_frames", 1) if fmt == "TIFF" else 1  # GIF, WebP: first frame
        except _BROKEN as exc:
            image.close()
            raise DamagedSource(_damaged(exc), source=source) from None
        except BaseException:
            image.close()
            raise
    finally:
        Image.MAX_IMAGE_PIXELS = options.max_image_pixels
    # A multi-frame TIFF stays open, its frames' places known (see _Frames); anything else is opened
    # again for each use (one page only, and a JPEG must be opened afresh for each draft size).
    opened = _Frames(image, source) if frames > 1 else None
    if opened is None:
        image.close()
    with _collect(notes):
        _verify(path, source)
    frames_of = opened if opened is not None else _Reopen(path, source)
    return _document(frames_of, frames, options, notes, {"format": fmt, "frames": frames},
                     closer=opened.close if opened is not None else None)


def _tifffile_document(path: Path, source: str, options: IngestOptions, notes: list[str]) -> Document:
    """A TIFF Pillow cannot open, every frame read by tifffile."""
    frames = tiff.frame_count(path, source)
    if frames == 0:
        raise DamagedSource("not a readable TIFF: it holds no image", source=source)
    return _document(tiff.Frames(path, source), frames, options, notes,
                     {"format": "TIFF", "frames": frames, "reader": "tifffile"})


def _document(frames_of, frames: int, options: IngestOptions, notes: list[str], metadata: dict,
              closer=None) -> Document:
    """The Document over a picture's frames; pages that decode only in part are named in ``damaged``."""
    source = frames_of.source
    # --pages picks the frames of a multi-frame TIFF as it picks PDF pages; a single picture is page 1,
    # so `--pages 5` is out of its range as it is of a 2-page PDF's.
    chosen = parse_page_range(options.pages, frames, source, notes)
    labels = {i: f"frame {i + 1}" if frames > 1 else "image" for i in chosen}
    damaged: list[int] = []
    return Document(source=source, kind="image", page_count=frames,
                    iter_pages=lambda: _pages(frames_of, labels, options.max_image_pixels, notes, damaged),
                    warnings=notes, metadata=metadata, closer=closer, damaged=damaged)


class _Frames:
    """A multi-frame TIFF kept open for the document's life, used by one caller at a time.

    Pillow finds frame N by walking the chain of frame headers from the first and remembers where each
    frame starts only inside the open image: opening the file for each frame made N frames cost N^2/2
    header reads (2,000 frames 103 s, 6,000 past 180 s, ``--pages 5990-`` alone 7 s). Here the chain
    is walked once (counting the frames) and every seek after that is one header read. The last frame
    decoded stays in the open image until the next one or ``close()``.
    """

    shared = True  # the next frame is decoded into the same image

    def __init__(self, image: "Image.Image", source: str) -> None:
        self.image, self.source, self.path = image, source, Path(image.filename)
        self.lock = threading.Lock()

    @contextmanager
    def at(self, index: int) -> Iterator["Image.Image"]:
        with self.lock:
            try:
                self.image.seek(index)
            except _BROKEN as exc:
                raise DamagedSource(f"cannot read frame {index + 1}: {_damaged(exc)}", source=self.source) from None
            yield self.image

    def close(self) -> None:
        with self.lock:
            self.image.close()


class _Reopen:
    """A file opened afresh for each use, at the frame asked for."""

    shared = False  # each use gets an image of its own

    def __init__(self, path: Path, source: str) -> None:
        self.path, self.source = path, source

    @contextmanager
    def at(self, index: int) -> Iterator["Image.Image"]:
        with _open(self.path, self.source) as image:
            try:
                image.seek(index)
            except _BROKEN as exc:
                raise DamagedSource(f"cannot read frame {index + 1}: {_damaged(exc)}", source=self.source) from None
            yield image


def _pages(frames, labels: dict[int, str], limit: int, notes: list[str], damaged: list[int]) -> Iterator[Page]:
    """One Page per chosen frame (index -> label), reading only each frame's header; a frame drawn only
    in part (a truncated file) is named in ``damaged`` once drawn."""
    damaged.clear()  # a second pass over the pages finds them again
    for index, label in labels.items():
        with _collect(notes):
            width, height = _size(frames, index, limit)
        page = Page(label=label, number=index + 1, size=(width, height), render=lambda w, h: None)
        page.render = lambda w, h, i=index, p=page: _render(frames, i, w, h, notes, p)
        yield page  # the consumer draws it before asking for the next one
        if any(w.startswith("damaged") for w in page.warnings):
            damaged.append(index + 1)


def _size(frames, index: int, limit: int) -> tuple[int, int]:
    """A frame's (width, height) as shown (after EXIF orientation), checked against the pixel limit."""
    if isinstance(frames, tiff.Frames):
        size = tiff.frame_size(frames.path, frames.source, index)
        _check_size(size, limit, frames.source)
        return size
    with frames.at(index) as image:
        _check_size(image.size, limit, frames.source)
        width, height = image.size
        return (height, width) if _orientation(image) in _SWAPS_AXES else (width, height)


def _render(frames, frame: int, width: int, height: int, notes: list[str], page: Page) -> "Image.Image":
    """Decode one frame and return it upright, RGB, on white, at exactly width x height."""
    from PIL import Image

    picture, orientation = _decoded(frames, frame, width, height, notes, page)
    target = (height, width) if orientation in _SWAPS_AXES else (width, height)
    factor = min(picture.width // target[0], picture.height // target[1])
    if factor >= 2:  # whole-factor box shrink first: cheap, and bounds the resize's memory
        picture = picture.reduce(factor)
    if picture.size != target:
        picture = picture.resize(target, Image.Resampling.LANCZOS)
    if orientation in _UPRIGHT:
        picture = picture.transpose(getattr(Image.Transpose, _UPRIGHT[orientation]))
    return _on_white(picture)


def _decoded(frames, frame: int, width: int, height: int, notes: list[str], page: Page) -> tuple:
    """(the frame's pixels in L, RGB, LA or RGBA, the EXIF orientation still to apply).

    A file cut short is decoded as far as it goes, with a page warning (the rest is left grey, as
    viewers show it); a TIFF frame Pillow cannot decode is read by tifffile."""
    if isinstance(frames, tiff.Frames):
        return tiff.read(frames.path, frames.source, frame), 1
    try:
        return _pillow(frames, frame, width, height, notes, lenient=False)
    except _Truncated:
        if TRUNCATED not in page.warnings:  # a page may be drawn more than once
            page.warnings.append(TRUNCATED)
        return _pillow(frames, frame, width, height, notes, lenient=True)
    except _Undecodable as exc:
        if exc.format != "TIFF":
            raise DamagedSource(_damaged(exc.cause), source=frames.source) from None
        return tiff.read(frames.path, frames.source, frame), 1


class _Truncated(Exception):
    """The file ends before the picture does."""


class _Undecodable(Exception):
    def __init__(self, image_format: str | None, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.format, self.cause = image_format, cause


def _pillow(frames, frame: int, width: int, height: int, notes: list[str], lenient: bool) -> tuple:
    """The frame decoded by Pillow (``lenient``: as far as the file goes) and its EXIF orientation."""
    from PIL import ImageFile

    with _collect(notes), frames.at(frame) as image:
        orientation = _orientation(image)
        # Work in the stored orientation; turn upright only once small.
        target = (height, width) if orientation in _SWAPS_AXES else (width, height)
        try:
            if image.format in ("JPEG", "MPO"):
                image.draft(None, target)  # decode at 1/2, 1/4 or 1/8 scale when that still covers target
            if lenient:
                with _LENIENT:  # Pillow's switch is a module global: set only around this one decode
                    ImageFile.LOAD_TRUNCATED_IMAGES = True
                    try:
                        image.load()
                    finally:
                        ImageFile.LOAD_TRUNCATED_IMAGES = False
            else:
                image.load()
            picture = _normalise(image)
        except _BROKEN as exc:
            if not lenient and isinstance(exc, OSError) and _CUT_SHORT.search(str(exc)):
                raise _Truncated() from None
            raise _Undecodable(image.format, exc) from None
        if picture is image and frames.shared:  # the open TIFF decodes its next frame into it
            picture = image.copy()
    return picture, orientation


def _normalise(image: "Image.Image") -> "Image.Image":
    """Any Pillow mode to L, RGB, LA or RGBA with the right tones (16-bit scaled, not clipped)."""
    mode = image.mode
    has_alpha = mode in _ALPHA_MODES or "transparency" in image.info
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _deepen_to_l(image)
    if mode in ("LA", "RGBA") or (mode in ("L", "RGB") and not has_alpha):
        return image
    if mode == "1":
        return image.convert("L")
    return image.convert("RGBA" if has_alpha else "RGB")  # P, PA, CMYK, YCbCr, LAB, tRNS ...


def _deepen_to_l(image: "Image.Image") -> "Image.Image":
    """16- and 32-bit greys to 8 bits by scaling; Pillow's own conversion clips at 255."""
    wide = image if image.mode in ("I", "F") else image.convert("I")
    low, high = wide.getextrema()
    if high <= 255 and low >= 0:
        return wide.convert("L")
    if low < 0 and high > low:  # signed or floating-point data: its range spread over the greys, as viewers do
        return wide.point(lambda v: (v - low) * (255.0 / (high - low))).convert("L")
    if image.mode == "F" and high <= 1.0:
        scale = 255.0
    else:
        scale = 1 / 256 if high <= 65535 else 255.0 / high
    return wide.point(lambda v: v * scale).convert("L")


def _on_white(picture: "Image.Image") -> "Image.Image":
    """Composite transparency onto white (convert("RGB") alone would turn it black)."""
    from PIL import Image

    if picture.mode in ("LA", "RGBA"):
        board = Image.new("RGB", picture.size, WHITE)
        board.paste(picture.convert("RGB"), mask=picture.getchannel("A"))
        return board
    return picture if picture.mode == "RGB" else picture.convert("RGB")
