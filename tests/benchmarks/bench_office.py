"""Benchmark: rendering 10 workbooks through our office ingestor against 10 plain soffice calls, same run.

Generates 10 workbooks (a 60-row table with currency and percent formats, a merged heading and a bar
chart each, plus a second sheet), then times:

  soffice x10      ten plain `soffice --headless --convert-to pdf FILE` runs, one after the other,
                   sharing one user profile created before timing (as a user's own profile would be);
                   PDF only, no pixels;
  warm, one by one docvision.ingest.office.load per file through one Tools (zip checks, openpyxl
                   structure, the warm LibreOffice laying the sheets out, PDF pages) and every page
                   drawn at its HD-25 canvas size: the whole path to what the model sees, LibreOffice's
                   one start included;
  warm, batch      the same after ``tools.expect(files)`` (what a batch run says first: LibreOffice
                   starts at once, while the first workbook's structure is read);
  per-call, batch  the path without UNO (DOCVISION_UNO_PYTHON=none) after ``expect``: up to 16 files
                   per soffice start, as every batch ran before the warm converter.

Prints seconds and workbooks/s for each and the ratios against the plain soffice calls.
Run: python3 tests/benchmarks/bench_office.py [--files 10] [--rows 60]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from docvision import views  # noqa: E402
from docvision.ingest.office import soffice as libreoffice  # noqa: E402
from docvision.document import IngestOptions  # noqa: E402
from docvision import ingest  # noqa: E402
from docvision.tiling import plan  # noqa: E402


def make_workbook(path: Path, rows: int, seed: int) -> None:
    """A realistic small report workbook: formatted table, merged heading, bar chart, notes sheet."""
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference

    wb = Workbook()
    ws = wb.active
    ws.title = "Report"
    ws.merge_cells("A1:D1")
    ws["A1"] = f"Regional report {seed}"
    ws.append(["Region", "Revenue", "Margin", "Units"])
    for r in range(rows):
        ws.append([f"Region {r}", 1000.0 * ((r * 37 + seed * 11) % 997), ((r + seed) % 40) / 100, r * 13 + seed])
    for r in range(3, rows + 3):
        ws.cell(r, 2).number_format = '"$"#,##0.00'
        ws.cell(r, 3).number_format = "0.0%"
    for column, width in zip("ABCD", (14, 16, 10, 10)):
        ws.column_dimensions[column].width = width
    chart = BarChart()
    chart.title = f"Revenue {seed}"
    chart.add_data(Reference(ws, min_col=2, min_row=2, max_row=min(rows + 2, 14)), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=1, min_row=3, max_row=min(rows + 2, 14)))
    ws.add_chart(chart, "F2")
    notes = wb.create_sheet("Notes")
    notes.column_dimensions["A"].width = 60
    for line in range(20):
        notes.append([f"Note {line}: figures are unaudited and in US dollars."])
    wb.save(path)


def plain_soffice(files: list[Path], folder: Path) -> float:
    soffice = libreoffice.find_soffice()
    profile = (folder / "profile").as_uri()
    command = [soffice, f"-env:UserInstallation={profile}", "--headless", "--convert-to", "pdf", "--outdir"]
    # Create the profile first, untimed: a user's plain soffice runs on a profile that already exists.
    subprocess.run([*command, str(folder / "warm"), str(files[0])], capture_output=True, timeout=300, check=True)
    started = time.perf_counter()
    for path in files:
        subprocess.run([*command, str(folder / "plain"), str(path)], capture_output=True, timeout=300, check=True)
    elapsed = time.perf_counter() - started
    assert len(list((folder / "plain").glob("*.pdf"))) == len(files)
    return elapsed


def ours(files: list[Path], batch: bool, warm: bool = True) -> tuple[float, int]:
    """Seconds to load every workbook and draw every page at HD-25; and how many pages were drawn."""
    from docvision.ingest.office import warm as uno
    from docvision.ingest.tools import Tools

    os.environ[uno.ENV_PYTHON] = "" if warm else "none"
    options = IngestOptions()
    started = time.perf_counter()
    sheets = 0
    with Tools(options) as tools:
        if batch:
            tools.expect([str(p) for p in files])
        for path in files:
            with ingest.load(str(path), options, tools) as document:
                for page in document.pages():
                    views.canvas(page, plan(page.size, 25))
                    sheets += 1
    return time.perf_counter() - started, sheets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--rows", type=int, default=60)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-office-"))
    try:
        files = []
        for n in range(args.files):
            files.append(folder / f"book{n:02d}.xlsx")
            make_workbook(files[-1], args.rows, n)
        ours([files[0]], batch=False)  # untimed: imports and fonts, like the plain warm-up
        baseline = plain_soffice(files, folder)
        single, pages = ours(files, batch=False)
        batched, _ = ours(files, batch=True)
        per_call, _ = ours(files, batch=True, warm=False)
        n = len(files)
        print(f"{n} workbooks ({args.rows} rows, a chart, 2 sheets each; {pages} pages drawn at HD-25)")
        print(f"  soffice --convert-to pdf x{n}: {baseline:7.2f} s  {n / baseline:5.2f} workbooks/s  (PDF only)")
        for name, seconds in (("warm, one file at a time:", single), ("warm, batch (expect):", batched),
                              ("per-call, batch (no UNO):", per_call)):
            print(f"  {name:<29} {seconds:7.2f} s  {n / seconds:5.2f} workbooks/s  ratio {baseline / seconds:.2f}x")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
