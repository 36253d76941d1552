"""Benchmark: batch throughput with --concurrency 1 against 4, against the same server, from one run.

    python3 tests/benchmarks/bench_openai.py [--docs 12] [--hd 9] [--tokens 16]

Two servers, each measured at concurrency 1 and 4 (the baseline is concurrency 1 on that server):

1. ``transformers serve`` with a tiny random-weight Qwen2.5-VL on this machine's CPU. It generates one
   request at a time (one inference thread; continuous batching is for text-only models in 5.23), so
   concurrency only overlaps rendering, image encoding, HTTP and the server's preprocessing with
   generation.
2. A latency-bound server (in this process) that answers every request after a fixed delay, in
   parallel, as a GPU cluster with spare batch capacity (vLLM, SGLang) does: what docvision's
   client side can reach when the server is not the bottleneck.

The batch is the real one (docvision.run.engine with the summarize task: render, plan, encode, request,
record); sources are PNG pages drawn here.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.helpers import serve_http  # noqa: E402


def make_docs(folder: Path, count: int) -> list[str]:
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        image = Image.new("RGB", (1275, 1650), "white")  # a US-letter page at 150 dpi
        draw = ImageDraw.Draw(image)
        for line in range(40):
            draw.text((80, 80 + 36 * line), f"Report {i}, line {line}: revenue {1000 + 7 * i + line} EUR", fill="black")
        paths.append(folder / f"page{i:02d}.png")
        image.save(paths[-1])
    return [str(p) for p in paths]


def run_batch(sources: list[str], backend, concurrency: int, hd: int, tokens: int) -> tuple[float, int]:
    """Seconds for the whole batch and how many records came back ok."""
    from docvision.tasks.routing import Budget
    from docvision.tasks.summarize import SummarizeTask
    from tests.helpers import run_task

    task = SummarizeTask(hd=hd, budget=Budget(pages=1), max_new_tokens=tokens)
    started = time.perf_counter()
    got, _ = run_task(sources, task, backend, concurrency=concurrency)
    return time.perf_counter() - started, sum(r["status"] == "ok" for r in got)


class LatencyServer:
    """OpenAI-compatible: every chat request streams a short answer after ``delay`` seconds, in parallel."""

    def __init__(self, delay: float):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                data = json.dumps({"data": [{"id": "Qwen/Qwen2.5-VL-7B-Instruct", "owned_by": "vllm"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                images = sum(p.get("type") == "image_url" for p in body["messages"][0]["content"])
                if body.get("max_tokens") != 1:
                    time.sleep(delay)
                usage = {"prompt_tokens": 10 + 1000 * images, "completion_tokens": 3}
                if not body.get("stream"):
                    return self._send("application/json", json.dumps(
                        {"choices": [{"message": {"content": "OK"}, "finish_reason": "length"}], "usage": usage}))
                events = [{"choices": [{"delta": {"content": "A short summary."}, "finish_reason": "stop"}],
                           "usage": usage}]
                self._send("text/event-stream",
                           "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n")

            def _send(self, content_type: str, text: str) -> None:
                data = text.encode()
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = serve_http(Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


def measure(label: str, sources: list[str], backend, hd: int, tokens: int) -> None:
    results = {}
    for concurrency in (1, 4):
        seconds, ok = run_batch(sources, backend, concurrency, hd, tokens)
        results[concurrency] = seconds
        print(f"{label}: concurrency {concurrency}: {len(sources)} sources ({ok} ok) in {seconds:.2f} s "
              f"= {len(sources) / seconds:.2f} sources/s", flush=True)
    print(f"{label}: throughput concurrency 4 / concurrency 1 = {results[1] / results[4]:.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=12)
    parser.add_argument("--hd", type=int, default=9)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--delay", type=float, default=1.0, help="latency server: seconds per request")
    args = parser.parse_args()

    from docvision.models.openai import OpenAIBackend
    from tests.serving import TransformersServe
    from tests.tinymodels import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sources = make_docs(folder / "docs", args.docs)
        model = build_tiny_model("qwen2_5_vl", folder / "model")
        server = TransformersServe(model, folder / "serve").start()
        try:
            backend = OpenAIBackend(model=str(model), base_url=server.url)
            run_batch(sources[:2], backend, 1, args.hd, args.tokens)  # warm-up: first-request costs
            measure("transformers serve (tiny Qwen2.5-VL, CPU)", sources, backend, args.hd, args.tokens)
        finally:
            server.stop()
        latency = LatencyServer(args.delay)
        backend = OpenAIBackend(base_url=latency.url)
        measure(f"latency-bound server ({args.delay:g} s per request, parallel)", sources, backend, args.hd,
                args.tokens)


if __name__ == "__main__":
    main()
