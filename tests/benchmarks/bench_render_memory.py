"""Benchmark: `docvision render` keeps memory flat however long the PDF is.

Generates a PDF of N text pages (default 300) and one of its first 6 pages, then runs
`python -m docvision render --json` on each in a child process and reads the child's peak RSS
(resource.getrusage RUSAGE_CHILDREN, one child per measurement). With --out, the views of every
page are written too. Prints both peaks and their ratio: flat memory means a ratio near 1.

Run: python3 tests/benchmarks/bench_render_memory.py [--pages 300] [--out]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make_pdf(path: Path, pages: int) -> None:
    import pymupdf

    doc = pymupdf.open()
    for number in range(1, pages + 1):
        page = doc.new_page()
        for line in range(40):
            page.insert_text((50, 60 + line * 17), f"Page {number}, line {line}: revenue $1,234,{line:03d}.89")
    doc.save(path)


# A wrapper process per measurement, so RUSAGE_CHILDREN holds that one run's peak and nothing else.
WRAPPER = ("import resource, subprocess, sys, time\n"
           "t = time.perf_counter()\n"
           "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, time.perf_counter() - t, code)\n")


def measure(args: list[str]) -> tuple[float, float]:
    """Peak RSS (MB) and wall seconds of one `docvision render --json ARGS` run."""
    command = [sys.executable, "-c", WRAPPER, sys.executable, "-m", "docvision", "render", "--json", *args]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    if out[2] != "0":
        raise SystemExit(f"render failed (exit {out[2]}): {args}")
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--out", action="store_true", help="also write every page's views")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        long_pdf, short_pdf = Path(tmp) / "long.pdf", Path(tmp) / "short.pdf"
        make_pdf(long_pdf, options.pages)
        make_pdf(short_pdf, 6)
        extra = ["--out", str(Path(tmp) / "views")] if options.out else []
        short_peak, short_s = measure([str(short_pdf), *extra])
        long_peak, long_s = measure([str(long_pdf), *extra])
    print(f"6 pages:    peak RSS {short_peak:7.1f} MB  ({short_s:.1f} s)")
    print(f"{options.pages} pages: peak RSS {long_peak:7.1f} MB  ({long_s:.1f} s, "
          f"{1000 * long_s / options.pages:.0f} ms/page)")
    print(f"ratio long/short peak RSS: {long_peak / short_peak:.2f} (1.00 = flat)")


if __name__ == "__main__":
    main()
