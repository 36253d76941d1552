"""The pure pieces of the OpenAI chat-completions protocol the ``openai`` backend speaks.

In: images, HTTP header values, response bodies, lines of a server-sent-event stream, the texts servers
refuse a request with. Out: data URLs, seconds to wait, error messages, JSON events, the one-line error
a refusal means for a person. No I/O, no state: the backend (models/openai.py) does the talking.
"""

from __future__ import annotations

import base64
import io
import json
import random
import re
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Iterator

from docvision.errors import BackendError, DocvisionError, ModelError, UsageError

if TYPE_CHECKING:
    import httpx
    from PIL import Image

# A text page at HD-25 is a few hundred KB as PNG; photos and scans are several MB. Above this size a
# JPEG at quality 92 without chroma subsampling (text edges stay sharp) is sent instead, if smaller.
PNG_LIMIT_BYTES = 1_500_000
JPEG_QUALITY = 92
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 10.0
RETRY_AFTER_CAP_S = 60.0


def normalize_base_url(url: str) -> str:
    """``http://host:8000`` -> ``http://host:8000/v1``; a URL with a path is kept as given."""
    url = url.strip().rstrip("/")
    if not re.match(r"^https?://", url):
        raise UsageError(f"--base-url must start with http:// or https://, got {url!r}")
    if re.match(r"^https?://[^/]+$", url):
        url += "/v1"
    return url


def encode_image(image: "Image.Image") -> str:
    """A data URL for ``image``: lossless PNG unless that is large, then JPEG q92 4:4:4 if smaller."""
    png = io.BytesIO()
    image.save(png, format="PNG", compress_level=3)  # level 3: most of level 6's size, much faster
    data, mime = png.getvalue(), "image/png"
    if len(data) > PNG_LIMIT_BYTES:
        jpeg = io.BytesIO()
        image.convert("RGB").save(jpeg, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
        if jpeg.tell() < len(data):
            data, mime = jpeg.getvalue(), "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def error_text(response: "httpx.Response") -> str:
    """The server's error message, from the shapes servers use ({"error": {"message"}}, {"detail"}, ...)."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:300] or response.reason_phrase
    return message_of(body)


def message_of(body: Any) -> str:
    """The message inside an error body, whatever its shape, as one line."""
    if isinstance(body, dict):
        for key in ("error", "detail", "message"):
            if key in body:
                return message_of(body[key])
    if isinstance(body, list) and body:
        return "; ".join(message_of(item.get("msg", item) if isinstance(item, dict) else item) for item in body)
    return " ".join(str(body).split())[:300]


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), capped; None if absent."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP_S)


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** attempt))


def sse_events(lines: Iterator[str]) -> Iterator[dict | None]:
    """The JSON payloads of a ``text/event-stream``; None for ``data: [DONE]``, which ends it."""
    for line in lines:
        if not line.startswith("data:"):
            continue  # blank separators, comments (": ping"), event names
        payload = line[5:].strip()
        if payload == "[DONE]":
            yield None
            return
        if payload:
            try:
                yield json.loads(payload)
            except ValueError:
                raise BackendError(f"the server sent a malformed stream event: {payload[:120]}") from None


# What servers say when the model takes no images (vLLM, SGLang, Ollama, llama.cpp, LM Studio).
_NO_IMAGES = re.compile(
    r"not a multimodal model|does not support (image|vision|multimodal)|at most 0 image|"
    r"image input is not supported|images? (are|is) not supported|no vision|vision is not (enabled|supported)|"
    r"mmproj|multimodal (input|data) (is )?not supported", re.I)
_UNKNOWN_MODEL = re.compile(r"model .*(does not exist|not found|is not served)|unknown model|no such model|"
                            r"pinned to|model_not_found|invalid model", re.I)
UNEXPECTED_FIELD = re.compile(r"unexpected field|unrecognized request argument|extra (fields|inputs) not "
                              r"permitted|extra_forbidden", re.I)
# vLLM (0.10 and later) refuses per-request processor options unless started with --trust-request-mm-kwargs.
_KWARGS_DISABLED = re.compile(r"mm_processor_kwargs are disabled|--trust-request-mm-kwargs", re.I)
# vLLM: "... image item with 3456 embedding tokens, which exceeds the pre-allocated encoder cache size 2048"
_ENCODER_CACHE = re.compile(r"with (\d+) embedding tokens,? which exceeds the pre-allocated encoder cache "
                            r"size (\d+)", re.I)
_CONTEXT = re.compile(r"context length|maximum context|max_model_len|too many tokens|too long", re.I)

KWARGS_FIX = ("restart vLLM with --trust-request-mm-kwargs (docvision sends each page's processor options so "
              "that the model sees the planned resolution)")


class EncoderCacheFull(BackendError):
    """The server's encoder cache is smaller than one page's visual tokens (vLLM)."""

    def __init__(self, message: str, tokens: int, cache: int):
        super().__init__(message)
        self.tokens, self.cache = tokens, cache


def refusal(message: str, *, base_url: str, model: str, images: bool, served: list[str] | None) -> DocvisionError:
    """The one-line error a server's refusal means: what is wrong and the flag that fixes it."""
    if images and _NO_IMAGES.search(message):
        return ModelError(f"model {model!r} at {base_url} takes no images ({message}): serve a vision-language model")
    if _UNKNOWN_MODEL.search(message):
        offer = f"; it serves: {', '.join(served)}" if served else ""
        return ModelError(f"the server at {base_url} does not serve model {model!r} ({message}){offer}: fix --model")
    if _KWARGS_DISABLED.search(message):
        return BackendError(f"the server at {base_url} refuses per-request processor options ({message}): {KWARGS_FIX}")
    cache = _ENCODER_CACHE.search(message)
    if cache:
        tokens, size = int(cache.group(1)), int(cache.group(2))
        return EncoderCacheFull(
            f"a page of {tokens:,} visual tokens does not fit the server's encoder cache of {size:,} ({message}): "
            f"restart vLLM with --max-num-batched-tokens {tokens} or more, or lower --hd", tokens, size)
    limit = re.search(r"at most (\d+) image", message, re.I)
    if limit:  # vLLM's --limit-mm-per-prompt (a generic-family page is 1 + its tiles images)
        return BackendError(f"the server takes at most {limit.group(1)} images per request ({message}): "
                            "lower --max-pages (or --hd), or raise the server's --limit-mm-per-prompt")
    if _CONTEXT.search(message):
        return BackendError(f"the prompt is too long for the served model ({message}): lower --hd, or raise the "
                            "server's --max-model-len (and tell docvision with --max-context where the server "
                            "does not list it)")
    return BackendError(f"the model server at {base_url} failed: {message}")


def context_lengths(models: list) -> dict[str, int]:
    """Each listed model's context length, where ``GET /models`` says it (vLLM's and SGLang's max_model_len)."""
    lengths = {}
    for entry in models:
        value = entry.get("max_model_len") if isinstance(entry, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            lengths[str(entry.get("id"))] = value
    return lengths
