"""The ``openai`` backend: any OpenAI-compatible chat server (vLLM, SGLang, Ollama, ``transformers serve``).

In: page views (HD-N canvases) and a prompt. Out: a Generation with the server's text and token usage.
Each canvas goes to the server as a data URL (PNG, or high-quality JPEG when PNG would be large), and
the model family -- inferred from the served model's name -- decides the tile size and the processor
options that make the server's processor see exactly the planned resolution.

Plain httpx, no SDK: streaming (SSE), connect/read timeouts (a stream that goes silent for ``timeout``
seconds fails), retries with exponential backoff and jitter on 429/5xx and lost connections (honouring
Retry-After), and one-line errors for a server that is down, a model it does not serve, or a model
that takes no images. The server is checked once when the backend is created.
"""

from __future__ import annotations

import os
import random
import time
from typing import TYPE_CHECKING, Callable, Sequence

import docvision.models.fit as fit
from docvision.models import DEFAULT_BASE_URL
from docvision.models.base import Backend, Generation, PageView
from docvision.models.chatapi import (UNEXPECTED_FIELD, EncoderCacheFull, backoff, context_lengths, encode_image,
                                        error_text, message_of, normalize_base_url, refusal, retry_after, sse_events)
from docvision.errors import BackendError, ExternalTimeout, ModelError, UsageError
from docvision.tiling import Plan, plan

if TYPE_CHECKING:
    import httpx

    from docvision.models.families import Family

RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
# A 500 is usually the same failure again (the server choked on this request), so it gets fewer retries
# than a gateway error or a restart, which pass.
MAX_500_RETRIES = 2
PROBE_TIMEOUT_S = 180.0
IMAGE_PROBE_MIN_TOKENS = 8  # fewer new prompt tokens than this for an image: the server dropped it

# Fields a server may refuse as unknown; sent until it does, then left out (never the messages or the model).
OPTIONAL_FIELDS = ("chat_template_kwargs", "mm_processor_kwargs", "stream_options")
NO_USAGE = "the model server sent no token usage with its answers: usage.prompt_tokens and new_tokens are null"


class _Retryable(Exception):
    """A failure worth another try; ``wait`` is the server's Retry-After, when it gave one."""

    def __init__(self, message: str, wait: float | None = None, status: int | None = None):
        super().__init__(message)
        self.wait = wait
        self.status = status


