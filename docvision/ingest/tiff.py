"""TIFFs Pillow cannot decode, read with tifffile (and imagecodecs, which decodes its compressions).

In: a TIFF path, a frame number and the pixel limit. Out: the frame as a PIL image in mode L, RGB or
RGBA, upright (the Orientation tag applied), tones scaled to 8 bits; or DamagedSource naming precisely
what neither reader decodes (the compression, the sample format).

Pillow reads the common TIFFs; scientific and prepress ones use pixel modes it lacks (32-bit float
RGB, 16-bit planar CMYK, 12-bit samples, LZMA, Zstandard or WebP compression without its codec). tifffile
is made for them: it returns the samples as a numpy array, which is scaled here the way a viewer shows
them (the samples' declared bit depth, floats between their extremes, white-is-zero inverted, palettes
applied, CIE L*a*b* and CMYK converted).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from docvision.errors import DamagedSource

if TYPE_CHECKING:
    import numpy
    from PIL import Image

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, both byte orders
# Orientation tag -> the transpose that shows the frame upright (as ImageOps.exif_transpose).
_UPRIGHT = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
            7: "TRANSVERSE", 8: "ROTATE_90"}
SWAPS_AXES = {5, 6, 7, 8}


def is_tiff(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) in TIFF_MAGIC


def _reason(exc: BaseException) -> str:
    """Why the samples could not be read, in a reader's words (never the library's own text)."""
    text = str(exc).lower()
    if "imagecodecs" in text or "not supported" in text or "notimplemented" in type(exc).__name__.lower():
        return "it uses a compression or sample format no reader here decodes"
    return "its image data is damaged or cut short"


def _describe(page) -> str:
    """The frame's compression and samples, as a person would name them ("LZW, 3 x 16-bit unsigned")."""
    compression = getattr(page.compression, "name", str(page.compression)).replace("_", " ")
    kind = {1: "unsigned", 2: "signed", 3: "floating-point"}.get(int(page.sampleformat), "")
    return f"{compression} compression, {page.samplesperpixel} x {page.bitspersample}-bit {kind} samples".replace(
        "  ", " ")


@contextmanager
def opened(path: Path, source: str) -> Iterator[object]:
    """The file as tifffile opens it; DamagedSource when it is no TIFF tifffile can parse."""
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except Exception:  # noqa: BLE001 - TiffFileError, ValueError, struct.error... on a damaged header
        raise DamagedSource("not a readable TIFF: its header or frame list is damaged; export or download it "
                            "again", source=source) from None
    with tif:
        yield tif


def frame_count(path: Path, source: str) -> int:
    with opened(path, source) as tif:
        return len(tif.pages)


def frame_size(path: Path, source: str, index: int) -> tuple[int, int]:
    """(width, height) of a frame as shown, after its Orientation tag."""
    with opened(path, source) as tif:
        page = tif.pages[index]
        width, height = page.imagewidth, page.imagelength
        return (height, width) if _orientation(page) in SWAPS_AXES else (width, height)


def read(path: Path, source: str, index: int) -> "Image.Image":
    """Frame ``index`` decoded by tifffile: upright, 8-bit, mode L, RGB or RGBA (the caller has checked
    its size against the pixel limit: ``frame_size``)."""
    from PIL import Image

    with opened(path, source) as tif:
        page = tif.pages[index]
        try:
            samples = page.asarray()
        except Exception as exc:  # noqa: BLE001 - imagecodecs and tifffile raise many kinds
            raise DamagedSource(f"the TIFF cannot be read: {_reason(exc)} ({_describe(page)})", source=source) from None
        picture = _picture(samples, page)
        orientation = _orientation(page)
    if orientation in _UPRIGHT:
        picture = picture.transpose(getattr(Image.Transpose, _UPRIGHT[orientation]))
    return picture


def _orientation(page) -> int:
    tag = page.tags.get(274)
    value = int(tag.value) if tag is not None else 1
    return value if value in _UPRIGHT else 1


