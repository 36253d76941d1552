"""Benchmark: render-bound folders with 1..N render workers, against N separate docvision processes on split
inputs, and on a local Ray cluster.

    python3 tests/benchmarks/bench_workers.py [--kinds pdf,office,web] [--max-workers 4] [--hd 55]
                                              [--pdfs 32 --pages 30] [--ray] [--repeat 1]

Makes its folders in a temporary directory: ``pdf`` (PDFs of text pages, 32 x 30 by default, as the issue
measured), ``office`` (workbooks of a few sheets) and ``web`` (local HTML pages), then renders each with
``docvision render DIR --json --no-cache --ocr never --hd HD``:

  - ``--workers N`` for N = 1 .. --max-workers (the curve: where it stops growing);
  - N separate ``--workers 1`` processes, each on its own share of the files, started together (what a user
    splitting the folder by hand gets; the baseline for --workers N);
  - with --ray, ``--ray --ray-address`` a Ray started once for the benchmark (``ray start --head`` with the
    machine's cores), so Ray's own start is not counted; its start is printed apart.

Prints seconds, sources/s and pages/s, each --workers N against --workers 1 and against N separate processes.
Targets on a 2-core machine: --workers 2 at least 1.5x --workers 1 for PDFs, within 10% of two processes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def make_pdfs(folder: Path, count: int, pages: int) -> None:
    import pymupdf

    folder.mkdir()
    for n in range(count):
        document = pymupdf.open()
        for p in range(pages):
            page = document.new_page(width=612, height=792)
            for line in range(30):
                page.insert_text((54, 60 + line * 22), f"Report {n}, page {p + 1}, line {line}: revenue "
                                 f"{(n * 31 + p * 7 + line) % 997} thousand, margin {line % 17}.{p % 10}%", fontsize=10)
        document.save(folder / f"report-{n:02d}.pdf")


def make_workbooks(folder: Path, count: int) -> None:
    from openpyxl import Workbook

    folder.mkdir()
    for n in range(count):
        book = Workbook()
        for s in range(3):
            sheet = book.active if s == 0 else book.create_sheet()
            sheet.title = f"Region {s + 1}"
            sheet.append(["Month", "Revenue", "Cost", "Margin"])
            for month in range(1, 40):
                sheet.append([f"2026-{month % 12 + 1:02d}", 1000 + n * 10 + month, 700 + month, 0.3])
        book.save(folder / f"book-{n:02d}.xlsx")


def make_pages(folder: Path, count: int) -> None:
    folder.mkdir()
    for n in range(count):
        rows = "".join(f"<tr><td>Item {i}</td><td>{(n * 13 + i) % 500}</td></tr>" for i in range(120))
        (folder / f"page-{n:02d}.html").write_text(
            f"<html><body style='font-family:sans-serif'><h1>Dashboard {n}</h1><p>{'Quarterly numbers. ' * 60}</p>"
            f"<table border=1>{rows}</table></body></html>")


def render(files: list[Path], hd: int, extra: list[str], env: dict) -> tuple[float, int, int]:
    """(seconds, sources, pages) of one ``docvision render`` over ``files``."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "docvision", "render", *map(str, files), "--json", "--no-cache",
                           "--ocr", "never", "--hd", str(hd), *extra], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    records = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or len(records) != len(files):
        raise SystemExit(f"render failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, len(records), sum(len(r["pages"]) for r in records)


def split(files: list[Path], hd: int, parts: int, env: dict) -> float:
    """Seconds until ``parts`` separate processes, each on its own share of the files, have all finished."""
    shares = [files[n::parts] for n in range(parts)]
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "docvision", "render", *map(str, share), "--json", "--no-cache",
                               "--ocr", "never", "--hd", str(hd), "--workers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env) for share in shares]
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit(proc.stderr.read().decode()[-2000:])
    return time.perf_counter() - started


def start_ray(cpus: int, env: dict) -> tuple[str, float]:
    import socket

    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.perf_counter()
    done = subprocess.run([ray, "start", "--head", f"--num-cpus={cpus}", f"--port={port}", "--include-dashboard=false",
                           "--disable-usage-stats"], capture_output=True, text=True,
                          env=env)
    if done.returncode != 0:
        raise SystemExit(f"ray start failed: {done.stderr[-2000:]}")
    return f"127.0.0.1:{port}", time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="pdf,office,web")
    parser.add_argument("--max-workers", type=int, default=max(2, len(os.sched_getaffinity(0))))
    parser.add_argument("--hd", type=int, default=55)
    parser.add_argument("--pdfs", type=int, default=32)
    parser.add_argument("--pages", type=int, default=30)
    parser.add_argument("--others", type=int, default=8, help="workbooks and web pages of each kind")
    parser.add_argument("--ray", action="store_true")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DOCVISION_CACHE_DIR": f"{tmp}/cache", "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
        folders = {"pdf": Path(tmp) / "pdf", "office": Path(tmp) / "office", "web": Path(tmp) / "web"}
        makers = {"pdf": lambda f: make_pdfs(f, args.pdfs, args.pages), "office": lambda f: make_workbooks(f, args.others),
                  "web": lambda f: make_pages(f, args.others)}
        address = None
        if args.ray:
            address, ray_start = start_ray(cores, env)
            print(f"ray start --head ({cores} CPUs): {ray_start:.1f} s, not counted below")
        try:
            for kind in args.kinds.split(","):
                makers[kind](folders[kind])
                files = sorted(folders[kind].iterdir())
                measure(kind, files, args, env, address)
        finally:
            if address:
                subprocess.run([shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray", "stop", "--force"],
                               capture_output=True, env=env)
    print(f"(this machine: {cores} cores; load average now {os.getloadavg()[0]:.2f})")


def measure(kind: str, files: list[Path], args, env: dict, address: str | None) -> None:
    median = lambda run: statistics.median(run() for _ in range(args.repeat))  # noqa: E731
    base, sources, pages = render(files, args.hd, ["--workers", "1"], env)
    base = median(lambda: render(files, args.hd, ["--workers", "1"], env)[0]) if args.repeat > 1 else base
    print(f"\n{kind}: {sources} sources, {pages} pages at HD-{args.hd}")
    print(f"  {'run':28} {'seconds':>8} {'sources/s':>10} {'pages/s':>9} {'vs 1 worker':>12} {'vs split':>9}")
    line = lambda name, s, split_s=None: print(  # noqa: E731
        f"  {name:28} {s:8.2f} {sources / s:10.2f} {pages / s:9.1f} {base / s:11.2f}x"
        + (f" {split_s / s:8.2f}x" if split_s else ""))
    line("--workers 1", base)
    for n in range(2, args.max_workers + 1):
        seconds = median(lambda: render(files, args.hd, ["--workers", str(n)], env)[0])
        apart = median(lambda: split(files, args.hd, n, env))
        line(f"--workers {n}", seconds, apart)
        line(f"{n} separate processes", apart)
    if address:
        seconds = median(lambda: render(files, args.hd, ["--ray", "--ray-address", address], env)[0])
        line("--ray (local cluster)", seconds)


if __name__ == "__main__":
    main()
