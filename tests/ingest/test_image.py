"""The image ingestor on images generated here with Pillow: modes, orientation, frames, posters, limits."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import pytest
from PIL import Image, ImageDraw, ImageOps

from docvision import views
from docvision.document import IngestOptions
from docvision.errors import DamagedSource, ImageTooLarge, PageRangeError
from docvision.ingest import image as image_ingest
from docvision.ingest.image import TRUNCATED
from docvision.tiling import plan
from tests.helpers import read_back, run_cli

RED, BLUE, GREEN, YELLOW, WHITE = (255, 0, 0), (0, 0, 255), (0, 160, 0), (250, 220, 0), (255, 255, 255)


def load(path, **options):
    return image_ingest.load(str(path), IngestOptions(**options))


def only_page(path, **options):
    with load(path, **options) as doc:
        pages = list(doc.pages())
    assert len(pages) == 1
    return pages[0]


def quadrants(size=(240, 160)) -> Image.Image:
    """Four coloured quadrants: any flip or turn moves the colours somewhere else."""
    w, h = size
    picture = Image.new("RGB", size)
    draw = ImageDraw.Draw(picture)
    for (x, y), colour in zip([(0, 0), (1, 0), (0, 1), (1, 1)], [RED, BLUE, GREEN, YELLOW]):
        draw.rectangle((x * w // 2, y * h // 2, (x + 1) * w // 2 - 1, (y + 1) * h // 2 - 1), fill=colour)
    return picture


def close(a, b, tol=12) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b))


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    from PIL import ImageChops

    histogram = ImageChops.difference(a, b).convert("L").histogram()
    return sum(i * n for i, n in enumerate(histogram)) / sum(histogram)


def test_png_page_and_exact_render(tmp_path):
    quadrants().save(tmp_path / "q.png")
    page = only_page(tmp_path / "q.png")
    assert page.label == "image" and page.number == 1 and page.size == (240, 160)
    assert page.words == () and page.scanned is False
    for size in [(240, 160), (2016, 1344), (33, 700), (1, 1)]:
        picture = page.render(*size)
        assert picture.size == size and picture.mode == "RGB"
    big = page.render(480, 320)
    assert close(big.getpixel((10, 10)), RED) and close(big.getpixel((470, 310)), YELLOW)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillows_exif_transpose(tmp_path, orientation):
    original = quadrants()
    exif = Image.Exif()
    exif[0x0112] = orientation
    original.save(tmp_path / "o.png", exif=exif)
    expected = ImageOps.exif_transpose(Image.open(tmp_path / "o.png")).convert("RGB")
    page = only_page(tmp_path / "o.png")
    assert page.size == expected.size
    target = (expected.width * 2, expected.height * 2)
    assert mean_difference(page.render(*target), expected.resize(target)) < 3


def test_exif_orientation_on_a_jpeg_drawn_small(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, shown turned 90 degrees clockwise
    quadrants((1600, 1000)).save(tmp_path / "photo.jpg", quality=95, exif=exif)
    page = only_page(tmp_path / "photo.jpg")
    assert page.size == (1000, 1600)
    picture = page.render(100, 160)  # JPEG draft decodes at 1/8, then the exact resize
    assert close(picture.getpixel((75, 20)), RED, 30)  # top-left quadrant turned to the top right
    assert close(picture.getpixel((25, 20)), GREEN, 30)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparency_goes_onto_white_not_black(tmp_path, mode):
    picture = Image.new("RGBA", (200, 100), (0, 0, 0, 0))  # transparent black, the trap
    ImageDraw.Draw(picture).rectangle((50, 25, 149, 74), fill=(200, 0, 0, 255))
    picture.convert(mode).save(tmp_path / "a.png")
    rendered = only_page(tmp_path / "a.png").render(400, 200)
    assert rendered.getpixel((5, 5)) == WHITE
    inside = rendered.getpixel((200, 100))
    assert close(inside, (200, 0, 0) if mode == "RGBA" else (60, 60, 60), 12)
    half = Image.new("RGBA", (10, 10), (0, 0, 0, 128))  # half-transparent black is mid grey on white
    half.save(tmp_path / "half.png")
    assert close(only_page(tmp_path / "half.png").render(10, 10).getpixel((5, 5)), (127, 127, 127), 2)


def test_palette_with_transparency_and_one_bit(tmp_path):
    palette = Image.new("P", (60, 60), 0)
    palette.putpalette([0, 0, 0, 0, 0, 255])
    ImageDraw.Draw(palette).rectangle((20, 20, 39, 39), fill=1)
    palette.save(tmp_path / "p.png", transparency=0)
    palette.save(tmp_path / "p.gif", transparency=0)
    for name in ("p.png", "p.gif"):
        rendered = only_page(tmp_path / name).render(60, 60)
        assert rendered.getpixel((2, 2)) == WHITE and rendered.getpixel((30, 30)) == (0, 0, 255)
    bits = Image.new("1", (64, 64), 1)
    ImageDraw.Draw(bits).rectangle((0, 0, 31, 63), fill=0)
    bits.save(tmp_path / "b.png")
    rendered = only_page(tmp_path / "b.png").render(64, 64)
    assert rendered.getpixel((10, 10)) == (0, 0, 0) and rendered.getpixel((50, 10)) == WHITE


def test_cmyk_jpeg_and_tiff(tmp_path):
    cmyk = Image.new("CMYK", (80, 80), (0, 255, 255, 0))  # pure red in print colours
    cmyk.save(tmp_path / "c.jpg", quality=95)
    cmyk.save(tmp_path / "c.tif")
    for name in ("c.jpg", "c.tif"):
        assert close(only_page(tmp_path / name).render(40, 40).getpixel((20, 20)), RED, 20), name


def test_sixteen_bit_greys_are_scaled_not_clipped(tmp_path):
    row = struct.pack("<64H", *([40000] * 32 + [10000] * 32))  # left half 40000, right half 10000
    grey = Image.frombytes("I;16", (64, 32), row * 32)
    grey.save(tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").mode == "I;16"
    rendered = only_page(tmp_path / "g.png").render(64, 32)
    assert close(rendered.getpixel((8, 16)), (156,) * 3, 2)  # 40000 / 256; Pillow's convert gives 255
    assert close(rendered.getpixel((56, 16)), (39,) * 3, 2)
    Image.new("RGB", (8, 8), (10, 200, 30)).save(tmp_path / "rgb48.tif")  # plain TIFF control
    assert only_page(tmp_path / "rgb48.tif").render(8, 8).getpixel((4, 4)) == (10, 200, 30)


def test_tiff_frames_are_pages_and_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", size, colour) for size, colour in
              [((300, 200), RED), ((200, 300), BLUE), ((50, 50), GREEN)]]
    frames[0].save(tmp_path / "m.tif", save_all=True, append_images=frames[1:])
    with load(tmp_path / "m.tif") as doc:
        assert doc.page_count == 3
        pages = list(doc.pages())
        assert [p.label for p in pages] == ["frame 1", "frame 2", "frame 3"]
        assert [p.size for p in pages] == [(300, 200), (200, 300), (50, 50)]
        assert [p.render(10, 10).getpixel((5, 5)) for p in pages] == [RED, BLUE, (0, 160, 0)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:2])
    page = only_page(tmp_path / "anim.gif")
    assert close(page.render(30, 20).getpixel((15, 10)), RED)


@pytest.mark.parametrize("name", ["q.webp", "q.bmp", "q.jpeg", "q.tiff"])
def test_other_formats(tmp_path, name):
    quadrants().save(tmp_path / name, **({"quality": 95} if name.endswith(("webp", "jpeg")) else {}))
    page = only_page(tmp_path / name)
    rendered = page.render(240, 160)
    assert close(rendered.getpixel((20, 20)), RED, 25) and close(rendered.getpixel((220, 140)), YELLOW, 25)


def test_tall_poster_fills_its_plan(tmp_path):
    poster = Image.new("RGB", (816, 5133), (200, 220, 240))
    ImageDraw.Draw(poster).rectangle((0, 5000, 815, 5132), fill=(0, 0, 0))  # a dark footer
    poster.save(tmp_path / "poster.png")
    page = only_page(tmp_path / "poster.png")
    poster_plan = plan(page.size, 25)
    assert poster_plan.canvas_size == (672, 4032)
    board = views.canvas(page, poster_plan)
    x0, y0, x1, y1 = poster_plan.content_box
    assert board.getpixel((x0 + 5, 100)) == (200, 220, 240)
    assert board.getpixel((x0 + 5, y1 - 5)) == (0, 0, 0)  # the footer is the last content row
    assert board.getpixel((1, 100)) == WHITE and board.getpixel((671, 100)) == WHITE


def test_huge_square_poster_with_bounded_memory(tmp_path):
    """8000x8000: a JPEG decodes at 1/4 scale (draft) and a PNG is box-reduced before resizing."""
    poster = Image.new("RGB", (8000, 8000), WHITE)
    ImageDraw.Draw(poster).rectangle((0, 0, 3999, 3999), fill=(20, 20, 20))
    poster.save(tmp_path / "big.jpg", quality=80)
    poster.save(tmp_path / "big.png", compress_level=1)
    del poster
    probe = (
        "import json, sys\n"
        "from docvision.document import IngestOptions\n"
        "from docvision.ingest import image\n"
        "from docvision.tiling import plan\n"
        "from docvision import views\n"
        # VmHWM is this process's own peak (ru_maxrss would carry the forking pytest's over exec)
        "def peak_mb():\n"
        "    line = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "    return int(line.split()[1]) / 1024\n"
        "doc = image.load(sys.argv[1], IngestOptions())\n"
        "page = next(doc.pages())\n"
        "board = views.canvas(page, plan(page.size, 25))\n"
        "print(json.dumps({'size': board.size, 'dark': board.getpixel((10, 10)),"
        " 'light': board.getpixel((1670, 1670)),"
        " 'rss_mb': peak_mb()}))\n"
    )
    for name, budget_mb in (("big.jpg", 150), ("big.png", 450)):  # 8000x8000 RGB is 256 MB decoded
        out = subprocess.run([sys.executable, "-c", probe, str(tmp_path / name)],
                             capture_output=True, text=True, timeout=120, check=True)
        result = json.loads(out.stdout)
        assert result["size"] == [1680, 1680]
        assert close(result["dark"], (20, 20, 20), 10) and close(result["light"], WHITE, 10)
        assert result["rss_mb"] < budget_mb, (name, result)


def test_decompression_bomb_limit_is_ours_and_names_the_flag(tmp_path):
    Image.new("L", (2000, 1000)).save(tmp_path / "wide.png")
    with pytest.raises(ImageTooLarge, match="--max-image-pixels") as caught:
        load(tmp_path / "wide.png", max_image_pixels=1_000_000)
    assert "2000x1000" in str(caught.value)
    with pytest.raises(ImageTooLarge):  # far over: Pillow's own guard would fire first without ours
        load(tmp_path / "wide.png", max_image_pixels=10_000)
    assert only_page(tmp_path / "wide.png", max_image_pixels=2_000_000).size == (2000, 1000)
    assert Image.MAX_IMAGE_PIXELS == 2_000_000  # Pillow's guard follows the option


def test_truncated_png_is_damaged(tmp_path):
    quadrants((600, 400)).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DamagedSource, match="truncated or corrupt"):
        with load(tmp_path / "cut.png") as doc:
            page = next(doc.pages())
            page.render(*page.size)


@pytest.mark.ocr
def test_truncated_jpeg_shows_what_it_holds_and_is_partial(tmp_path):
    from PIL import ImageFont

    picture = Image.new("RGB", (900, 600), WHITE)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.truetype("DejaVuSans.ttf", 48)
    draw.text((40, 60), "Invoice 4711 paid", font=font, fill=(0, 0, 0))
    draw.rectangle((0, 400, 900, 600), fill=(0, 0, 160))
    picture.save(tmp_path / "whole.jpg", quality=92)
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: int(len(data) * 0.6)])  # the blue band is lost
    with load(tmp_path / "cut.jpg") as doc:
        pages = doc.pages()
        page = next(pages)
        drawn = page.render(*page.size)  # the damage shows when the page is drawn, before the next is asked for
        assert list(pages) == [] and doc.damaged == [1] and page.warnings == [TRUNCATED]
    assert "Invoice 4711" in read_back(drawn.crop((0, 0, 900, 200)))
    bottom = drawn.getpixel((450, 580))
    assert not close(bottom, (0, 0, 160), 40) and close(bottom, (128, 128, 128), 20)  # viewers' grey
    proc = run_cli("render", tmp_path / "cut.jpg")
    assert proc.returncode == 1 and "damaged page 1" in proc.stderr and "--allow-partial" in proc.stderr
    proc = run_cli("render", tmp_path / "cut.jpg", "--allow-partial", "--no-cache")
    assert proc.returncode == 0 and "cut short" in proc.stdout  # the page's warning, under its row


def test_mislabelled_and_unreadable_files(tmp_path):
    (tmp_path / "text.png").write_text("just some words, not a picture\n" * 10)
    with pytest.raises(DamagedSource, match="not a valid image"):
        load(tmp_path / "text.png")
    (tmp_path / "doc.png").write_bytes(b"%PDF-1.7\n" + b"0" * 100)
    with pytest.raises(DamagedSource, match="PDF"):
        load(tmp_path / "doc.png")
    (tmp_path / "liar.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(DamagedSource):
        load(tmp_path / "liar.png")


def test_bad_crc_and_heic_named_jpg_say_what_to_do(tmp_path):
    Image.new("RGB", (40, 30), BLUE).save(tmp_path / "crc.png")
    data = bytearray((tmp_path / "crc.png").read_bytes())
    at = data.index(b"IDAT")
    data[at + 4] ^= 0xFF  # first byte of the compressed data: the chunk's CRC no longer matches
    (tmp_path / "crc.png").write_bytes(bytes(data))
    with pytest.raises(DamagedSource, match=r"a checksum does not match: bytes of the file were changed; export or "
                                            r"download it again$"):
        load(tmp_path / "crc.png")
    (tmp_path / "photo.jpg").write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(300))
    with pytest.raises(DamagedSource, match="HEIC/HEIF or AVIF photo.*convert it to JPEG or PNG"):
        load(tmp_path / "photo.jpg")


def test_tiff_frame_without_dimensions_is_damaged(tmp_path):
    Image.new("RGB", (64, 48), BLUE).save(tmp_path / "two.tiff", save_all=True,
                                          append_images=[Image.new("RGB", (30, 20))])
    data = bytearray((tmp_path / "two.tiff").read_bytes())
    first = struct.unpack("<I", data[4:8])[0]
    count = struct.unpack("<H", data[first:first + 2])[0]
    second = struct.unpack("<I", data[first + 2 + 12 * count:first + 6 + 12 * count])[0]
    for i in range(struct.unpack("<H", data[second:second + 2])[0]):
        entry = second + 2 + 12 * i
        if struct.unpack("<H", data[entry:entry + 2])[0] in (256, 257):  # ImageWidth, ImageLength
            data[entry:entry + 2] = struct.pack("<H", 65000 + i)
    (tmp_path / "two.tiff").write_bytes(bytes(data))
    with pytest.raises(DamagedSource, match="no usable picture size"):  # Pillow raises "Missing dimensions"
        load(tmp_path / "two.tiff")


def test_damaged_exif_is_a_warning_not_python_noise_on_stderr(tmp_path):
    picture = Image.new("RGB", (64, 48), BLUE)
    exif = picture.getexif()
    exif[0x010F] = "A long camera maker name"
    picture.save(tmp_path / "photo.jpg", exif=exif)
    data = bytearray((tmp_path / "photo.jpg").read_bytes())
    entry = data.index(b"Exif\0\0MM") + 6 + 10  # the first IFD entry: Make, its value stored at an offset
    data[entry + 8:entry + 12] = struct.pack(">I", 0x7FFFFF)  # points past the end of the file
    (tmp_path / "photo.jpg").write_bytes(bytes(data))
    proc = run_cli("render", tmp_path / "photo.jpg", "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() and all(line.startswith("warning: ") for line in proc.stderr.splitlines())
    assert "damaged image metadata was skipped" in proc.stderr
    assert any("metadata" in w for w in json.loads(proc.stdout)["warnings"])


def test_pages_pick_tiff_frames(tmp_path):
    frames = [Image.new("RGB", (40, 30), colour) for colour in (RED, BLUE, GREEN)]
    frames[0].save(tmp_path / "scan.tiff", save_all=True, append_images=frames[1:])
    with load(tmp_path / "scan.tiff", pages="2-3") as doc:
        assert [(p.label, p.number, p.render(4, 4).getpixel((2, 2))) for p in doc.pages()] == [
            ("frame 2", 2, BLUE), ("frame 3", 3, GREEN)]
    with pytest.raises(PageRangeError, match="outside the document, which has 3 pages"):
        load(tmp_path / "scan.tiff", pages="4")
    frames[0].save(tmp_path / "one.png")
    assert only_page(tmp_path / "one.png", pages="1-3").label == "image"  # one picture is page 1
    with pytest.raises(PageRangeError, match="outside the document, which has 1 page"):
        load(tmp_path / "one.png", pages="2")


def many_frame_tiff(path, count: int, size=(8, 6)) -> None:
    """A baseline TIFF of ``count`` 8-bit grey frames, frame i filled with i % 251, written here directly
    (Pillow's own writer takes ~3 ms a frame)."""
    width, height = size
    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    link = 4  # where the offset of the next frame's header goes
    for i in range(count):
        strip = len(out)
        out += bytes([i % 251]) * (width * height)
        if len(out) % 2:
            out += b"\x00"  # headers start on a word boundary
        struct.pack_into("<I", out, link, len(out))
        tags = [(256, width), (257, height), (258, 8), (259, 1), (262, 1), (273, strip), (277, 1),
                (278, height), (279, width * height)]
        out += struct.pack("<H", len(tags))
        for tag, value in tags:
            out += struct.pack("<HHII", tag, 4, 1, value)  # LONG values fit in the entry
        link = len(out)
        out += b"\x00\x00\x00\x00"  # the last frame's "next" stays 0
    path.write_bytes(bytes(out))


@pytest.mark.slow  # ~5 s: 6,000 frames read and drawn
def test_six_thousand_tiff_frames_are_read_once_in_order(tmp_path):
    # Each frame used to be found by walking the headers from the first: 6,000 frames ran past 180 s.
    many_frame_tiff(tmp_path / "fax.tif", 6000)
    with load(tmp_path / "fax.tif") as doc:
        assert doc.page_count == 6000
        seen = [(page.number, page.render(8, 6).getpixel((3, 3))[0]) for page in doc.pages()]
    assert seen == [(i + 1, i % 251) for i in range(6000)]
    with load(tmp_path / "fax.tif", pages="5990-") as doc:
        tail = [(page.label, page.render(4, 3).getpixel((1, 1))) for page in doc.pages()]
    assert tail == [(f"frame {n}", ((n - 1) % 251,) * 3) for n in range(5990, 6001)]


def test_a_frame_rendered_again_after_later_frames_is_itself(tmp_path):
    many_frame_tiff(tmp_path / "fax.tif", 5)
    with load(tmp_path / "fax.tif") as doc:
        pages = list(doc.pages())
        images = [page.render(8, 6) for page in pages]  # exact size: no resize makes a new image
        again = pages[1].render(8, 6)
    assert [image.getpixel((0, 0))[0] for image in images] == [0, 1, 2, 3, 4]
    assert again.getpixel((0, 0))[0] == 1


def test_an_image_whose_name_is_not_utf8_renders(tmp_path):
    import os

    source = os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.png")  # Latin-1 "é" as Python hands it over
    quadrants().save(os.fsencode(source))
    page = only_page(source)
    assert page.render(240, 160).getpixel((10, 10)) == RED
    for extra in ([], ["--no-cache"]):
        proc = run_cli("render", "--json", *extra, source)
        assert proc.returncode == 0, proc.stderr
        [record] = [json.loads(line) for line in proc.stdout.splitlines()]
        assert record["status"] == "ok" and record["document"]["type"] == "image"


def _two_colour_samples(dtype, top=1.0):
    import numpy as np

    samples = np.zeros((60, 80, 3), dtype=np.float64)
    samples[:30] = [top, 0, 0]  # red over blue
    samples[30:] = [0, 0, top]
    return samples.astype(dtype)


@pytest.mark.parametrize("kind", ["float32", "uint32", "jpegxl"])
def test_tiff_in_a_mode_pillow_lacks_is_read_by_tifffile(tmp_path, kind):
    import numpy as np
    import tifffile

    source = tmp_path / f"{kind}.tif"
    if kind == "jpegxl":  # a compression Pillow's libtiff does not know
        tifffile.imwrite(source, _two_colour_samples(np.uint8, 255), photometric="rgb", compression="jpegxl")
    else:
        frames = [_two_colour_samples(np.dtype(kind), 1.0 if kind == "float32" else 4e9)] * 2
        tifffile.imwrite(source, np.stack(frames), photometric="rgb")
    with pytest.raises(Exception):
        Image.open(source).load()  # the premise: Pillow cannot
    with load(source) as doc:
        pages = list(doc.pages())
        drawn = [page.render(40, 30) for page in pages]
    assert len(pages) == (1 if kind == "jpegxl" else 2) and pages[0].size == (80, 60)
    for image in drawn:
        assert close(image.getpixel((20, 5)), RED, 20) and close(image.getpixel((20, 25)), BLUE, 20)


def test_tiff_no_reader_decodes_says_which_compression(tmp_path):
    import numpy as np
    import tifffile

    source = tmp_path / "odd.tif"
    tifffile.imwrite(source, _two_colour_samples(np.float32), photometric="rgb", compression="zlib")
    data = bytearray(source.read_bytes())
    with tifffile.TiffFile(source) as tif:
        offset = tif.pages[0].tags["Compression"].valueoffset
    data[offset:offset + 2] = struct.pack("<H", 34892)  # a compression code no library here decodes
    source.write_bytes(bytes(data))
    proc = run_cli("render", source)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "the TIFF cannot be read" in proc.stderr and "compression" in proc.stderr and "32-bit" in proc.stderr
