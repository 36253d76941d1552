"""Benchmark: time to first token for questions 2-10 about one 4-page PDF, with the page encoding reused.

    python3 tests/benchmarks/bench_prefix.py [--layers 2] [--vision-layers 2] [--hd 4] [--questions 10]
                                             [--dtype float32] [--max-new-tokens 8]

Builds a random-weight Qwen3-VL with the default model's (Qwen3-VL-4B-Instruct's) real widths -- text 2560
wide, 32 heads, 8 KV heads, MLP 9728, vocabulary 151936; vision 1024 wide, MLP 4096 -- and fewer layers, and
a 4-page PDF; then asks the same questions three ways in one run:

  1. separate: one ``docvision ask PDF QUESTION --pages 1-4 --json`` process per question (model loaded,
     pages rendered -- from the render cache after the first -- and encoded each time);
  2. one ask, no reuse: ``docvision ask PDF -q Q1 ... -q Q10 --pages 1-4 --json --prefix-cache-mb 0`` (the
     model loaded once, every call encoding the pages again);
  3. one ask, reuse: the same with the default prefix cache (2048 MB).

``--pages 1-4`` shows every page in every call, so every question is about the same page set. Time to
first token of a question: (1) from the start of its process until its record arrives, less the record's
``generate_s`` (the time after the first token); (2, 3) its record's ``first_token_s``, from the model
call's start (the pages of later questions are drawn while earlier ones are answered). Where ``ask`` takes
no ``-q`` (before the several-questions CLI), (2, 3) run in this process instead: one loaded model, the
run engine with an AskTask per question, timed like (1) from the start of each engine run. Prints each
question's times, the means over questions 2-10 and the ratios; targets: reuse >= 10x faster than separate
processes and >= 5x faster than re-encoding in the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

QUESTIONS = ("What is the total amount due?", "Who is the account manager?", "When does the contract end?",
             "How many pallets were shipped in March?", "What is the invoice number?",
             "Which warehouse handled the returns?", "What discount was applied?", "Where is the head office?",
             "What is the payment term in days?", "Who approved the maintenance budget?")


def build_model(folder: Path, layers: int, vision_layers: int) -> Path:
    """A random-weight Qwen3-VL-4B shape with ``layers`` text and ``vision_layers`` vision layers (bf16)."""
    import torch
    import transformers as tf

    from tests.tinymodels import QWEN3_VL_4B_TEXT, QWEN3_VL_4B_VISION, _qwen

    _, _, processor = _qwen("qwen3_vl")
    vision = dict(QWEN3_VL_4B_VISION, depth=vision_layers,
                  deepstack_visual_indexes=list(range(min(3, vision_layers))))
    config = tf.Qwen3VLConfig(text_config=dict(QWEN3_VL_4B_TEXT, num_hidden_layers=layers), vision_config=vision,
                              tie_word_embeddings=True)
    tokens = processor.tokenizer
    ids = [tokens.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>",
                                                     "<|vision_end|>")]
    config.image_token_id, config.video_token_id, config.vision_start_token_id, config.vision_end_token_id = ids
    torch.manual_seed(0)
    model = tf.Qwen3VLForConditionalGeneration(config).to(torch.bfloat16).eval()
    model.generation_config.eos_token_id = tokens.convert_tokens_to_ids("<|im_end|>")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_pdf(path: Path) -> Path:
    from tests.scripted import FILLER, make_pdf

    facts = ["Invoice 4471-B. Total amount due: 12,480.00 EUR. Discount applied: 4 percent.",
             "Account manager: Dana Whitfield. Head office: Rotterdam. Payment term: 45 days.",
             "Shipped in March: 318 pallets. Returns were handled by the Breda warehouse.",
             "The contract ends on 30 June 2027. Maintenance budget approved by R. Osei."]
    return make_pdf(path, [f"{fact} " + FILLER * 4 for fact in facts])


def separate(model: Path, pdf: Path, questions, args, cache: Path) -> list[dict]:
    """One ``docvision ask`` process per question; first-token time from the process's start."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DOCVISION_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    out = []
    for question in questions:
        errors = tempfile.TemporaryFile("w+")  # not a pipe: nobody reads it until the record is in
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "docvision", "ask", str(pdf), question, "--pages", "1-4", "--model", str(model),
             "--device", "cpu", "--dtype", args.dtype, "--hd", str(args.hd), "--max-new-tokens",
             str(args.max_new_tokens), "--json"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
            stderr=errors, stdin=subprocess.DEVNULL, text=True)
        line = proc.stdout.readline()  # the record, flushed as the source finishes
        arrived = time.perf_counter()
        proc.communicate(timeout=1800)
        if not line.strip():
            errors.seek(0)
            raise SystemExit(f"docvision ask failed ({proc.returncode}): {errors.read().strip()[-2000:]}")
        record = json.loads(line)
        out.append(summary(record, arrived - started - record["timings"].get("generate_s", 0.0)))
    return out


def ask_supports_questions() -> bool:
    """Whether this checkout's ``docvision ask`` takes several questions (-q)."""
    import importlib

    return hasattr(importlib.import_module("docvision.cli.ask"), "split_questions")


