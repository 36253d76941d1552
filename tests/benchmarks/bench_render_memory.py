"""Benchmark: `docvision render` keeps memory flat however long the PDF is.

Generates a PDF of N text pages (default 300) and one of its first 6 pages, then runs
`python -m docvision render --json` on each in a child process. PDF pages are read and drawn in a
worker process of docvision's, so memory is measured two ways: the peak of any one process
(resource.getrusage RUSAGE_CHILDREN of a wrapper: docvision and its reaped worker) and the peak of
docvision and its workers together (their RSS summed, sampled every 20 ms from /proc). With --out,
the views of every page are written too. Prints both peaks and their ratios: flat memory means
ratios near 1.

Run: python3 tests/benchmarks/bench_render_memory.py [--pages 300] [--out]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
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


# A wrapper process per measurement, so RUSAGE_CHILDREN holds that one run's peak and nothing else;
# it also samples the RSS of docvision and its children (the PDF worker) together.
WRAPPER = """
import os, resource, subprocess, sys, time

def rss(pid):
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0

def tree(pid):
    found = [pid]
    for task in os.listdir(f"/proc/{pid}/task") if os.path.isdir(f"/proc/{pid}/task") else []:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [p for child in fh.read().split() for p in tree(int(child))]
        except OSError:
            pass
    return found

started = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
together = 0
while proc.poll() is None:
    together = max(together, sum(rss(pid) for pid in tree(proc.pid)))
    time.sleep(0.02)
elapsed = time.perf_counter() - started
one = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(one, together / 2**20, elapsed, proc.returncode)
"""


def measure(args: list[str]) -> tuple[float, float, float]:
    """Peak RSS of one process and of all together (MB), and wall seconds, of one `docvision render
    --json ARGS` run."""
    command = [sys.executable, "-c", WRAPPER, sys.executable, "-m", "docvision", "render", "--json", *args]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    if out[3] != "0":
        raise SystemExit(f"render failed (exit {out[3]}): {args}")
    return float(out[0]), float(out[1]), float(out[2])


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
        short_one, short_all, short_s = measure([str(short_pdf), *extra])
        long_one, long_all, long_s = measure([str(long_pdf), *extra])
    print(f"6 pages:    peak RSS {short_one:7.1f} MB one process, {short_all:7.1f} MB all together  "
          f"({short_s:.1f} s)")
    print(f"{options.pages} pages: peak RSS {long_one:7.1f} MB one process, {long_all:7.1f} MB all together  "
          f"({long_s:.1f} s, {1000 * long_s / options.pages:.0f} ms/page)")
    print(f"ratio long/short peak RSS: {long_one / short_one:.2f} one process, {long_all / short_all:.2f} "
          "all together (1.00 = flat)")


if __name__ == "__main__":
    main()
