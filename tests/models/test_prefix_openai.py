"""The openai backend's requests let a server's prefix cache hit (vLLM's automatic prefix caching, SGLang's
radix cache): the system text, then the pages' images, then the instruction and the question last, so two
questions about the same pages send requests whose bytes are identical up to the question."""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler

import pytest

from docvision.models.openai import OpenAIBackend
from docvision.tasks.multipage import build_prompt
from tests.helpers import serve_http
from tests.models.test_transformers import page_view


class RecordingServer:
    """An OpenAI-compatible server that keeps the raw bytes of every answer request."""

    def __init__(self, model: str, owner: str = "vllm"):
        self.bodies: list[bytes] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self._json({"object": "list", "data": [{"id": model, "object": "model", "owned_by": owner}]})

            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(raw)
                images = sum(p.get("type") == "image_url" for m in body["messages"]
                             for p in (m["content"] if isinstance(m["content"], list) else []))
                if body.get("max_tokens") != 1:
                    server.bodies.append(raw)
                self._json({"choices": [{"message": {"content": "OK"}, "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 10 + 100 * images, "completion_tokens": 1}}, body)

            def _json(self, payload, body=None):
                if body is not None and body.get("stream"):
                    events = [{"choices": [{"index": 0, "delta": {"content": "OK"}, "finish_reason": "stop"}],
                               "usage": payload["usage"]}]
                    data = "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode() + b"data: [DONE]\n\n"
                    content_type = "text/event-stream"
                else:
                    data, content_type = json.dumps(payload).encode(), "application/json"
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = serve_http(Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def shared_bytes(a: bytes, b: bytes) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


@pytest.mark.parametrize("model", ["Qwen/Qwen2.5-VL-7B-Instruct", "OpenGVLab/InternVL3-8B-hf", "some-vlm"])
@pytest.mark.parametrize("system", [None, "Answer in French."])
def test_two_questions_about_the_same_pages_share_every_byte_up_to_the_question(model, system):
    server = RecordingServer(model)
    try:
        backend = OpenAIBackend(model=model, base_url=server.url, request_timeout=10, retries=0)
        views = [page_view(backend.tile, 2), page_view(backend.tile, 1, size=(1100, 850))]
        views[1].label = "page 2"
        labels = [v.label for v in views]
        questions = ["What is the total due?", "Name the signer."]
        for question in questions:
            backend.generate(views, build_prompt(question, labels), max_new_tokens=8, system=system)
        backend.generate([views[1], views[0]], build_prompt(questions[0], labels[::-1]), max_new_tokens=8,
                         system=system)
        backend.close()
    finally:
        server.close()
    first, second, reordered = server.bodies
    shared = shared_bytes(first, second)
    text = first.decode()
    images_end = max(m.end() for m in re.finditer(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+", text))
    # Everything up to the question -- model, system text, every image, the instruction -- is identical;
    # the requests part where the two questions do.
    assert images_end < shared and text[:shared].endswith("Question: ")
    assert shared_bytes(first, reordered) < text.index("data:image")  # pages in another order: another prefix
    message = json.loads(first)["messages"]
    assert [m["role"] for m in message] == (["user"] if system is None else ["system", "user"])
    parts = message[-1]["content"]
    assert parts[-1]["type"] == "text" and parts[-1]["text"].endswith(questions[0])
    assert sum(p["type"] == "image_url" for p in parts) >= 2
