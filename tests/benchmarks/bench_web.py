"""Benchmark: capture 20 local pages with docvision's one reused Chromium against one
``chromium --headless --screenshot`` process per page (same flags, same viewport), in the same run.

    python3 tests/benchmarks/bench_web.py [--pages 20]

docvision does more per page than the baseline (settling, a scroll-through for lazy content, word
anchors, the full page rather than the first screen), so the ratio understates the saving of reusing
the browser. Prints both wall times and the ratio baseline / docvision.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from docvision import ingest  # noqa: E402
from docvision.ingest.web import browser  # noqa: E402
from docvision.document import IngestOptions  # noqa: E402

WIDTH, HEIGHT, SCALE = 1280, 720, 2.0


def make_pages(folder: Path, count: int) -> list[Path]:
    """Ordinary article-like pages, about two screens tall, each a little different."""
    paths = []
    for i in range(count):
        rows = "".join(f"<tr><td>row {r}</td><td>{(i + 1) * 1000 + r * 37}</td></tr>" for r in range(12))
        paras = "".join(f"<p>Paragraph {p} of page {i}: " + "lorem ipsum dolor sit amet " * 12 + "</p>"
                        for p in range(6))
        html = (f"<!doctype html><html><head><title>Page {i}</title><style>body{{font:18px sans-serif;"
                f"margin:40px;max-width:1000px}}h1{{color:#246}}td{{padding:4px 20px}}</style></head><body>"
                f"<h1>Report {i}</h1>{paras}<table>{rows}</table></body></html>")
        path = folder / f"page{i:02d}.html"
        path.write_text(html)
        paths.append(path)
    return paths


def capture_ours(path: Path, options: IngestOptions, tools) -> None:
    """One page through docvision's web ingestor (the run's one browser), all segments captured."""
    with ingest.load(str(path), options, tools) as document:
        for page in document.pages():
            assert page.size[0] == int(WIDTH * SCALE)


def capture_baseline(executable: str, path: Path, shot: Path) -> None:
    """One page through its own ``chromium --headless --screenshot`` process."""
    flags = [*browser.launch_flags(), "--headless", f"--window-size={WIDTH},{HEIGHT}",
             f"--force-device-scale-factor={SCALE:g}"]
    subprocess.run([executable, *flags, f"--screenshot={shot}", path.resolve().as_uri()],
                   check=True, capture_output=True, timeout=120)
    if not shot.is_file():
        raise SystemExit(f"baseline produced no screenshot for {path}")


def measure(paths: list[Path], out: Path) -> tuple[float, float]:
    """Both ways, page by page interleaved so a change in machine load hits both alike.

    docvision's time includes starting its one browser; the baseline pays a start per page.
    """
    options = IngestOptions(viewport_width=WIDTH, device_scale_factor=SCALE)
    executable = browser.find_browser()
    from docvision.ingest.tools import Tools

    started = time.perf_counter()
    with Tools(options) as tools:
        tools.browser()
        mine = time.perf_counter() - started
        base = 0.0
        for index, path in enumerate(paths):
            started = time.perf_counter()
            capture_ours(path, options, tools)
            mine += time.perf_counter() - started
            started = time.perf_counter()
            capture_baseline(executable, path, out / f"shot{index:02d}.png")
            base += time.perf_counter() - started
    return mine, base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = make_pages(folder, args.pages)
        measure(paths[:1], folder)  # warm the disk cache for a fair first page
        mine, base = measure(paths, folder)
    print(f"pages: {len(paths)}  viewport {WIDTH}x{HEIGHT} CSS px, scale {SCALE:g}")
    print(f"docvision (one reused browser, full page + anchors): {mine:.2f} s ({mine / len(paths):.3f} s/page)")
    print(f"baseline (chromium --headless --screenshot per page): {base:.2f} s ({base / len(paths):.3f} s/page)")
    print(f"ratio baseline/docvision: {base / mine:.2f}x")


if __name__ == "__main__":
    main()
