"""Benchmarks of the batch runner and the render cache, ratios measured in one run (issue 6).

    python3 tests/benchmarks/bench_batch.py [--sources 20] [--big 300] [--small 10]

Prints:
  1. overlap: wall time of a batch of N mixed sources (summarize, a tiny random-weight Qwen2.5-VL)
     against the sum of its per-source render and model times -- what rendering ahead saves;
  2. memory: peak resident memory of ``ask`` on a BIG-page PDF against a SMALL-page one, each in a fresh
     process (and the growth over the process after the model is loaded) -- must not grow with pages;
  3. cache: the second question on the BIG-page PDF against the first (render time and wall time),
     with the question routed to another page, and the same question again.
The model answers nonsense; what is measured is rendering, routing, caching and the model calls' cost.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TERMS = ("axolotl", "quasar", "meridian", "tamarind")


def make_sources(folder: Path, count: int) -> list[str]:
    """A mix like a real inbox: multi-page text PDFs, a tall poster, photos."""
    from PIL import Image, ImageDraw

    from tests.scripted import FILLER, make_pdf

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        if i % 4 == 3:
            path = folder / f"s{i:02d}.png"
            image = Image.new("RGB", (1200, 3000) if i % 8 == 3 else (2400, 1600), (250, 250, 245))
            draw = ImageDraw.Draw(image)
            for y in range(0, image.height, 40):
                draw.text((40, y), f"poster {i} line {y} " + FILLER[:60], fill=(20, 20, 20))
            image.save(path)
        else:
            path = make_pdf(folder / f"s{i:02d}.pdf", [f"Report {i} page {p}. " + FILLER * 6 for p in range(1 + i % 5)])
        paths.append(str(path))
    return paths


def big_pdf(path: Path, pages: int) -> Path:
    """A long report; each TERMS word sits on exactly one page."""
    from tests.scripted import FILLER, make_pdf

    texts = [f"Section {p}. " + FILLER * 5 for p in range(1, pages + 1)]
    for k, term in enumerate(TERMS):
        where = (k + 1) * pages // (len(TERMS) + 1)
        texts[where] += f" The {term} figure for this year is {100 + k}."
    return make_pdf(path, texts)


def overlap(model: Path | None, count: int, hd: int, delay: float = 0.0) -> dict:
    """One batch: the tiny model, or (``model`` None) a scripted one sleeping ``delay`` s per call --
    sleeping releases the GIL as torch's kernels do, so it shows the overlap with a model as fast as
    the renderer."""
    from docvision.tasks.routing import Budget
    from docvision.tasks.summarize import SummarizeTask
    from tests.helpers import run_task

    paths = make_sources(Path(tempfile.mkdtemp(prefix="dv-bench-")), count)
    if model is None:
        from tests.scripted import ScriptedBackend

        backend = ScriptedBackend(delay=delay)
    else:
        from docvision.models.transformers import TransformersBackend

        backend = TransformersBackend(model=str(model), device="cpu", quant="none")
    task = SummarizeTask(hd=hd, budget=Budget(pages=2), max_new_tokens=8)
    started = time.perf_counter()
    written, sink = run_task(paths, task, backend)
    wall = time.perf_counter() - started
    assert not sink.failed, [r for r in written if r["status"] != "ok"][:1]
    render = sum(r["timings"]["render_s"] for r in written)
    model_s = sum(r["timings"]["model_s"] for r in written)
    hidden = (render + model_s - wall) / render if render else 0.0  # share of rendering done during model time
    calls = sum(r["usage"]["calls"] for r in written)
    return {"wall_s": wall, "render_s": render, "model_s": model_s, "ratio": wall / (render + model_s), "calls": calls,
            "hidden": hidden, "best": max(render, model_s) / (render + model_s)}


def child(model: str, pdf: str, question: str) -> None:
    """One ``ask`` in this fresh process; prints peak memory and times as JSON."""
    from docvision import sources
    from docvision.cache import RenderCache
    from docvision.document import IngestOptions
    from docvision.models.transformers import TransformersBackend
    from docvision.run import engine
    from docvision.run.sink import RecordSink
    from docvision.tasks.ask import AskTask

    backend = TransformersBackend(model=model, device="cpu", quant="none")
    loaded_rss = _status("VmRSS")
    written: list[dict] = []
    cache = RenderCache()
    started = time.perf_counter()
    engine.run(sources.expand([pdf]), AskTask(question, hd=9, max_new_tokens=8), RecordSink(written.append),
               opener=lambda s: cache.open(s, IngestOptions()), backend=backend)
    wall = time.perf_counter() - started
    record = written[0]
    print(json.dumps({"peak_kb": _status("VmHWM"), "loaded_kb": loaded_rss, "wall_s": wall,
                      "render_s": record["timings"]["render_s"], "status": record["status"],
                      "pages": [e["label"] for e in record["evidence"] or []], "cache": cache.stats}))


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def run_child(model: Path, pdf: Path, question: str, cache_dir: Path) -> dict:
    env = {**os.environ, "DOCVISION_CACHE_DIR": str(cache_dir)}
    proc = subprocess.run([sys.executable, __file__, "--child", str(model), str(pdf), question],
                          capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sources", type=int, default=20)
    parser.add_argument("--big", type=int, default=300)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--hd", type=int, default=9)
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    from tests.tinymodels import build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="dv-bench-"))
    model = build_tiny_model("qwen2_5_vl", work / "model")

    o = overlap(model, args.sources, args.hd)
    print(f"overlap: {args.sources} mixed sources in {o['wall_s']:.1f} s wall; render {o['render_s']:.1f} s + "
          f"model {o['model_s']:.1f} s = {o['render_s'] + o['model_s']:.1f} s serial -> ratio {o['ratio']:.2f} "
          f"(saves {100 * (1 - o['ratio']):.0f}%; the best possible is {o['best']:.2f}); "
          f"{100 * o['hidden']:.0f}% of the rendering was hidden behind the model")

    per_call = o["render_s"] / o["calls"]
    even = overlap(None, args.sources, args.hd, delay=per_call)
    print(f"overlap with a model as fast as the renderer (scripted, {per_call:.2f} s per call): "
          f"{even['wall_s']:.1f} s wall; render {even['render_s']:.1f} s + model {even['model_s']:.1f} s -> ratio "
          f"{even['ratio']:.2f} (the best possible is {even['best']:.2f}); "
          f"{100 * even['hidden']:.0f}% of the rendering hidden")

    small, big = big_pdf(work / "small.pdf", args.small), big_pdf(work / "big.pdf", args.big)
    question = f"How many {TERMS[0]}?"  # one page holds the term, whatever the length
    m_small = run_child(model, small, question, work / "cache-small")
    m_big = run_child(model, big, question, work / "cache-big")
    growth = lambda m: max(0, m["peak_kb"] - m["loaded_kb"]) / 1024  # noqa: E731
    print(f"memory: ask on {args.big} pages peaks at {m_big['peak_kb'] / 1024:.0f} MiB, on {args.small} pages "
          f"{m_small['peak_kb'] / 1024:.0f} MiB -> ratio {m_big['peak_kb'] / m_small['peak_kb']:.2f}; growth after "
          f"model load {growth(m_big):.0f} MiB vs {growth(m_small):.0f} MiB")

    second = run_child(model, big, f"How many {TERMS[1]}?", work / "cache-big")
    again = run_child(model, big, question, work / "cache-big")
    print(f"cache: first question on {args.big} pages render {m_big['render_s']:.2f} s (wall {m_big['wall_s']:.2f} s, "
          f"pages {m_big['pages']}); second question (another page) render {second['render_s']:.2f} s "
          f"(wall {second['wall_s']:.2f} s, pages {second['pages']}) -> ratio "
          f"{second['render_s'] / m_big['render_s']:.3f}; same question again render {again['render_s']:.2f} s "
          f"-> ratio {again['render_s'] / m_big['render_s']:.3f}; stats {again['cache']}")


if __name__ == "__main__":
    main()