def one_ask(model: Path, pdf: Path, questions, args, cache: Path, prefix_cache_mb: int) -> list[dict]:
    """One ``docvision ask PDF -q ... -q ...`` process: the model loaded once, a record per question."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DOCVISION_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    asked = [arg for question in questions for arg in ("-q", question)]
    proc = subprocess.run(
        [sys.executable, "-m", "docvision", "ask", str(pdf), *asked, "--pages", "1-4", "--model", str(model),
         "--device", "cpu", "--dtype", args.dtype, "--hd", str(args.hd), "--max-new-tokens", str(args.max_new_tokens),
         "--prefix-cache-mb", str(prefix_cache_mb), "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=7200)
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if len(records) != len(questions):
        raise SystemExit(f"docvision ask failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return [summary(r, r["timings"]["first_token_s"]) for r in records]


def in_process(model: Path, pdf: Path, questions, args, cache: Path, prefix_cache_mb: int) -> list[dict]:
    """One loaded model, one engine run per question (the same pages each time)."""
    from docvision.models.transformers import TransformersBackend
    from docvision.tasks.ask import AskTask
    from tests.helpers import run_task

    backend = TransformersBackend(model=str(model), device="cpu", quant="none", dtype=args.dtype,
                                  prefix_cache_mb=prefix_cache_mb)
    out = []
    for question in questions:
        task = AskTask(question, hd=args.hd, max_new_tokens=args.max_new_tokens, show_selected=True)
        started = time.perf_counter()
        written, _ = run_task([pdf], task, backend, cache_dir=cache)
        wall = time.perf_counter() - started
        out.append(summary(written[0], wall - written[0]["timings"].get("generate_s", 0.0)))
    backend.close()
    return out


def summary(record: dict, first_token_s: float) -> dict:
    if record["status"] != "ok":
        raise SystemExit(f"ask failed: {record['error']}")
    timings = record["timings"]
    return {"first_token_s": first_token_s, "answer": record["answer"], "pages": record["resolution"]["pages"],
            "prompt_tokens": record["usage"]["prompt_tokens"],
            "cached": record["usage"]["cached_prefix_tokens"], "prefill_s": timings.get("prefill_s")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=2, help="text layers (the 4B has 36)")
    parser.add_argument("--vision-layers", type=int, default=2, help="vision layers (the 4B has 24)")
    parser.add_argument("--hd", type=int, default=4)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--dtype", default="float32", choices=("bfloat16", "float32"),
                        help="float32 by default: this CPU has no bf16 matrix instructions")
    parser.add_argument("--max-new-tokens", type=int, default=8)
    args = parser.parse_args()
    questions = (QUESTIONS * 2)[: args.questions]
    with tempfile.TemporaryDirectory(prefix="dv-bench-prefix-") as folder:  # the model is 1.4 GB
        work = Path(folder)
        started = time.perf_counter()
        model = build_model(work / "model", args.layers, args.vision_layers)
        pdf = build_pdf(work / "report.pdf")
        print(f"model: Qwen3-VL-4B widths, {args.layers} text + {args.vision_layers} vision layers, {args.dtype}; "
              f"built in {time.perf_counter() - started:.0f} s; hd {args.hd}, {len(questions)} questions, 4 pages")
        together = one_ask if ask_supports_questions() else in_process
        print(f"ways 2 and 3: {'one docvision ask -q ... process' if together is one_ask else 'in this process'}")
        runs = {"separate": separate(model, pdf, questions, args, work / "cache-separate"),
                "no_reuse": together(model, pdf, questions, args, work / "cache-no-reuse", 0),
                "reuse": together(model, pdf, questions, args, work / "cache-reuse", 2048)}
        report(runs)


def report(runs: dict) -> None:
    print(f"\n{'q':>3} {'separate s':>11} {'no reuse s':>11} {'reuse s':>8} {'cached':>7} {'prompt':>7}")
    for k, (a, b, c) in enumerate(zip(runs["separate"], runs["no_reuse"], runs["reuse"]), 1):
        print(f"{k:>3} {a['first_token_s']:>11.2f} {b['first_token_s']:>11.2f} {c['first_token_s']:>8.3f} "
              f"{c['cached']:>7} {c['prompt_tokens']:>7}")
    later = {name: statistics.mean(r["first_token_s"] for r in rows[1:]) for name, rows in runs.items()}
    print(f"\ntime to first token, mean of questions 2-{len(runs['reuse'])}: separate {later['separate']:.2f} s, "
          f"no reuse {later['no_reuse']:.2f} s, reuse {later['reuse']:.3f} s")
    print(f"reuse vs separate processes: {later['separate'] / later['reuse']:.1f}x (target >= 10x)")
    print(f"reuse vs re-encoding in process: {later['no_reuse'] / later['reuse']:.1f}x (target >= 5x)")
    same = sum(b["answer"] == c["answer"] for b, c in zip(runs["no_reuse"], runs["reuse"]))
    print(f"answers equal with and without reuse: {same}/{len(runs['reuse'])} "
          f"(pages shown per question: {sorted({r['pages'] for rows in runs.values() for r in rows})})")


if __name__ == "__main__":
    main()
