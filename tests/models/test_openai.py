"""The openai backend's protocol handling against a small scripted OpenAI-compatible server in the test.

The acceptance tests against a real server (``transformers serve`` with a tiny model) are in
tests/test_serve.py; here a ThreadingHTTPServer plays the server so each protocol case is exact and
fast: SSE streaming, 429 with Retry-After, 500s, a stream cut half-way, a stall, errors servers send.
"""

from __future__ import annotations

import json
import os
import socket
import time
from http.server import BaseHTTPRequestHandler

import pytest
from PIL import Image

from docvision.models.base import PageView
from docvision.models.chatapi import encode_image, normalize_base_url, retry_after, sse_events
from docvision.models.openai import OpenAIBackend
from docvision.errors import BackendError, ExternalTimeout, ModelError, UsageError
from docvision.tiling import plan
from tests.helpers import serve_http

MODEL = "Qwen/Qwen2.5-VL-3B-Instruct"
# vLLM 0.32's own texts (vllm/entrypoints/generate/base/protocol.py, vllm/v1/engine/input_processor.py).
VLLM_KWARGS_DISABLED = ("Per-request mm_processor_kwargs are disabled by default because they can change "
                        "multimodal preprocessing resource usage. Start the server with --trust-request-mm-kwargs "
                        "only when clients are trusted.")
VLLM_CACHE = ("The decoder prompt contains a(n) image item with {} embedding tokens, which exceeds the "
              "pre-allocated encoder cache size {}. Please reduce the input size or increase the encoder cache "
              "size by setting --limit-mm-per-prompt at startup.")


