"""Fetching a URL before any browser: fail fast on HTTP errors, route PDFs and images to their ingestors.

In: an http(s) URL and IngestOptions. Out: None when the URL serves a web page (the browser captures
it), a Document when it serves a PDF or an image (downloaded to a temporary file, opened by that
ingestor, removed when the Document closes), or one DocvisionError line for whatever went wrong.
"""

from __future__ import annotations

import itertools
import os
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from docvision.document import Document, IngestOptions
from docvision.errors import DocvisionError, ExternalTimeout, FetchError, ImageTooLarge, UnsupportedSource
from docvision.ingest.checks import sniff

# Content types routed to another ingestor, with the extension that selects it.
ROUTED_TYPES = {
    "application/pdf": ".pdf", "application/x-pdf": ".pdf",
    "image/png": ".png", "image/jpeg": ".jpg", "image/jpg": ".jpg", "image/webp": ".webp",
    "image/gif": ".gif", "image/tiff": ".tiff", "image/bmp": ".bmp", "image/x-ms-bmp": ".bmp",
}
# What Chromium shows as a page (SVG is a web document; plain text and XML render fine).
PAGE_TYPES = ("text/", "application/xhtml", "application/xml", "image/svg", "application/json")
# Statuses some sites give scripts but not browsers (bot walls, content negotiation): Chromium gets
# its own chance and its response status decides. Other 4xx/5xx fail at once, without a browser.
BROWSER_DECIDES = {401, 403, 405, 406, 429}
MAX_DOWNLOAD_BYTES = 500_000_000
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) docvision"


def probe(url: str, options: IngestOptions, tools: "Tools") -> Document | None:
    """Fetch the URL's headers; fail on HTTP errors; download and route a PDF or image, else None."""
    import httpx

    # Like Chromium, never send loopback addresses to a proxy from the environment.
    loopback = (urlsplit(url).hostname or "") in ("localhost", "127.0.0.1", "::1")
    try:
        with httpx.stream("GET", url, timeout=httpx.Timeout(options.timeout), follow_redirects=True,
                          headers={"User-Agent": USER_AGENT}, trust_env=not loopback) as response:
            if response.status_code in BROWSER_DECIDES:
                return None
            if response.status_code >= 400:
                raise FetchError(f"HTTP {response.status_code} {response.reason_phrase}".strip(), source=url)
            ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
            chunks = response.iter_bytes()
            head = b""
            suffix = ROUTED_TYPES.get(ctype)
            if suffix is None and not ctype.startswith(PAGE_TYPES):
                # No or a generic type (application/octet-stream): look at the bytes themselves.
                head = next(chunks, b"")
                found = sniff(head[:64])
                suffix = {"pdf": ".pdf", "image": _image_suffix(head)}.get(found or "")
                if suffix is None and found != "html" and ctype and not ctype.startswith("application/octet"):
                    raise UnsupportedSource(
                        f"the URL serves {ctype}, not a web page, PDF or image", source=url)
            if suffix is None:
                return None
            return _route(url, str(response.url), ctype, suffix, head, chunks, options, tools)
    except httpx.TimeoutException:
        raise ExternalTimeout(
            f"the server did not answer within {options.timeout:g} s (raise --timeout if it is just slow)",
            source=url) from None
    except httpx.HTTPError as exc:
        raise network_error(exc, url) from None


def _image_suffix(head: bytes) -> str:
    for magic, suffix in ((b"\x89PNG", ".png"), (b"\xff\xd8", ".jpg"), (b"GIF8", ".gif"), (b"RIFF", ".webp"),
                          (b"BM", ".bmp")):
        if head.startswith(magic):
            return suffix
    return ".tiff"


def _route(url, final_url, ctype, suffix, head, chunks, options, tools) -> Document:
    """Save the body to a temporary file and open it with the PDF or image ingestor."""
    from docvision import ingest

    fd, name = tempfile.mkstemp(prefix="docvision-", suffix=suffix)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for piece in itertools.chain([head], chunks):
                size += len(piece)
                if size > MAX_DOWNLOAD_BYTES:
                    raise ImageTooLarge(f"the download is over {MAX_DOWNLOAD_BYTES // 1_000_000} MB",
                                        source=url)
                out.write(piece)
        document = ingest.load(name, options, tools)
    except DocvisionError as exc:
        os.unlink(name)
        exc.source = url
        exc.message = exc.message.replace(name, url)
        raise
    except BaseException:
        os.unlink(name)
        raise
    inner_close = document.closer

    def close() -> None:
        try:
            if inner_close is not None:
                inner_close()
        finally:
            Path(name).unlink(missing_ok=True)

    document.source = url
    document.closer = close
    document.metadata = {**document.metadata, "url": url, "final_url": final_url, "content_type": ctype,
                         "routed_to": document.kind}
    return document


def network_error(exc: BaseException, url: str) -> DocvisionError:
    """One line for a connection that failed, from httpx's or Chromium's wording."""
    text = str(exc)
    parts = urlsplit(url)
    host = parts.hostname or url
    where = f"{host}:{parts.port}" if parts.port else host
    causes = []
    cause: BaseException | None = exc
    while cause is not None and len(causes) < 8:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    if any(isinstance(c, socket.gaierror) for c in causes) or "ERR_NAME_NOT_RESOLVED" in text \
            or "Name or service not known" in text or "name resolution" in text:
        return FetchError(f"cannot resolve host {host} (check the address or your network)", source=url)
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or "ERR_CONNECTION_REFUSED" in text \
            or "Connection refused" in text:
        return FetchError(f"connection refused by {where} (is the server running?)", source=url)
    if "ERR_TIMED_OUT" in text or "ERR_CONNECTION_TIMED_OUT" in text:
        return ExternalTimeout(f"connecting to {where} timed out", source=url)
    if "ERR_CERT" in text or "CERTIFICATE_VERIFY_FAILED" in text:
        return FetchError(f"the TLS certificate of {host} is not trusted (self-signed, expired or for another "
                          "name); save the page and render the file if you trust it", source=url)
    if "redirects" in text.lower() or "ERR_TOO_MANY_REDIRECTS" in text:
        return FetchError("the URL redirects in a loop (too many redirects); check the address", source=url)
    if "ERR_FILE_NOT_FOUND" in text:
        return FetchError("no such file", source=url)
    if "Download is starting" in text or "ERR_ABORTED" in text:
        return FetchError("the URL starts a download instead of showing a page; downloads are refused",
                          source=url)
    code = next((w for w in text.replace(" ", "\n").splitlines() if w.startswith("net::ERR_")), "")
    first = code or (text.strip().splitlines() or [type(exc).__name__])[0]
    return FetchError(f"could not open the page: {first}", source=url)


def browser_error(exc: Exception, source: str, timeout: float) -> DocvisionError:
    """One line for a Playwright failure during a capture."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    if isinstance(exc, PlaywrightTimeout):
        return ExternalTimeout(f"the browser did not finish within {timeout:g} s", source=source)
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if "closed" in text.lower() or "crash" in text.lower():
        return FetchError(f"the browser page crashed or closed: {text}", source=source)
    return FetchError(f"the browser failed: {text}", source=source)
