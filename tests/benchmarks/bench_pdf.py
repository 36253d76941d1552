"""Benchmark: our PDF ingestor against pdftoppm (poppler-utils), same pages, same pixel size, same run.

Generates a 50-page US Letter report (dense text in two fonts, tables with rules, bar and line
charts drawn as vectors), then renders every page to an RGB image at the HD-25 content size
(1298x1680 for Letter):

  ours      docvision.ingest.pdf: iterate pages (words + scanned check included) and render each
            to an in-memory PIL RGB image;
  ours/draw pixels only (no text layer, no display list): the same _render on each PyMuPDF page;
  pdftoppm  one `pdftoppm -scale-to-x W -scale-to-y H` run writing PPM files to a RAM folder.

Prints pages/s for each and the ratio. Run: python3 tests/benchmarks/bench_pdf.py [--pages 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from docvision.document import IngestOptions  # noqa: E402
from docvision.ingest import pdf  # noqa: E402
from docvision.tiling import plan  # noqa: E402

WORDS = ("revenue margin quarter growth segment customer outlook capital operating income expense "
         "forecast risk liquidity dividend region product services total net gross adjusted").split()


def make_report(path: Path, pages: int, seed: int = 7) -> None:
    """A realistic report: a heading, two columns of body text, a table, and a chart per page."""
    import pymupdf

    rng = random.Random(seed)
    doc = pymupdf.open()
    for n in range(1, pages + 1):
        page = doc.new_page(width=612, height=792)
        page.insert_text((54, 60), f"Section {n}: results for the quarter", fontsize=16, fontname="hebo")
        for column, x in enumerate((54, 320)):
            lines = []
            for _ in range(24):
                lines.append(" ".join(rng.choice(WORDS) for _ in range(7)) + f" {rng.randint(1, 99999):,}")
            page.insert_textbox(pymupdf.Rect(x, 80, x + 240, 400), "\n".join(lines), fontsize=8,
                                fontname="tiro" if column else "helv")
        _table(page, rng, top=410)
        _chart(page, rng, pymupdf.Rect(54, 560, 558, 750), bars=n % 2 == 0)
        page.insert_text((290, 775), f"{n}", fontsize=9)
    doc.save(str(path), deflate=True)
    doc.close()


def _table(page, rng, top: float) -> None:
    import pymupdf

    for row in range(7):
        y = top + row * 18
        page.draw_line((54, y), (558, y), color=(0.4, 0.4, 0.4), width=0.5)
        for col in range(5):
            text = "Item" if col == 0 else f"{rng.uniform(-9999, 99999):,.2f}"
            page.insert_text((60 + col * 100, y + 13), text if row else f"Q{col}" if col else "Line",
                             fontsize=9)
    page.draw_rect(pymupdf.Rect(54, top, 558, top + 126), color=(0, 0, 0), width=0.8)


def _chart(page, rng, box, bars: bool) -> None:
    import pymupdf

    page.draw_rect(box, color=(0, 0, 0), width=0.6)
    for k in range(1, 5):  # grid lines
        y = box.y1 - k * box.height / 5
        page.draw_line((box.x0, y), (box.x1, y), color=(0.8, 0.8, 0.8), width=0.4, dashes="[2] 0")
    values = [rng.uniform(0.1, 0.95) for _ in range(16)]
    step = box.width / len(values)
    if bars:
        for i, v in enumerate(values):
            x = box.x0 + i * step + step * 0.15
            page.draw_rect(pymupdf.Rect(x, box.y1 - v * box.height, x + step * 0.7, box.y1),
                           color=None, fill=(0.2, 0.4, 0.8 - 0.03 * i))
    else:
        points = [pymupdf.Point(box.x0 + (i + 0.5) * step, box.y1 - v * box.height) for i, v in enumerate(values)]
        page.draw_polyline(points, color=(0.8, 0.1, 0.1), width=1.5)
        for p in points:
            page.draw_circle(p, 2.5, color=(0.8, 0.1, 0.1), fill=(1, 1, 1))
        wave = [pymupdf.Point(box.x0 + t, box.y1 - box.height * (0.5 + 0.3 * math.sin(t / 25)))
                for t in range(0, int(box.width), 4)]
        page.draw_polyline(wave, color=(0.1, 0.5, 0.1), width=1)


def run_ours(path: Path) -> tuple[float, int, tuple[int, int]]:
    """Seconds to produce every page as a PIL RGB image at the HD-25 content size."""
    started = time.perf_counter()
    count, size = 0, (0, 0)
    with pdf.load(str(path), IngestOptions()) as document:
        for page in document.pages():
            size = plan(page.size, 25).content_size
            image = page.render(*size)
            assert image.size == size and image.mode == "RGB"
            count += 1
    return time.perf_counter() - started, count, size


def run_ours_draw_only(path: Path, size: tuple[int, int]) -> float:
    """The pixels alone: open once, draw each page at the size, no text layer."""
    fitz = pdf.quiet_pymupdf()
    started = time.perf_counter()
    doc = fitz.open(str(path))
    for page in doc:
        pdf._render(fitz, page, page.rect, *size, page_obj=_Quiet())
    doc.close()
    return time.perf_counter() - started


class _Quiet:
    label = "page"
    warnings: list = []


def run_pdftoppm(path: Path, size: tuple[int, int], folder: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["pdftoppm", "-scale-to-x", str(size[0]), "-scale-to-y", str(size[1]), str(path),
                    str(folder / "p")], check=True, timeout=600)
    elapsed = time.perf_counter() - started
    first = sorted(folder.glob("p*.ppm"))[0]
    with open(first, "rb") as fh:
        header = fh.read(20).split()
    assert (int(header[1]), int(header[2])) == size, (header, size)
    for f in folder.glob("p*.ppm"):
        f.unlink()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is kept")
    args = parser.parse_args()
    if shutil.which("pdftoppm") is None:
        sys.exit("pdftoppm is not installed (Debian poppler-utils)")
    ram = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=ram) as tmp:
        folder = Path(tmp)
        path = folder / "report.pdf"
        make_report(path, args.pages)
        print(f"{args.pages}-page report, {path.stat().st_size / 1024:.0f} KiB, "
              f"{os.cpu_count()} CPUs, one thread each")
        ours, ours_draw, theirs = [], [], []
        size = None
        for _ in range(args.repeat):  # interleaved, so load on a shared machine hits all alike
            seconds, count, size = run_ours(path)
            ours.append(seconds)
            ours_draw.append(run_ours_draw_only(path, size))
            theirs.append(run_pdftoppm(path, size, folder))
        n = args.pages
        rate = {name: n / min(times) for name, times in
                (("ours", ours), ("ours/draw", ours_draw), ("pdftoppm", theirs))}
        print(f"page size at HD-25: {size[0]}x{size[1]} px (best of {args.repeat})")
        for name, value in rate.items():
            print(f"  {name:10s} {value:7.1f} pages/s")
        print(f"ratio ours / pdftoppm: {rate['ours'] / rate['pdftoppm']:.2f}x "
              f"(draw only: {rate['ours/draw'] / rate['pdftoppm']:.2f}x)")
        # The first run of ours pays one-time costs in this process (PIL import, MuPDF's fonts);
        # pdftoppm pays its start-up in every run. Shown so that a short document is judged fairly.
        print(f"first (cold) runs: ours {n / ours[0]:.1f} pages/s, pdftoppm {n / theirs[0]:.1f} pages/s")


if __name__ == "__main__":
    main()