def _picture(samples: "numpy.ndarray", page) -> "Image.Image":
    """The decoded samples as a viewer shows them, as a PIL image."""
    import numpy as np
    from PIL import Image

    array = _samples_last(samples, page)
    photometric = int(page.photometric)
    if photometric == 3 and page.colormap is not None:  # palette: indices into a 16-bit colour map
        palette = (np.asarray(page.colormap, dtype=np.float64) / 257).round().clip(0, 255).astype(np.uint8)
        return Image.fromarray(palette.T[array[..., 0].astype(np.intp).clip(0, palette.shape[1] - 1)], "RGB")
    if photometric in (8, 9, 10):  # CIE L*a*b*, ICC L*a*b*, ITU L*a*b*
        return _lab(array)
    channels = _eight_bits(array, page)
    if photometric == 0:  # white is zero
        channels[..., :1] = 255 - channels[..., :1]
    count = channels.shape[-1]
    if photometric == 5 and count >= 4:  # separated: CMYK (extra inks dropped)
        return Image.fromarray(np.ascontiguousarray(channels[..., :4]), "CMYK").convert("RGB")
    if photometric == 6 and count >= 3:  # YCbCr that tifffile left as it is
        return Image.fromarray(np.ascontiguousarray(channels[..., :3]), "YCbCr").convert("RGB")
    if count >= 3:
        alpha = count >= 4 and _has_alpha(page)
        return Image.fromarray(np.ascontiguousarray(channels[..., :4 if alpha else 3]), "RGBA" if alpha else "RGB")
    if count == 2 and _has_alpha(page):
        return Image.fromarray(np.ascontiguousarray(channels[..., :2]), "LA")
    return Image.fromarray(np.ascontiguousarray(channels[..., 0]), "L")


def _samples_last(samples: "numpy.ndarray", page) -> "numpy.ndarray":
    """(height, width, samples), whatever order tifffile gave (planar files give samples first)."""
    import numpy as np

    array = np.asarray(samples)
    axes = getattr(page, "axes", "")
    if "S" in axes and axes.index("S") < axes.index("Y"):
        array = np.moveaxis(array, axes.index("S"), -1)
    while array.ndim > 3:  # depth or extra leading axes: the first plane
        array = array[0]
    return array[..., np.newaxis] if array.ndim == 2 else array


def _eight_bits(array: "numpy.ndarray", page) -> "numpy.ndarray":
    """Samples scaled to 0-255: integers by their declared bit depth, floats and signed ones between
    their extremes (how image viewers show scientific data)."""
    import numpy as np

    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint8:
        return array.copy()
    values = array.astype(np.float64)
    if array.dtype.kind == "u":
        top = float(2 ** min(int(page.bitspersample), array.dtype.itemsize * 8) - 1)
        if values.max(initial=0) > top:  # a declared depth the samples do not keep to
            top = float(np.iinfo(array.dtype).max)
        low = 0.0
    else:
        finite = values[np.isfinite(values)]
        low, top = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if array.dtype.kind == "f" and low >= 0.0 and top <= 1.0:
            low, top = 0.0, 1.0
    span = top - low or 1.0
    return (np.nan_to_num((values - low) / span) * 255).round().clip(0, 255).astype(np.uint8)


def _lab(array: "numpy.ndarray") -> "Image.Image":
    """CIE L*a*b* samples to RGB through Pillow's LAB mode (a and b offset to unsigned)."""
    import numpy as np
    from PIL import Image

    lab = np.zeros(array.shape[:2] + (3,), dtype=np.uint8)
    lightness = array[..., 0].astype(np.float64)
    lab[..., 0] = (lightness / (257 if array.dtype.itemsize > 1 else 1)).clip(0, 255)
    for i in (1, 2):
        if array.shape[-1] > i:
            channel = array[..., i].astype(np.float64) / (257 if array.dtype.itemsize > 1 else 1)
            lab[..., i] = (channel + 128 if array.dtype.kind == "i" else channel).clip(0, 255)
        else:
            lab[..., i] = 128
    return Image.fromarray(lab, "LAB").convert("RGB")


def _has_alpha(page) -> bool:
    extra = page.extrasamples
    return bool(extra) and int(extra[0]) in (1, 2)  # associated or unassociated alpha


class Frames:
    """The frames of a TIFF that only tifffile reads, for the image ingestor (each decoded when drawn)."""

    shared = False

    def __init__(self, path: Path, source: str) -> None:
        self.path, self.source = path, source
