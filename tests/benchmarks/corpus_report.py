"""Classify how docvision handles every file of the real-file corpus, next to what a reference renderer does.

In: the corpus folder corpus_build.py fills (default tests/benchmarks/corpus/). For each file, one
``docvision render FILE --json`` process (a fresh process per file, so a crash or a hang is that
file's alone) and, once per file (kept in FOLDER/.reference.json), a reference renderer:
pdftoppm for PDFs, ``soffice --convert-to pdf`` then pdftoppm for office files, GraphicsMagick
(``gm``) or ImageMagick (``magick``) for images. Out: a Markdown table of outcomes per kind of file,
and the list of files docvision refuses although the reference draws content, with docvision's message.

Outcomes: ok (exit 0), partial (pages drawn, some damaged: exit 1 with damaged pages), error (one clean
error record), internal (an error record of kind "internal": a bug), traceback (a Python traceback on
stderr, or no record at all), hang (still running after --wall seconds), memory (killed for memory, an
out_of_memory record, or a peak over 4 GiB in docvision and the processes it waited for). The reference
says: draws (some page has ink), blank, refuses, or n/a.

Run: python3 tests/benchmarks/corpus_report.py [FOLDER] [--code DIR] [--json results.jsonl]
(--code runs another copy of docvision, e.g. an unpacked older commit, to compare before and after.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUTCOMES = ("ok", "partial", "error", "internal", "traceback", "hang", "memory")
KINDS = {".pdf": "pdf", ".png": "image", ".jpg": "image", ".jpeg": "image", ".tif": "image", ".tiff": "image",
         ".bmp": "image", ".gif": "image", ".webp": "image"}
MEMORY_BYTES = 4 << 30  # a docvision process past this is counted as "memory" even if it finished


def kind(path: Path) -> str:
    return KINDS.get(path.suffix.lower(), "office")


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


# ---- docvision -------------------------------------------------------------------------------------

def run_docvision(path: Path, code: Path, timeout: float, wall: float) -> dict:
    """One ``docvision render`` process over ``path``: its outcome, message and peak memory."""
    with tempfile.TemporaryDirectory(prefix="corpus-") as home:
        env = {**os.environ, "PYTHONPATH": str(code), "DOCVISION_CACHE_DIR": home, "NO_COLOR": "1",
               "XDG_CONFIG_HOME": home}
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "docvision", "render", str(path), "--json", "--no-cache",
                                 "--timeout", f"{timeout:g}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, cwd=home, start_new_session=True)
        out: list[bytes] = []
        err: list[bytes] = []
        readers = [threading.Thread(target=lambda s=stream, b=buffer: b.append(s.read()), daemon=True)
                   for stream, buffer in ((proc.stdout, out), (proc.stderr, err))]
        for reader in readers:
            reader.start()
        hang = threading.Event()

        def hung_up() -> None:
            hang.set()
            _kill_group(proc.pid)

        killer = threading.Timer(wall, hung_up)
        killer.start()
        # wait4, not communicate: the peak memory of docvision and of what it waited for (its PDF worker,
        # LibreOffice), which only the kernel's account of the reaped process gives.
        _, status, usage = os.wait4(proc.pid, 0)
        killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        _kill_group(proc.pid)  # LibreOffice or a PDF worker left behind
        for reader in readers:
            reader.join()
        stdout, stderr, hung = b"".join(out), b"".join(err), hang.is_set()
        seconds = time.monotonic() - started
    peak = usage.ru_maxrss * 1024  # Linux counts it in KiB
    text = stderr.decode("utf-8", "replace")
    records = [json.loads(line) for line in stdout.decode("utf-8", "replace").splitlines() if line.startswith("{")]
    record = records[0] if records else None
    result = {"rc": proc.returncode, "seconds": round(seconds, 1), "peak_mb": peak >> 20,
              "stderr": text.strip()[-600:]}
    result.update(_outcome(record, proc.returncode, text, hung))
    if peak > MEMORY_BYTES and result["outcome"] not in ("hang", "memory"):
        result.update(outcome="memory", message=f"peak memory {peak >> 20} MB (limit {MEMORY_BYTES >> 20} MB); "
                                                 f"it ended {result['outcome']}")
    return result


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _outcome(record: dict | None, rc: int, stderr: str, hung: bool) -> dict:
    if hung:
        return {"outcome": "hang", "message": "still running after the wall limit"}
    if "Traceback (most recent call last)" in stderr or record is None:
        how = "killed by SIGKILL" if rc == -9 else f"exit status {rc}"
        return {"outcome": "memory" if rc == -9 else "traceback", "message": stderr.strip()[-300:] or how}
    error = record.get("error") or {}
    document = record.get("document") or {}
    if record.get("status") == "ok":
        return {"outcome": "ok", "message": "; ".join(record.get("warnings") or [])[:300],
                "pages": document.get("page_count")}
    if document.get("damaged_pages"):
        return {"outcome": "partial", "message": error.get("message", ""), "pages": document.get("page_count")}
    kind_ = error.get("kind")
    outcome = "internal" if kind_ == "internal" else "memory" if kind_ == "out_of_memory" else "error"
    return {"outcome": outcome, "message": f"[{kind_}] {error.get('message', '')}"}


# ---- the reference renderer ------------------------------------------------------------------------

def _inked(pngs: list[Path]) -> bool:
    """True when any of the pictures has a pixel that is not (near) white."""
    from PIL import Image

    for png in pngs:
        with Image.open(png) as image:
            low = image.convert("L").getextrema()[0]
        if low < 235:
            return True
    return False


def _pdftoppm(pdf: Path, out: Path, timeout: float) -> str:
    proc = subprocess.run(["pdftoppm", "-r", "20", "-f", "1", "-l", "3", "-png", str(pdf), str(out / "p")],
                          capture_output=True, timeout=timeout)
    pngs = sorted(out.glob("p*.png"))
    if not pngs:
        return "refuses"
    return "draws" if _inked(pngs) else "blank"


def reference(path: Path, timeout: float) -> str:
    """What an ordinary viewer makes of the file: draws, blank, refuses or n/a (no such viewer here)."""
    with tempfile.TemporaryDirectory(prefix="corpus-ref-") as folder:
        out = Path(folder)
        try:
            if kind(path) == "pdf":
                return _pdftoppm(path, out, timeout) if shutil.which("pdftoppm") else "n/a"
            if kind(path) == "image":
                return _image_reference(path, out, timeout)
            return _office_reference(path, out, timeout)
        except subprocess.TimeoutExpired:
            return "refuses"


def _image_reference(path: Path, out: Path, timeout: float) -> str:
    # ImageMagick by its own name only: a bare `convert` on PATH may be something else.
    if shutil.which("magick"):
        command = ["magick", f"{path}[0]", str(out / "p.png")]
    elif shutil.which("gm"):
        command = ["gm", "convert", f"{path}[0]", str(out / "p.png")]
    else:
        return "n/a"
    subprocess.run(command, capture_output=True, timeout=timeout)
    png = out / "p.png"
    if not png.is_file() or png.stat().st_size == 0:
        return "refuses"
    return "draws" if _inked([png]) else "blank"


def _office_reference(path: Path, out: Path, timeout: float) -> str:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None or not shutil.which("pdftoppm"):
        return "n/a"
    staged = out / ("in" + path.suffix.lower())
    shutil.copyfile(path, staged)
    proc = subprocess.Popen([soffice, f"-env:UserInstallation={(out / 'profile').as_uri()}", "--headless",
                             "--norestore", "--convert-to", "pdf", "--outdir", str(out / "pdf"), str(staged)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=timeout)
    finally:
        _kill_group(proc.pid)
        proc.wait()
    pdf = out / "pdf" / "in.pdf"
    if not pdf.is_file() or pdf.stat().st_size == 0:
        return "refuses"
    (out / "png").mkdir()
    return _pdftoppm(pdf, out / "png", timeout)


def references(paths: list[Path], folder: Path, timeout: float) -> dict[str, str]:
    """The reference verdict per file, kept in FOLDER/.reference.json by content hash (they never change)."""
    cache_file = folder / ".reference.json"
    cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    verdicts = {}
    for path in paths:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in cache:
            cache[digest] = reference(path, timeout)
            cache_file.write_text(json.dumps(cache, indent=0))
        verdicts[str(path)] = cache[digest]
    return verdicts


# ---- the report ------------------------------------------------------------------------------------

def table(results: list[dict]) -> str:
    """Outcomes (rows) per kind of file (columns) as Markdown."""
    kinds = ["pdf", "office", "image"]
    counts = Counter((r["kind"], r["outcome"]) for r in results)
    lines = ["| outcome | " + " | ".join(kinds) + " | all |", "|---|" + "---|" * (len(kinds) + 1)]
    for outcome in OUTCOMES:
        row = [counts[(k, outcome)] for k in kinds]
        lines.append(f"| {outcome} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    totals = [sum(counts[(k, o)] for o in OUTCOMES) for k in kinds]
    lines.append("| files | " + " | ".join(map(str, totals)) + f" | {sum(totals)} |")
    return "\n".join(lines)


def disagreements(results: list[dict]) -> list[str]:
    """Files docvision does not draw although the reference draws content."""
    return [f"- {r['file']}: {r['outcome']}: {r['message']}" for r in results
            if r["reference"] == "draws" and r["outcome"] not in ("ok", "partial")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=HERE / "corpus")
    parser.add_argument("--code", type=Path, default=ROOT, help="the docvision source tree to run (default: this one)")
    parser.add_argument("--timeout", type=float, default=60.0, help="docvision's --timeout")
    parser.add_argument("--wall", type=float, default=300.0, help="seconds before a file counts as a hang")
    parser.add_argument("--json", type=Path, help="write one result per line here")
    parser.add_argument("--only", help="only files whose path contains this")
    args = parser.parse_args()
    paths = [p for p in files(args.folder) if not args.only or args.only in str(p)]
    verdicts = references(paths, args.folder, args.timeout)
    results = []
    for number, path in enumerate(paths, 1):
        result = {"file": str(path.relative_to(args.folder)), "kind": kind(path), "reference": verdicts[str(path)],
                  **run_docvision(path, args.code, args.timeout, args.wall)}
        results.append(result)
        print(f"[{number}/{len(paths)}] {result['outcome']:9} ref={result['reference']:7} {result['file']}: "
              f"{result['message'][:160]}", file=sys.stderr, flush=True)
        if args.json:
            with open(args.json, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(result) + "\n")
    print(table(results))
    if results:
        top = max(results, key=lambda r: r["peak_mb"])
        print(f"\nPeak memory (docvision and what it waited for): median "
              f"{sorted(r['peak_mb'] for r in results)[len(results) // 2]} MB, most {top['peak_mb']} MB "
              f"({top['file']})")
    refused = disagreements(results)
    print(f"\nNot drawn although the reference draws content: {len(refused)}")
    print("\n".join(refused))


if __name__ == "__main__":
    main()
