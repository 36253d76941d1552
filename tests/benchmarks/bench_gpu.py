"""Benchmark: local models warm on a GPU -- load, memory, time to first token and decode speed, in one process.

Run: python3 tests/benchmarks/bench_gpu.py [--device cuda] [--models qwen,ixc] [--scale 4b] [--ixc-layers 32]
     [--hd 25,55] [--pages 1,4] [--questions 4] [--new-tokens 32] [--json FILE] [--profile-load]

Per model -- a random-weight Qwen3-VL of the default model's shape (``--scale 4b``: Qwen3-VL-4B-Instruct's
widths and depths) and a random IXC2-4KHD at the 7B's widths with
``--ixc-layers`` decoder layers (32: full depth); ``--scale tiny --ixc-width small`` are the tests' tiny models, to
try the benchmark itself on a CPU -- built on the device and saved to a temporary folder:
  1. bf16 load, then the warm cases;
  2. NF4 load from the original weights (quantize on load, save the pre-quantized copy);
  3. NF4 load from that copy (the cache), with the time of its phases, then the warm cases;
  4. for ``--fresh`` models: bf16 and NF4-from-the-cache loads again, each in a fresh process as a command-line
     run makes them (imports and CUDA's start included), and NF4 once more with bitsandbytes imported plainly.
In-process loads are timed after CUDA is up and the libraries are imported (their import times are printed
apart), so they compare reading, placing and converting weights. A warm case is one page set (``--pages`` US-letter
pages at HD-N for each ``--hd``) and ``--questions`` different questions about it through the backend's
``generate``, streamed and greedy as the CLI runs them: question 1 encodes the pages, questions 2..N reuse
that encoding (docs/prefix.md). Reported: question 1's time to first token, the median over questions 2..N
of the time to first token and of decode tokens/s, and the CUDA peak of the case. Where the backend replays
CUDA graphs for the one-token steps (docs/gpu.md), the cases run twice, without and with them, and the token
ids of every answer are compared. Prints a table last.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks import gpu_setup  # noqa: E402  (after the path is set)

QUESTIONS = ("What is the total due?", "Who signed the report?", "Which year had the highest revenue?",
             "What is the invoice number?", "Summarise the first table.", "What date is on the page?",
             "Which model wins on the chart?", "What is the address of the sender?")


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def megabytes(value: int) -> int:
    return round(value / 2**20)


def free(backend) -> None:
    import torch

    backend.close()
    del backend
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def timed_load(make, device: str, phases: "gpu_setup.Phases | None" = None):
    """(backend, numbers): the load's seconds, the weights' CUDA memory and the load's CUDA peak."""
    import torch

    sync(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    if phases is None:
        backend = make()
    else:
        with phases:
            backend = make()
    sync(device)
    numbers = {"load_s": round(time.perf_counter() - started, 2), "from_cache": backend.from_cache}
    if device == "cuda":
        numbers.update(weights_mb=megabytes(torch.cuda.memory_allocated()),
                       load_peak_mb=megabytes(torch.cuda.max_memory_allocated()))
    if phases is not None:
        numbers["phases_s"] = phases.report()
    return backend, numbers


def warm_case(backend, hd: int, pages: int, questions: int, new_tokens: int, device: str) -> dict:
    """One page set, ``questions`` questions about it: question 1 cold, 2..N warm."""
    import torch

    from docvision.errors import DocvisionError

    views = gpu_setup.page_views(backend.tile, hd, pages)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    runs = []
    for question in QUESTIONS[:questions]:
        try:
            generation = backend.generate(views, question, max_new_tokens=new_tokens)
        except DocvisionError as exc:
            return {"hd": hd, "pages": pages, "error": exc.message}
        sync(device)
        runs.append(generation)
    timings = [g.timings for g in runs]
    ttft = [t.get("first_token_s", t.get("prefill_s")) for t in timings]
    rates = [t["tokens_per_s"] for t in timings[1:] if t.get("tokens_per_s")]
    graphs = getattr(backend, "graphs", None)
    decoder = graphs.decoder if graphs is not None else None
    return {
        "hd": hd, "pages": pages, "visual_tokens": runs[0].visual_tokens, "prompt_tokens": runs[0].prompt_tokens,
        "first_ttft_s": ttft[0], "warm_ttft_s": median(ttft[1:], 3), "warm_tok_s": median(rates, 1),
        "warm_prepare_s": median([t.get("prepare_s") for t in timings[1:]], 3),
        "new_tokens": [g.new_tokens for g in runs], "reused": [g.cached_prefix_tokens for g in runs],
        "cuda_peak_mb": megabytes(torch.cuda.max_memory_allocated()) if device == "cuda" else None,
        "graph": None if decoder is None else ("replayed" if decoder.graph is not None else decoder.error or "steps"),
        "sequences": getattr(backend, "recorded", None) and backend.recorded[-len(runs):],
    }


def median(values: list, digits: int) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), digits) if values else None