class OpenAIBackend(Backend):
    """Drives an OpenAI-compatible server over HTTP; one instance is safe to share between threads."""

    name = "openai"

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        request_timeout: float = 60.0,
        connect_timeout: float = 10.0,
        retries: int = 6,
        max_context: int | None = None,
        hd: int | None = None,
        check: bool = True,
    ):
        import httpx

        self.base_url = normalize_base_url(base_url or DEFAULT_BASE_URL)
        self.retries = retries
        api_key = api_key or os.environ.get("DOCVISION_API_KEY") or os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.base_url, headers=headers,
            timeout=httpx.Timeout(request_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),  # --concurrency bounds it
        )
        self.timeout = request_timeout
        self.served: list[str] | None = None
        self.owner = ""  # "vllm", "sglang", ... from /models, to pick the request fields it reads
        self.listed_context: dict[str, int] = {}  # model -> max_model_len, where /models says it
        self.model_id = model or ""
        self._dropped: frozenset[str] = frozenset()  # OPTIONAL_FIELDS the server refused (rebound, never changed)
        started = time.perf_counter()
        if check:
            self._pick_model()
        self.family = family_of(self.model_id)
        self.tile = self.family.tile
        known = [n for n in (self.listed_context.get(self.model_id), max_context) if n]
        self.context_tokens = min(known) if known else None
        if check:
            self.check(hd)
        self.load_s = round(time.perf_counter() - started, 3)

    # -- what the planner and records need ---------------------------------------------------------

    def visual_tokens(self, plan: Plan) -> int:
        """Visual tokens the served model's family spends on ``plan``."""
        return self.family.visual_tokens(plan)

    def info(self) -> dict:
        return {"id": self.model_id, "backend": self.name, "base_url": self.base_url,
                "family": self.family.name, "device": "server", "quant": "server", "load_s": self.load_s}

    def close(self) -> None:
        self._client.close()

    # -- start-up check ----------------------------------------------------------------------------

    def _pick_model(self) -> None:
        """Reach the server and settle the model: the one named, or the one it serves."""
        self.served = self._list_models()
        if not self.model_id:
            if self.served and len(self.served) == 1:
                self.model_id = self.served[0]
            else:
                offer = f"it serves: {', '.join(self.served)}" if self.served else "it did not list its models"
                raise UsageError(f"name the served model with --model (or DOCVISION_MODEL): {offer}")

    def check(self, hd: int | None = None) -> None:
        """Once at start: the model takes images, and the server takes the largest page HD-``hd`` can plan,
        with its processor options -- so a server that would refuse every page says why once, before any
        source runs (docs/serving.md)."""
        view = self._probe_view(hd)
        probe = self._probe(view, images=False)
        try:
            with_image = self._probe(view)
        except EncoderCacheFull as exc:
            raise self._cache_too_small(exc, hd) from None
        # transformers serve, for one, silently drops images sent to a text-only model: then the images
        # add no prompt tokens to the same text. A 336 px tile costs any VLM 64 tokens or more, even where
        # the server counts only tokens it did not have cached (Ollama, llama.cpp): each probe starts with
        # its own number, so the images always come after the first token the two probes differ in.
        if probe is not None and with_image is not None and with_image - probe < IMAGE_PROBE_MIN_TOKENS:
            raise ModelError(f"model {self.model_id!r} at {self.base_url} ignored the image it was sent: "
                             "it takes no images; serve a vision-language model")

    def _probe_view(self, hd: int | None) -> PageView:
        """The page the image probe sends: the largest HD-``hd`` plans (within the context), else one tile."""
        if hd is not None:
            room = None if self.context_tokens is None else self.context_tokens - fit.PROMPT_TOKENS
            fits = hd if room is None else fit.largest_fitting_hd(hd, self.tile, self.family, room)
            if fits is not None:
                return fit.blank_view(fit.largest_plan(fits, self.tile, self.family))
        return fit.blank_view(plan((self.tile, self.tile), 1, self.tile))

    def _cache_too_small(self, exc: EncoderCacheFull, hd: int | None) -> BackendError:
        at = f" at HD-{hd}" if hd is not None else ""
        fits = fit.largest_fitting_hd(hd, self.tile, self.family, exc.cache) if hd is not None else None
        lower = f"or use --hd {fits} or lower" if fits else "or lower --hd"
        return BackendError(f"the server at {self.base_url} cannot take a page{at}: it needs {exc.tokens:,} visual "
                            f"tokens and the server's encoder cache holds {exc.cache:,}; restart vLLM with "
                            f"--max-num-batched-tokens {exc.tokens} or more (see: docvision models --serve vllm), "
                            f"{lower}")

    def _list_models(self) -> list[str] | None:
        """GET /models; None where the server cannot list them (``transformers serve`` with no HF cache)."""
        import httpx

        try:
            response = self._client.get("/models")
        except httpx.ReadTimeout:
            raise ExternalTimeout(f"the model server at {self.base_url} accepted the connection but sent "
                                  f"nothing for {self.timeout:g} s: check the server, or raise --request-timeout") from None
        except httpx.TransportError as exc:
            raise self._down(exc) from None
        if response.status_code in (401, 403):
            raise BackendError(f"the server at {self.base_url} refused the request ({response.status_code}): "
                               "set the API key in DOCVISION_API_KEY or OPENAI_API_KEY")
        try:
            data = response.json()["data"] if response.is_success else None
            if data is None:
                return None
            self.owner = str(data[0].get("owned_by", "")).lower() if data else ""
            self.listed_context = context_lengths(data)
            return [str(m["id"]) for m in data]
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def _probe(self, view: PageView, images: bool = True) -> int | None:
        """A one-token request with ``view`` as a page would go (``images=False``: the same text without its
        images); returns the prompt tokens the server counted (None when it did not say)."""
        content: list[dict] = [{"type": "text", "text": f"Probe {random.randrange(10**7, 10**8)}.\n"}]
        content += [part for part in self.message([view], "Reply OK.") if images or part["type"] == "text"]
        body = {"model": self.model_id, "messages": [{"role": "user", "content": content}],
                "max_tokens": 1, "temperature": 0, "stream": False}
        kwargs = self.family.processor_kwargs([view]) if images else None
        # A server that loads models on demand (transformers serve without a pinned model) loads it now.
        data = self._request(body, on_text=None, images=images, processor_kwargs=kwargs,
                             timeout=max(self.timeout, PROBE_TIMEOUT_S))
        usage = data.get("usage") or {}
        return usage.get("prompt_tokens")

    def _down(self, exc: Exception) -> BackendError:
        reason = type(exc).__name__ if not str(exc) else str(exc)
        return BackendError(f"cannot reach the model server at {self.base_url} ({reason}): start it "
                            "(docvision models --serve vllm prints the command) or fix --base-url / DOCVISION_BASE_URL")

    # -- answering ---------------------------------------------------------------------------------

    def generate(
        self,
        views: Sequence[PageView],
        prompt: str,
        *,
        max_new_tokens: int = 512,
        on_text: Callable[[str], None] | None = None,
        system: str | None = None,
    ) -> Generation:
        """Send the views and the prompt, stream the answer, retry transient failures."""
        started = time.perf_counter()
        content = self.message(views, prompt)
        encode_s = time.perf_counter() - started
        messages = [{"role": "user", "content": content}]
        if system is not None:
            messages.insert(0, {"role": "system", "content": system})
        # Without include_usage vLLM streams no token counts at all.
        body = {"model": self.model_id, "messages": messages, "max_tokens": max_new_tokens, "temperature": 0,
                "stream": True, "stream_options": {"include_usage": True}}
        kwargs = self.family.processor_kwargs(views)  # none for a text-only call
        status = self.status()
        visual = sum(self.visual_tokens(v.plan) for v in views)
        status.say(f"waiting for {self.base_url}: {len(views)} page(s), {visual:,} visual tokens sent")
        data = self._request(body, on_text=status.counting(on_text), images=bool(views), processor_kwargs=kwargs)
        usage = data.get("usage")
        timings = {"encode_s": round(encode_s, 3), "generate_s": round(time.perf_counter() - started - encode_s, 3)}
        if data.get("first_token_s") is not None:
            timings["first_token_s"] = round(data["first_token_s"], 3)  # of the attempt that answered
        if data.get("retries"):
            timings["retries"] = data["retries"]
        counted = isinstance(usage, dict) and usage.get("prompt_tokens") is not None
        return Generation(
            text=data["text"],
            prompt_tokens=int(usage["prompt_tokens"]) if counted else None,
            visual_tokens=visual,
            new_tokens=int(usage.get("completion_tokens") or 0) if counted else None,
            timings=timings,
            warnings=[] if counted else [NO_USAGE],
        )

    def message(self, views: Sequence[PageView], prompt: str) -> list[dict]:
        """The user message: the family's layout, each image part carrying its picture as a data URL.

        The pages come first and the prompt (instruction, then question) last, and encoding a canvas gives
        the same bytes every time: two questions about the same pages share the request up to the question,
        which is what a server's prefix cache keys on (docs/prefix.md)."""
        images = iter(self.family.images(views))
        content = []
        for part in self.family.content(views, prompt):
            if part["type"] == "image":
                part = {"type": "image_url", "image_url": {"url": encode_image(next(images))}}
            content.append(part)
        return content

    def _request(self, body: dict, on_text, images: bool, processor_kwargs: dict | None = None,
                 timeout: float | None = None) -> dict:
        """POST /chat/completions with retries; returns {"text", "usage", "first_token_s", "retries"}."""
        emitted = [0]  # characters already passed to on_text, so a retried stream does not repeat them

        def emit(piece_start: int, piece: str) -> None:
            if on_text is not None and piece_start + len(piece) > emitted[0]:
                on_text(piece[max(0, emitted[0] - piece_start):])
                emitted[0] = piece_start + len(piece)

        attempt = errors_500 = 0
        while True:
            payload = {**body, **(self._processor_fields(processor_kwargs) if processor_kwargs else {})}
            for name in self._dropped:
                payload.pop(name, None)
            try:
                return {**self._attempt(payload, emit, images, timeout), "retries": attempt}
            except _Retryable as exc:
                errors_500 += exc.status == 500
                if attempt >= self.retries or errors_500 > MAX_500_RETRIES:
                    raise BackendError(f"the model server at {self.base_url} failed {attempt + 1} time(s), "
                                       f"last: {exc}") from None
                time.sleep(exc.wait if exc.wait is not None else backoff(attempt))
                attempt += 1
            except _DropFields as exc:
                self._dropped = self._dropped | exc.fields  # a new set: other threads may be reading the old

    def _processor_fields(self, processor_kwargs: dict) -> dict:
        """Processor options in the request fields servers read.

        transformers serve forwards chat_template_kwargs to apply_chat_template, whose processor_kwargs reach
        the processor (checked on 5.23); vLLM and SGLang read mm_processor_kwargs and drop template kwargs a
        template does not use. A server that rejects these fields as unknown is sent none from then on; one
        that knows them and refuses them (vLLM without --trust-request-mm-kwargs) is an error that says so.
        """
        fields: dict = {"chat_template_kwargs": {"processor_kwargs": processor_kwargs}}
        if self.owner in ("vllm", "sglang"):
            mm = dict(processor_kwargs)
            size = mm.pop("size", None)
            if isinstance(size, dict) and "longest_edge" in size:  # Qwen: the pixel budget, as vLLM documents it
                mm.update(min_pixels=size.get("shortest_edge"), max_pixels=size["longest_edge"])
            fields["mm_processor_kwargs"] = mm
        return fields

    def _attempt(self, body: dict, emit: Callable[[int, str], None], images: bool,
                 timeout: float | None = None) -> dict:
        """One HTTP exchange; raises _Retryable for transient failures, a DocvisionError otherwise."""
        import httpx

        started = time.perf_counter()
        limit = self._client.timeout if timeout is None else httpx.Timeout(timeout, connect=self._client.timeout.connect)
        try:
            with self._client.stream("POST", "/chat/completions", json=body, timeout=limit) as response:
                if not response.is_success:
                    response.read()
                    self._fail(response, images, body)
                if not body.get("stream"):
                    response.read()
                    data = response.json()
                    text = (data.get("choices") or [{}])[0].get("message", {}).get("content") or ""
                    return {"text": text, "usage": data.get("usage")}
                return self._read_stream(response, emit, started, images)
        except httpx.ReadTimeout:
            raise ExternalTimeout(f"the model server at {self.base_url} sent nothing for {limit.read:g} s "
                                  "(stalled): check the server, or raise --request-timeout (DOCVISION_REQUEST_TIMEOUT)") from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError,
                httpx.WriteError, httpx.PoolTimeout) as exc:
            raise _Retryable(f"connection lost ({type(exc).__name__})") from None
        except ValueError:
            raise BackendError(f"the model server at {self.base_url} answered with malformed JSON") from None

    def _read_stream(self, response, emit, started: float, images: bool) -> dict:
        text: list[str] = []
        length = 0
        usage = None
        first = None
        finished = False
        for event in sse_events(response.iter_lines()):
            if event is None:
                finished = True
                break
            if "error" in event:  # servers report mid-stream failures as an event
                self._fail_text(message_of(event), images)
            for choice in event.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content") or ""
                if piece:
                    first = first if first is not None else time.perf_counter() - started
                    emit(length, piece)
                    text.append(piece)
                    length += len(piece)
                finished |= bool(choice.get("finish_reason"))
            usage = event.get("usage") or usage
        if not finished:  # neither [DONE] nor a finish_reason: the server went away mid-answer
            raise _Retryable("the stream ended before the answer did")
        return {"text": "".join(text), "usage": usage, "first_token_s": first}

    def _fail(self, response: "httpx.Response", images: bool, body: dict) -> None:
        message = error_text(response)
        status = response.status_code
        if status in RETRY_STATUS:
            raise _Retryable(f"HTTP {status}: {message}", retry_after(response.headers.get("retry-after")), status)
        sent = {name for name in OPTIONAL_FIELDS if name in body}
        if status in (400, 422) and UNEXPECTED_FIELD.search(message) and sent:
            raise _DropFields({name for name in sent if name in message} or sent)
        if status in (401, 403):
            raise BackendError(f"the server at {self.base_url} refused the request ({status}): "
                               "set the API key in DOCVISION_API_KEY or OPENAI_API_KEY")
        if status == 413:
            raise BackendError(f"the page images are too large for the server at {self.base_url}: lower --hd")
        self._fail_text(f"HTTP {status}: {message}", images)

    def _fail_text(self, message: str, images: bool) -> None:
        raise refusal(message, base_url=self.base_url, model=self.model_id, images=images, served=self.served)


class _DropFields(Exception):
    """The server refused optional fields as unknown; send the request again without them."""

    def __init__(self, fields: set[str]):
        super().__init__(", ".join(sorted(fields)))
        self.fields = fields


def family_of(model: str) -> "Family":
    """The family adapter of the served model: from its config.json when ``model`` is a local folder
    (``transformers serve PATH``), else inferred from its name; the generic 336 px path otherwise."""
    from pathlib import Path

    import docvision.models.families as families

    folder = Path(model) if model else None
    if folder is not None and (folder / "config.json").is_file():
        try:
            return families.family_of(folder)
        except (OSError, ValueError):
            pass
    return families.from_name(model)
