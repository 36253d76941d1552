"""Benchmark: our PDF ingestor against pdftoppm (poppler-utils), same pages, same pixel size, same run.

Generates a 50-page US Letter report (dense text in two fonts, tables with rules, bar and line
charts drawn as vectors), then renders every page to an RGB image at the HD-25 content size
(1298x1680 for Letter):

  ours         docvision.ingest.pdf as a run uses it: pages read and drawn by the run's PDF worker
               (started before the clock, as a run starts it while it loads the model; reused by
               every document), words and scanned check included, each page an in-memory PIL image;
  in-process   the same work done in this process with PyMuPDF, as docvision did before the worker
               (display list, words, scanned check, get_pixmap, PIL image): the baseline of the
               worker's cost per page;
  draw only    pixels only, in this process (no text layer, no display list);
  pdftoppm     one `pdftoppm -scale-to-x W -scale-to-y H` run writing PPM files to a RAM folder.

Prints pages/s for each, the ratio against pdftoppm, the worker's cost per page against in-process
rendering (negative: the worker is faster, as it reads the next page while this process copies the
last one's pixels) and what starting a worker costs (paid once per run, or after a page that failed).
Run: python3 tests/benchmarks/bench_pdf.py [--pages 50] [--repeat 3]
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

from docvision.document import IngestOptions, Word  # noqa: E402
from docvision.ingest import pdf  # noqa: E402
from docvision.ingest.tools import Tools  # noqa: E402
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


def run_ours(path: Path, tools: Tools) -> tuple[float, int, tuple[int, int]]:
    """Seconds to produce every page as a PIL RGB image at the HD-25 content size."""
    started = time.perf_counter()
    count, size = 0, (0, 0)
    with pdf.load(str(path), IngestOptions(), tools) as document:
        for page in document.pages():
            size = plan(page.size, 25).content_size
            image = page.render(*size)
            assert image.size == size and image.mode == "RGB"
            count += 1
    return time.perf_counter() - started, count, size


def run_in_process(path: Path, size: tuple[int, int]) -> float:
    """The same work in this process: display list, words, scanned check, pixels, PIL image."""
    fitz = pdf.quiet_pymupdf()
    started = time.perf_counter()
    doc = fitz.open(str(path))
    for page in doc:
        rect = page.rect
        drawing = page.get_displaylist()
        text = fitz.TextPage(drawing.get_textpage(flags=fitz.TEXTFLAGS_WORDS))
        sx, sy = 300 / 72, 300 / 72  # words into source pixels, as the ingestor does
        words = tuple(Word(w, (x0 * sx, y0 * sy, x1 * sx, y1 * sy)) for x0, y0, x1, y1, w, *_ in text.extractWORDS())
        if not words:
            page.get_image_info()
        pix = drawing.get_pixmap(matrix=fitz.Matrix(size[0] / rect.width, size[1] / rect.height), clip=rect,
                                 alpha=False, colorspace=fitz.csRGB)
        image = pdf.pixmap_image(pix, *size)
        assert image.size == size
    doc.close()
    return time.perf_counter() - started


def run_draw_only(path: Path, size: tuple[int, int]) -> float:
    """The pixels alone: open once, draw each page at the size, no text layer."""
    fitz = pdf.quiet_pymupdf()
    started = time.perf_counter()
    doc = fitz.open(str(path))
    for page in doc:
        rect = page.rect
        pix = page.get_pixmap(matrix=fitz.Matrix(size[0] / rect.width, size[1] / rect.height), clip=rect,
                              alpha=False, colorspace=fitz.csRGB)
        pdf.pixmap_image(pix, *size)
    doc.close()
    return time.perf_counter() - started


def worker_start() -> float:
    """Seconds from starting a worker to its first answer (Python and PyMuPDF's import)."""
    from docvision.ingest.pdfpool import Worker

    started = time.perf_counter()
    worker = Worker()
    worker.receive(0)  # nothing was asked: this waits for its "ready" only, then times out at once
    elapsed = time.perf_counter() - started
    worker.close()
    return elapsed


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
    with tempfile.TemporaryDirectory(dir=ram) as tmp, Tools(IngestOptions()) as tools:
        folder = Path(tmp)
        path = folder / "report.pdf"
        make_report(path, args.pages)
        print(f"{args.pages}-page report, {path.stat().st_size / 1024:.0f} KiB, "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
        tools.pdf_workers().warm()
        times: dict[str, list[float]] = {"ours": [], "in-process": [], "draw only": [], "pdftoppm": []}
        starts, size = [], None
        for _ in range(args.repeat):  # interleaved, so load on a shared machine hits all alike
            seconds, count, size = run_ours(path, tools)
            times["ours"].append(seconds)
            times["in-process"].append(run_in_process(path, size))
            times["draw only"].append(run_draw_only(path, size))
            times["pdftoppm"].append(run_pdftoppm(path, size, folder))
            starts.append(worker_start())
        n = args.pages
        rate = {name: n / min(values) for name, values in times.items()}
        print(f"page size at HD-25: {size[0]}x{size[1]} px (best of {args.repeat})")
        for name, value in rate.items():
            print(f"  {name:11s} {value:7.1f} pages/s")
        print(f"ratio ours / pdftoppm: {rate['ours'] / rate['pdftoppm']:.2f}x "
              f"(in-process: {rate['in-process'] / rate['pdftoppm']:.2f}x, "
              f"draw only: {rate['draw only'] / rate['pdftoppm']:.2f}x)")
        cost = 1000 * (1 / rate["ours"] - 1 / rate["in-process"])
        print(f"the worker's cost per page against in-process: {cost:+.2f} ms "
              f"({1000 / rate['ours']:.2f} against {1000 / rate['in-process']:.2f} ms)")
        print(f"starting a worker: {1000 * min(starts):.0f} ms (best of {len(starts)}), once per run; "
              f"workers started here: {tools.pdf_workers().started}")
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