def record_sequences(backend) -> None:
    """Keep every answer's token ids on the backend: graph and eager must agree. The transformers backend's
    ``_answer`` returns them; IXC's ``_generation`` receives them."""
    backend.recorded = []
    name = "_answer" if hasattr(backend, "_answer") else "_generation"
    wrapped = getattr(backend, name)

    def recorded(*args, **kwargs):
        result = wrapped(*args, **kwargs)
        ids = result[0] if name == "_answer" else args[1]
        backend.recorded.append(ids.tolist())
        return result

    setattr(backend, name, recorded)


def warm_cases(backend, args) -> list[dict]:
    rows = []
    for hd in args.hd:
        for pages in args.pages:
            row = warm_case(backend, hd, pages, args.questions, args.new_tokens, args.device)
            shown = {k: v for k, v in row.items() if k != "sequences"}
            print(f"    HD-{hd} x{pages}: {json.dumps(shown)}", flush=True)
            rows.append(row)
    return rows


def bench_model(kind: str, folder: Path, args) -> dict:
    """bf16, NF4 quantized on load, NF4 from the cache; warm cases for bf16 and NF4-from-cache."""
    make = gpu_setup.backend_factory(kind, folder, args.device, args.prefix_cache_mb)
    result: dict = {"model": kind, "loads": {}, "warm": {}}
    for label, quant, warm in (("bf16", "none", True), ("nf4_quantize", "4bit", False),
                               ("nf4_cache", "4bit", True)):
        phases = gpu_setup.Phases() if label == "nf4_cache" else None
        backend, numbers = timed_load(lambda: make(quant), args.device, phases)
        result["loads"][label] = numbers
        print(f"  {kind} {label}: {json.dumps(numbers)}", flush=True)
        if warm and f"{kind}:{label}" in args.warm.split(","):
            warm_passes(backend, label, args, result)
        free(backend)
        save(args, result)
    if kind in args.fresh.split(","):
        result["fresh_loads"] = fresh = {
            "bf16": gpu_setup.fresh_load(folder, "none", args.device),
            "nf4_cache": gpu_setup.fresh_load(folder, "4bit", args.device),
            "nf4_cache_plain_bnb_import": gpu_setup.fresh_load(folder, "4bit", args.device, "plain")}
        print(f"  {kind} fresh-process loads: {json.dumps(fresh)}", flush=True)
        save(args, result)
    if args.profile_load:
        result["load_profile"] = gpu_setup.profile(lambda: free(make("4bit")))
        print(result["load_profile"], flush=True)
    return result


def warm_passes(backend, label: str, args, result: dict) -> None:
    """The warm cases as generate() runs them; where the backend replays CUDA graphs for the steps, again
    with them (after the eager pass, so that its numbers are in even if a capture fails), tokens compared."""
    record_sequences(backend)
    graphs, backend.graphs = getattr(backend, "graphs", None), None
    # One throwaway answer about another page: CUDA's libraries pick and load their kernels on first use.
    backend.generate(gpu_setup.page_views(backend.tile, 4, 1), QUESTIONS[-1], max_new_tokens=4)
    result["warm"][label + ("_eager" if graphs is not None else "")] = eager = warm_cases(backend, args)
    save(args, result)
    if graphs is None:
        return
    backend.prefixes.clear()  # question 1 encodes the pages again, as in the eager pass
    backend.graphs = graphs
    result["warm"][label] = replayed = warm_cases(backend, args)
    result["graph_tokens_equal_" + label] = [a.get("sequences") == b.get("sequences") for a, b in zip(eager, replayed)
                                             if "error" not in a]
    print(f"  graph == eager tokens ({label}): {result['graph_tokens_equal_' + label]}", flush=True)