class FakeServer:
    """An OpenAI-compatible server whose answers to POST /v1/chat/completions are scripted.

    ``script`` is a list of steps used one per chat request (the last one repeats): "ok", "429", "500",
    "cut" (stream two pieces, then drop the connection), "stall" (one piece, then silence), or a
    (status, body) pair. Probe requests
    (max_tokens 1) answer ok, counting prompt tokens as 10 + 100 per image unless ``drop_images`` is set,
    or fail with ``probe_error`` (any probe) or ``image_error`` (a probe with an image).

    As vLLM does, when asked: ``context`` lists max_model_len in /v1/models; ``usage=False`` streams no usage
    even when asked for it (without stream_options.include_usage none is ever sent); ``trust_kwargs=False``
    refuses any request carrying mm_processor_kwargs, ``encoder_cache`` an image of more tokens (its
    max_pixels / 28^2), each with vLLM's own 400 text; ``unknown`` fields are refused as extra inputs.
    """

    def __init__(self, script=("ok",), models=(MODEL,), models_status=200, answer="Hello world",
                 drop_images=False, probe_error=None, image_error=None, context=None, usage=True,
                 trust_kwargs=True, encoder_cache=None, unknown=()):
        self.script, self.models, self.models_status = list(script), list(models), models_status
        self.answer, self.drop_images, self.probe_error = answer, drop_images, probe_error
        self.image_error, self.context, self.usage = image_error, context, usage
        self.trust_kwargs, self.encoder_cache, self.unknown = trust_kwargs, encoder_cache, tuple(unknown)
        self.probes: list[dict] = []
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/v1/models" and server.models_status == 200:
                    data = [{"id": m, "object": "model", "owned_by": "vllm", "max_model_len": server.context}
                            for m in server.models]
                    self._json(200, {"object": "list", "data": data})
                else:
                    self._json(server.models_status if self.path == "/v1/models" else 404, {"detail": "nope"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.headers.append(dict(self.headers))
                refused = self._refusal(body)
                if refused is not None:
                    return self._json(*refused)
                if body.get("max_tokens") == 1:
                    server.probes.append(body)
                    return self._probe(body)
                server.requests.append(body)
                step = server.script[min(len(server.requests), len(server.script)) - 1]
                if step == "ok":
                    self._stream(body, server.answer)
                elif step == "429":
                    self._json(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"})
                elif step == "500":
                    self._json(500, {"error": {"message": "boom"}})
                elif step == "cut":
                    self._stream(body, server.answer, cut_after=2)
                elif step == "stall":
                    self._stream(body, server.answer, stall_after=1)
                else:
                    self._json(*step)

            def _refusal(self, body):
                extra = [name for name in server.unknown if name in body]
                if extra:
                    return 400, {"error": {"message": f"1 validation error: {extra[0]}: Extra inputs are not "
                                                      "permitted (extra_forbidden)"}}
                kwargs = body.get("mm_processor_kwargs")
                if kwargs and not server.trust_kwargs:
                    return 400, {"error": {"message": VLLM_KWARGS_DISABLED, "type": "BadRequestError"}}
                tokens = (kwargs or {}).get("max_pixels", 0) // 28 ** 2
                if server.encoder_cache is not None and tokens > server.encoder_cache:
                    return 400, {"error": {"message": VLLM_CACHE.format(tokens, server.encoder_cache)}}
                return None

            def _probe(self, body):
                images = sum(p.get("type") == "image_url" for m in body["messages"] for p in m["content"])
                if server.probe_error is not None:
                    return self._json(*server.probe_error)
                if images and server.image_error is not None:
                    return self._json(*server.image_error)
                tokens = 10 + (0 if server.drop_images else 100 * images)
                self._json(200, {"choices": [{"message": {"content": "O"}}],
                                 "usage": {"prompt_tokens": tokens, "completion_tokens": 1}})

            def _json(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", "Content-Length": str(len(data)),
                                   **(headers or {})}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body, text, cut_after=None, stall_after=None):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                words = text.split(" ")
                for i, word in enumerate(words):
                    if stall_after is not None and i == stall_after:
                        time.sleep(3)  # the answer started, then nothing
                        return
                    if cut_after is not None and i == cut_after:
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    piece = word if i == 0 else " " + word
                    event = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                usage = {"prompt_tokens": 42, "completion_tokens": len(words)}
                if server.usage and (body.get("stream_options") or {}).get("include_usage"):
                    self.wfile.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        self.httpd = serve_http(Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake():
    servers = []

    def start(**kwargs) -> FakeServer:
        servers.append(FakeServer(**kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def view(size=(1000, 1000), hd=4, tile=336) -> PageView:
    page_plan = plan(size, hd, tile)
    return PageView("page 1", Image.new("RGB", page_plan.canvas_size, "white"), page_plan)


def backend(server: FakeServer, **kwargs) -> OpenAIBackend:
    return OpenAIBackend(base_url=server.url, **{"model": MODEL, "retries": 3, "request_timeout": 5, **kwargs})


def test_streams_text_and_usage_and_sends_the_plan(fake):
    server = fake()
    pieces: list[str] = []
    b = backend(server)
    assert b.family.name == "qwen" and b.tile == 336
    generation = b.generate([view(tile=b.tile)], "What is it?", max_new_tokens=7, on_text=pieces.append)
    assert generation.text == "Hello world" and pieces == ["Hello", " world"]
    assert (generation.prompt_tokens, generation.new_tokens) == (42, 2)
    assert generation.visual_tokens == (672 // 28) ** 2  # Qwen2.5: one token per 28x28 px of canvas
    request = server.requests[0]
    assert request["stream"] is True and request["max_tokens"] == 7 and request["temperature"] == 0
    parts = request["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["image_url", "text"] and parts[-1]["text"] == "What is it?"
    assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    # vLLM reads the pixel budget from mm_processor_kwargs, transformers serve from the template kwargs.
    assert request["mm_processor_kwargs"] == {"min_pixels": 672 * 672, "max_pixels": 672 * 672}
    assert request["chat_template_kwargs"]["processor_kwargs"]["size"]["longest_edge"] == 672 * 672


def test_a_call_with_on_status_says_what_it_waits_for_and_counts_tokens(fake):
    server = fake(answer="one two three")
    b = backend(server)
    said: list[str] = []
    b.on_status = said.append
    assert b.generate([view(tile=b.tile)], "q").text == "one two three"
    assert said[0] == f"waiting for {server.url}: 1 page(s), {(672 // 28) ** 2:,} visual tokens sent"
    assert said[1] == "writing: 1 token"  # later ones come at most twice a second
    b.on_status = None
    said.clear()
    b.generate([view(tile=b.tile)], "q")
    assert said == []


def test_429_honours_retry_after_then_succeeds(fake):
    server = fake(script=["429", "ok"])
    started = time.perf_counter()
    generation = backend(server).generate([view()], "q")
    assert generation.text == "Hello world" and generation.timings["retries"] == 1
    assert time.perf_counter() - started >= 0.9  # Retry-After: 1


def test_500_is_retried_a_few_times_then_one_line(fake):
    server = fake(script=["500", "ok"])
    assert backend(server).generate([view()], "q").text == "Hello world"
    server = fake(script=["500"])
    with pytest.raises(BackendError, match="failed 3 time.*HTTP 500: boom"):
        backend(server, retries=5).generate([view()], "q")
    assert len(server.requests) == 3  # a 500 is retried at most twice, whatever --retries says


def test_a_stream_cut_half_way_is_retried_without_repeating_text(fake):
    server = fake(script=["cut", "ok"], answer="one two three four")
    pieces: list[str] = []
    generation = backend(server).generate([view()], "q", on_text=pieces.append)
    assert generation.text == "one two three four"
    assert "".join(pieces) == "one two three four"  # the retry's first two pieces were not shown again


def test_a_stalled_server_times_out_with_one_line(fake):
    server = fake()
    b = backend(server, request_timeout=1.0)
    stall = socket.socket()
    stall.bind(("127.0.0.1", 0))
    stall.listen(8)  # accepts connections (the kernel does) and never answers
    try:
        b._client.base_url = f"http://127.0.0.1:{stall.getsockname()[1]}/v1"
        started = time.perf_counter()
        with pytest.raises(ExternalTimeout, match="sent nothing for 1 s"):
            b.generate([view()], "q")
        assert time.perf_counter() - started < 60  # a hang guard; the message proves the 1 s
    finally:
        stall.close()


def test_server_down_at_start_is_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BackendError, match=f"cannot reach the model server at http://127.0.0.1:{port}/v1"):
        OpenAIBackend(base_url=f"http://127.0.0.1:{port}", model=MODEL, connect_timeout=2)


def test_unknown_model_names_what_the_server_serves(fake):
    server = fake(probe_error=(404, {"error": {"message": "The model `nope` does not exist."}}))
    with pytest.raises(ModelError, match="does not serve model 'nope'.*it serves: " + MODEL):
        backend(server, model="nope")


def test_model_without_images_is_detected_by_error_text_or_by_dropped_images(fake):
    server = fake(image_error=(400, {"error": {"message": "Qwen2 is not a multimodal model"}}))
    with pytest.raises(ModelError, match="takes no images"):
        backend(server)
    server = fake(drop_images=True)  # transformers serve drops images sent to a text-only model
    with pytest.raises(ModelError, match="ignored the image.*takes no images"):
        backend(server)


def test_models_endpoint_failing_is_tolerated_and_a_single_model_is_picked(fake):
    server = fake(models_status=500)  # transformers serve without a Hugging Face cache folder
    assert backend(server).model_id == MODEL
    server = fake(models=["only/Qwen3-VL-2B-Instruct"])
    b = OpenAIBackend(base_url=server.url)
    assert b.model_id == "only/Qwen3-VL-2B-Instruct" and b.tile == 384
    server = fake(models=["a", "b"])
    with pytest.raises(UsageError, match="name the served model with --model.*it serves: a, b"):
        OpenAIBackend(base_url=server.url)


def test_processor_options_are_dropped_when_the_server_rejects_them(fake):
    server = fake(script=[(422, {"detail": "Unexpected fields in the request: {'mm_processor_kwargs'}"}), "ok"])
    b = backend(server)
    assert b.generate([view()], "q").text == "Hello world"
    assert "mm_processor_kwargs" not in server.requests[-1]
    b.generate([view()], "q")
    assert "mm_processor_kwargs" not in server.requests[-1]


def test_api_key_goes_as_bearer_token(fake, monkeypatch):
    monkeypatch.setenv("DOCVISION_API_KEY", "sk-test")
    server = fake()
    backend(server).generate([view()], "q")
    assert server.headers[-1]["Authorization"] == "Bearer sk-test"


def test_server_limits_are_one_line_with_the_flag_to_turn(fake):
    server = fake(script=[(400, {"error": {"message": "This model's maximum context length is 8192 tokens"}})])
    with pytest.raises(BackendError, match="prompt is too long.*lower --hd"):
        backend(server).generate([view()], "q")
    server = fake(script=[(400, {"error": {"message": "At most 4 image(s) may be provided in one request."}})])
    with pytest.raises(BackendError, match="at most 4 images per request.*--limit-mm-per-prompt"):
        backend(server).generate([view()], "q")


def test_images_go_as_png_unless_large_then_jpeg():
    text_page = Image.new("RGB", (1344, 1344), "white")
    assert encode_image(text_page).startswith("data:image/png;base64,")
    photo = Image.frombytes("RGB", (1344, 1344), os.urandom(1344 * 1344 * 3))  # noise: PNG cannot shrink it
    assert encode_image(photo).startswith("data:image/jpeg;base64,")


def test_small_helpers():
    assert normalize_base_url("http://h:8000") == "http://h:8000/v1"
    assert normalize_base_url("https://api.example.com/openai/v1/") == "https://api.example.com/openai/v1"
    with pytest.raises(UsageError):
        normalize_base_url("h:8000")
    assert retry_after("3") == 3.0 and retry_after(None) is None and retry_after("999") == 60.0
    events = list(sse_events(iter([": ping", "", 'data: {"a": 1}', "data: [DONE]", 'data: {"b": 2}'])))
    assert events == [{"a": 1}, None]


def test_a_server_that_never_answers_at_start_is_a_timeout_not_a_hang():
    stall = socket.socket()
    stall.bind(("127.0.0.1", 0))
    stall.listen(8)
    try:
        started = time.perf_counter()
        with pytest.raises(ExternalTimeout, match="accepted the connection but sent nothing for 1 s"):
            OpenAIBackend(base_url=f"http://127.0.0.1:{stall.getsockname()[1]}", model=MODEL, request_timeout=1.0)
        assert time.perf_counter() - started < 60  # a hang guard; the message proves the 1 s
    finally:
        stall.close()


def test_a_stream_that_goes_silent_half_way_times_out(fake):
    server = fake(script=["stall"])
    pieces: list[str] = []
    started = time.perf_counter()
    with pytest.raises(ExternalTimeout, match="sent nothing for 1 s"):
        backend(server, request_timeout=1.0).generate([view()], "q", on_text=pieces.append)
    assert pieces == ["Hello"] and time.perf_counter() - started < 60  # a hang guard, not a speed check


def test_a_text_only_call_sends_no_image_and_no_processor_options(fake):
    server = fake()
    generation = backend(server).generate([], "Combine the notes.", max_new_tokens=5)
    assert generation.text == "Hello world" and generation.visual_tokens == 0
    request = server.requests[0]
    assert request["messages"][0]["content"] == [{"type": "text", "text": "Combine the notes."}]
    assert "mm_processor_kwargs" not in request and "chat_template_kwargs" not in request
