"""The pure pieces of the OpenAI chat-completions protocol the ``openai`` backend speaks.

In: images, HTTP header values, response bodies, lines of a server-sent-event stream. Out: data URLs,
seconds to wait, error messages, JSON events. No I/O, no state: the backend (backends/openai.py) does
the talking.
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

from docvision.errors import BackendError, UsageError

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