SAVED: list[dict] = []


def save(args, result: dict) -> None:
    """Write what is measured so far (a run cut short still leaves its numbers)."""
    if result not in SAVED:
        SAVED.append(result)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": SAVED}, indent=1), encoding="utf-8")


def table(results: list[dict]) -> str:
    lines = [f"{'model':6} {'load bf16':>9} {'NF4 quant':>9} {'NF4 cache':>9} {'weights MB bf16/NF4':>19}",
             "-" * 58]
    for r in results:
        loads = r["loads"]
        lines.append(f"{r['model']:6} {loads['bf16']['load_s']:>9} {loads['nf4_quantize']['load_s']:>9} "
                     f"{loads['nf4_cache']['load_s']:>9} "
                     f"{str(loads['bf16'].get('weights_mb'))+'/'+str(loads['nf4_cache'].get('weights_mb')):>19}")
    for r in results:
        if "fresh_loads" in r:
            fresh = r["fresh_loads"]
            lines.append(f"{r['model']:6} in fresh processes: " + ", ".join(
                f"{name} {value.get('load_s', value.get('error'))} s" for name, value in fresh.items()))
    lines += ["", f"{'model':6} {'variant':15} {'HD':>3} {'pages':>5} {'vis tok':>7} {'TTFT q1 s':>9} "
                  f"{'TTFT warm s':>11} {'tok/s warm':>10} {'CUDA peak MB':>12} {'reused':>7} {'graph':>8}",
              "-" * 104]
    for r in results:
        for label, rows in r["warm"].items():
            for w in rows:
                if "error" in w:
                    lines.append(f"{r['model']:6} {label:15} {w['hd']:>3} {w['pages']:>5} {w['error']}")
                    continue
                lines.append(f"{r['model']:6} {label:15} {w['hd']:>3} {w['pages']:>5} {w['visual_tokens']:>7} "
                             f"{w['first_ttft_s']:>9} {str(w['warm_ttft_s']):>11} {str(w['warm_tok_s']):>10} "
                             f"{str(w['cuda_peak_mb']):>12} {str(max(w['reused'][1:] or [0])):>7} "
                             f"{str(w['graph'])[:8]:>8}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cpu", "cuda"))
    parser.add_argument("--models", default="qwen,ixc", help="comma-separated: qwen, ixc")
    parser.add_argument("--scale", default="4b", choices=("tiny", "small", "4b"), help="the Qwen3-VL shape")
    parser.add_argument("--ixc-layers", type=int, default=32)
    parser.add_argument("--ixc-width", default="7b", choices=("7b", "small"), help="small: a CPU try-out")
    parser.add_argument("--hd", default="25,55", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--pages", default="1,4", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--prefix-cache-mb", type=int, default=2048, help="as the CLI's default")
    parser.add_argument("--work", default=None, help="folder for the random checkpoints (default: a temp folder)")
    parser.add_argument("--json", default=None, help="write every number here")
    parser.add_argument("--profile-load", action="store_true", help="profile one more load from the cache")
    parser.add_argument("--fresh", default="qwen", help="models also loaded in fresh processes, as a CLI run does")
    parser.add_argument("--warm", default="qwen:bf16,qwen:nf4_cache,ixc:bf16,ixc:nf4_cache",
                        help="model:load pairs that get the warm cases")
    args = parser.parse_args()
    started = time.perf_counter()
    environment = gpu_setup.start(args.device)
    print(f"environment: {json.dumps(environment)}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-gpu-", dir=args.work) as temp:
        for kind in args.models.split(","):
            built = time.perf_counter()
            folder = gpu_setup.build(kind, Path(temp) / kind, args)
            print(f"{kind}: built in {time.perf_counter() - built:.1f} s at {folder}", flush=True)
            results.append(bench_model(kind, folder, args))
            gpu_setup.remove(folder)
    summary = {"environment": environment, "args": vars(args), "results": results,
               "total_s": round(time.perf_counter() - started, 1)}
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print("\n" + table(results) + f"\n\ntotal {summary['total_s']} s", flush=True)


if __name__ == "__main__":
    main()
