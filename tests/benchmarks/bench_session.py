"""Benchmark: the cost of a second question in one docvision.Session against a second docvision process.

    python3 tests/benchmarks/bench_session.py [--family qwen2_5_vl] [--hd 9] [--max-new-tokens 8] [--repeat 3]

Builds a tiny random-weight model (tests/tinymodels.py) and asks two questions about the same page of
samples/report.pdf, three ways, timing only the second question (wall clock, from the call to its record):

  1. a second process: ``docvision ask report.pdf Q2 --pages 1 --json`` (Python start, imports, model
     load, the page from the render cache, encoding, answer);
  2. the same Session without page-encoding reuse (``prefix_cache_mb=0``): model and tools kept;
  3. the same Session as it is: model and tools kept, the page's encoding reused.

Prints the median of ``--repeat`` rounds and the ratios against (1). The model is tiny, so the numbers
are the fixed costs around a model (process start, imports, load, rendering), not a model's own speed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

QUESTIONS = ("What was East Q4 revenue?", "Which region grew fastest?")


def second_process(report: str, model: str, hd: int, tokens: int, env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "docvision", "ask", report, QUESTIONS[1], "--pages", "1",
                           "--model", model, "--hd", str(hd), "--max-new-tokens", str(tokens), "--json"],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return time.perf_counter() - started


def in_session(report: str, model: str, hd: int, tokens: int, prefix_mb: int) -> tuple[float, int]:
    import docvision

    with docvision.Session(model=model, hd=hd, max_new_tokens=tokens, prefix_cache_mb=prefix_mb) as session:
        list(session.ask(report, QUESTIONS[0], pages="1"))
        started = time.perf_counter()
        record = list(session.ask(report, QUESTIONS[1], pages="1"))[0]
        took = time.perf_counter() - started
    assert record["status"] == "ok", record["error"]
    return took, record["usage"]["cached_prefix_tokens"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="qwen2_5_vl")
    parser.add_argument("--hd", type=int, default=9)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from tests.tinymodels import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DOCVISION_CACHE_DIR"] = str(Path(tmp) / "cache")
        os.environ["HF_HUB_OFFLINE"] = "1"
        model = str(build_tiny_model(args.family, Path(tmp) / "model"))
        report = str(ROOT / "samples" / "report.pdf")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        second_process(report, model, args.hd, args.max_new_tokens, env)  # fills the render cache
        rounds = {"second process": [], "same Session, no reuse": [], "same Session": []}
        reused = 0
        for _ in range(args.repeat):
            rounds["second process"].append(second_process(report, model, args.hd, args.max_new_tokens, env))
            rounds["same Session, no reuse"].append(in_session(report, model, args.hd, args.max_new_tokens, 0)[0])
            took, reused = in_session(report, model, args.hd, args.max_new_tokens, 2048)
            rounds["same Session"].append(took)
    base = statistics.median(rounds["second process"])
    print(f"second question about page 1 of samples/report.pdf, tiny {args.family}, HD-{args.hd}, "
          f"{args.max_new_tokens} new tokens, median of {args.repeat}:")
    for name, times in rounds.items():
        median = statistics.median(times)
        print(f"  {name:24} {median:7.3f} s   {base / median:6.1f}x faster than a second process")
    print(f"  prompt tokens reused by the second question in one Session: {reused}")


if __name__ == "__main__":
    main()
