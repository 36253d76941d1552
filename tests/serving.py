"""A real OpenAI-compatible server for tests and benchmarks: ``transformers serve`` with a tiny model.

In: a saved model folder (tests/tinymodels.py). Out: a running ``transformers serve FOLDER`` on
127.0.0.1, offline (HF_HUB_OFFLINE=1, a private HF_HOME), that can be stopped and restarted on the same
port. Also a stalling proxy: forwards to the server but never answers the chosen chat requests.

Trap (transformers 5.23): GET /v1/models scans the Hugging Face cache and answers 500 when the cache
folder does not exist; the server pinned to a folder never lists it anyway. docvision tolerates both;
the private HF_HOME here is left without a hub folder on purpose so the tests meet the trap.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.helpers import serve_http

START_TIMEOUT_S = 180


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TransformersServe:
    """``transformers serve MODEL`` as a child process; ``url`` is its /v1 base URL."""

    def __init__(self, model: Path, home: Path, port: int | None = None, log: Path | None = None):
        self.model, self.home = Path(model), Path(home)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = log or self.home / "serve.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "TransformersServe":
        exe = shutil.which("transformers")
        if exe is None:
            raise RuntimeError("the transformers CLI is not installed (pip install 'transformers[serving]')")
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(self.home / "hf"),
               "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [exe, "serve", str(self.model), "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu"],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"transformers serve exited {self.process.returncode}: {self.tail()}")
            try:
                if httpx.get(self.url.removesuffix("/v1") + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"transformers serve did not come up in {START_TIMEOUT_S} s: {self.tail()}")

    def stop(self, sig: int = signal.SIGKILL) -> None:
        """Stop the server (SIGKILL by default: a crash, connections cut mid-answer)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)  # its own session: this kills only the server we started
            self.process.wait(timeout=30)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class StallingProxy:
    """Forwards to ``upstream`` but, for the chat requests ``stall(n)`` picks, reads the request and
    never answers (n counts answer requests from 1; docvision's one-token start-up probes are passed)."""

    def __init__(self, upstream: str, stall):
        import httpx

        self.client = httpx.Client(base_url=upstream, timeout=120)
        self.stall, self.count, self.lock = stall, 0, threading.Lock()
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                upstream_response = proxy.client.get(self.path.removeprefix("/v1"))
                self._reply(upstream_response.status_code, upstream_response.content,
                            upstream_response.headers.get("content-type", "application/json"))

            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(raw)
                if body.get("max_tokens") != 1:
                    with proxy.lock:
                        proxy.count += 1
                        n = proxy.count
                    if proxy.stall(n):
                        proxy.release.wait(600)  # accept, read, never answer
                        return
                with proxy.client.stream("POST", self.path.removeprefix("/v1"), content=raw,
                                         headers={"content-type": "application/json"}) as response:
                    self.send_response(response.status_code)
                    self.send_header("Content-Type", response.headers.get("content-type", "application/json"))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for chunk in response.iter_raw():
                        self.wfile.write(chunk)
                        self.wfile.flush()
                self.close_connection = True

            def _reply(self, status, data, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = serve_http(Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.client.close()


def build_text_only_model(path: Path) -> Path:
    """A tiny random-weight Qwen2 *language* model (no vision) with a byte-level tokenizer and a chat
    template: what a user gets by serving a text-only model by mistake."""
    import torch
    import transformers as tf

    from tests.tinymodels import make_tokenizer

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer = make_tokenizer(specials)
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    config = tf.Qwen2Config(vocab_size=320, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                            num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                            eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
                            pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = tf.Qwen2ForCausalLM(config).to(torch.bfloat16).eval()
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
