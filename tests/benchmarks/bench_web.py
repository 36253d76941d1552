"""Benchmark: capture 20 local pages as a batch with docvision's one reused Chromium against one
``chromium --headless --screenshot`` process per page (same flags, same viewport), in the same run.

    python3 tests/benchmarks/bench_web.py [--pages 20] [--window N] [--rounds 2]

docvision announces the batch (``Tools.expect``), so the next pages are captured while the current one
is used, at most ``--window`` at once (1: one page at a time). It does more per page than the baseline
(settling, a scroll-through for lazy content, word anchors, the full page rather than the first
screen), so the ratio understates the saving. Each round runs both ways over the whole batch, in
alternating order (ours first, then the baseline first), so a change in machine load hits both alike.
Prints both wall times, the ratio baseline / docvision and the load average while it ran.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from docvision import ingest  # noqa: E402
from docvision.document import IngestOptions  # noqa: E402
from docvision.ingest.web import ahead, browser  # noqa: E402

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


def run_ours(paths: list[Path], window: int) -> float:
    """The batch through docvision's web ingestor (the run's one browser, started here), every
    segment of every page drawn; the batch is announced first, as the run does."""
    from docvision.ingest.tools import Tools

    options = IngestOptions(viewport_width=WIDTH, device_scale_factor=SCALE)
    ahead.WINDOW = window
    started = time.perf_counter()
    with Tools(options) as tools:
        tools.expect([str(p) for p in paths])
        for path in paths:
            with ingest.load(str(path), options, tools) as document:
                for page in document.pages():
                    assert page.render(*page.size).size[0] == int(WIDTH * SCALE)
    return time.perf_counter() - started


def run_baseline(executable: str, paths: list[Path], out: Path) -> float:
    """Each page through its own ``chromium --headless --screenshot`` process, with the flags the
    baseline of issue 14 had (docvision's launch flags of then, without the features it turns off)."""
    flags = [*browser.LAUNCH_FLAGS, *(["--no-sandbox"] if os.geteuid() == 0 else []), "--headless",
             f"--window-size={WIDTH},{HEIGHT}", f"--force-device-scale-factor={SCALE:g}"]
    started = time.perf_counter()
    for index, path in enumerate(paths):
        shot = out / f"shot{index:02d}.png"
        subprocess.run([executable, *flags, f"--screenshot={shot}", path.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)
        if not shot.is_file():
            raise SystemExit(f"baseline produced no screenshot for {path}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--window", type=int, default=ahead.WINDOW, help="captures in flight at once")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of both ways, in alternating order")
    args = parser.parse_args()
    executable = browser.find_browser()
    mine = base = 0.0
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = make_pages(folder, args.pages)
        run_ours(paths[:2], args.window)  # warm the disk cache for both
        run_baseline(executable, paths[:1], folder)
        for round_ in range(args.rounds):
            if round_ % 2 == 0:
                mine += run_ours(paths, args.window)
                base += run_baseline(executable, paths, folder)
            else:
                base += run_baseline(executable, paths, folder)
                mine += run_ours(paths, args.window)
            loads.append(os.getloadavg()[0])
    count = args.pages * args.rounds
    print(f"pages: {args.pages} x {args.rounds} rounds, viewport {WIDTH}x{HEIGHT} CSS px, scale {SCALE:g}")
    print(f"docvision (one browser, batch announced, window {args.window}, full page + anchors): "
          f"{mine:.2f} s ({mine / count:.3f} s/page)")
    print(f"baseline (chromium --headless --screenshot per page): {base:.2f} s ({base / count:.3f} s/page)")
    print(f"ratio baseline/docvision: {base / mine:.2f}x")
    print(f"1-minute load average during the run: {min(loads):.2f}-{max(loads):.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
