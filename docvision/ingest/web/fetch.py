"""Fetching a URL before any browser: fail fast on HTTP errors, download PDFs and images for their ingestors.

In: an http(s) URL and IngestOptions. Out (``probe``, on the browser's event loop): None when the URL
serves a web page (the browser captures it), a ``Download`` when it serves a PDF or an image (saved in
a private temporary folder; ``document()`` opens it with that ingestor and removes it when the
Document closes), or one DocvisionError line for whatever went wrong. The whole GET, headers and
body, must end within the timeout and stay under MAX_DOWNLOAD_BYTES, or it fails and leaves no file.
Passwords in URLs (https://user:pass@host/) are used for the request and never shown (``redact``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from urllib.parse import urlsplit

from docvision.document import Document, IngestOptions
from docvision.errors import DocvisionError, ExternalTimeout, FetchError, ImageTooLarge, UnsupportedSource
from docvision.ingest.checks import sniff
from docvision.sources import redact

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


@dataclass
class Download:
    """A PDF or image a URL served, saved at ``path`` (inside its own temporary ``folder``)."""

    source: str
    folder: str
    path: str
    final_url: str
    content_type: str
    opened: bool = False

    def document(self, options: IngestOptions, tools) -> Document:
        """Open the saved file with its ingestor; the folder goes when the Document closes."""
        # A URL is routed only to these two (not through the registry, which would import the web
        # ingestor back).
        import docvision.ingest.image as image
        import docvision.ingest.pdf as pdf
        from docvision.ingest.checks import kind_of

        shown = redact(self.source)
        self.opened = True
        try:
            document = (pdf if kind_of(self.path) == "pdf" else image).load(self.path, options, tools)
        except DocvisionError as exc:
            self.discard()
            exc.source = shown
            exc.message = exc.message.replace(self.path, shown)
            raise
        except BaseException:
            self.discard()
            raise
        document.source = shown
        document.also_close(self.discard)
        document.metadata = {**document.metadata, "url": shown, "final_url": redact(self.final_url),
                             "content_type": self.content_type, "routed_to": document.kind}
        return document

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


async def probe(url: str, options: IngestOptions) -> Download | None:
    """Fetch the URL's headers; fail on HTTP errors; download a PDF or image, else None (a page)."""
    import httpx

    shown = redact(url)
    # Like Chromium, never send loopback addresses to a proxy from the environment.
    loopback = (urlsplit(url).hostname or "") in ("localhost", "127.0.0.1", "::1")
    received = [-1]  # body bytes saved so far; -1 while no answer came

    async def get() -> Download | None:
        async with httpx.AsyncClient(timeout=httpx.Timeout(options.timeout), follow_redirects=True,
                                     headers={"User-Agent": USER_AGENT}, trust_env=not loopback) as client:
            async with client.stream("GET", url) as response:
                received[0] = 0
                return await _answer(url, response, received)

    try:
        return await asyncio.wait_for(get(), options.timeout)  # the whole GET, however it trickles
    except (asyncio.TimeoutError, httpx.TimeoutException):
        if received[0] < 0:
            raise ExternalTimeout(f"the server did not answer within {options.timeout:g} s (raise --timeout "
                                  "if it is just slow)", source=shown) from None
        raise ExternalTimeout(f"the download did not finish within {options.timeout:g} s ({received[0]:,} bytes "
                              "came; raise --timeout if the server is just slow)", source=shown) from None
    except httpx.HTTPError as exc:
        raise network_error(exc, url) from None


async def _answer(url: str, response, received: list[int]) -> Download | None:
    """Decide from the status and type: None for a page, a Download for a PDF or image."""
    if response.status_code in BROWSER_DECIDES:
        return None
    if response.status_code >= 400:
        raise FetchError(f"HTTP {response.status_code} {response.reason_phrase}".strip(), source=redact(url))
    ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
    chunks = response.aiter_bytes()
    head = b""
    suffix = ROUTED_TYPES.get(ctype)
    if suffix is None and not ctype.startswith(PAGE_TYPES):
        # No or a generic type (application/octet-stream): look at the bytes themselves.
        head = await anext(chunks, b"")
        found = sniff(head[:64])
        suffix = {"pdf": ".pdf", "image": _image_suffix(head)}.get(found or "")
        if suffix is None and found != "html" and ctype and not ctype.startswith("application/octet"):
            raise UnsupportedSource(f"the URL serves {ctype}, not a web page, PDF or image", source=redact(url))
    if suffix is None:
        return None
    return await _save(url, str(response.url), ctype, suffix, head, chunks, received)


def _image_suffix(head: bytes) -> str:
    for magic, suffix in ((b"\x89PNG", ".png"), (b"\xff\xd8", ".jpg"), (b"GIF8", ".gif"), (b"RIFF", ".webp"),
                          (b"BM", ".bmp")):
        if head.startswith(magic):
            return suffix
    return ".tiff"


async def _save(url, final_url, ctype, suffix, head, chunks, received: list[int]) -> Download:
    """The body in a file of a new temporary folder, removed again if anything stops the download."""
    folder = tempfile.mkdtemp(prefix="docvision-download-")
    path = os.path.join(folder, "download" + suffix)
    size = 0
    try:
        with open(path, "wb") as out:
            if head:
                size += len(head)
                out.write(head)
            async for piece in chunks:
                size += len(piece)
                received[0] = size
                if size > MAX_DOWNLOAD_BYTES:
                    raise ImageTooLarge(f"the download is over {MAX_DOWNLOAD_BYTES // 1_000_000} MB",
                                        source=redact(url))
                out.write(piece)
    except BaseException:  # a deadline, a cap, a cancelled capture ahead: no file stays behind
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Download(url, folder, path, final_url, ctype)


def scrub(text: str, url: str) -> str:
    """``text`` with the URL's password (and the URL as given) replaced by their shown form."""
    parts = urlsplit(url) if url.startswith(("http://", "https://")) else None
    if parts is None or parts.password is None and parts.username is None:
        return text
    text = text.replace(url, redact(url))
    for secret in (parts.password, f"{parts.username}:{parts.password}"):
        if secret:
            text = text.replace(secret, "***")
    return text


def network_error(exc: BaseException, url: str) -> DocvisionError:
    """One line for a connection that failed, from httpx's or Chromium's wording."""
    text = scrub(str(exc), url)
    shown = redact(url)
    parts = urlsplit(url)
    host = parts.hostname or shown
    where = f"{host}:{parts.port}" if parts.port else host
    causes = []
    cause: BaseException | None = exc
    while cause is not None and len(causes) < 8:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    if any(isinstance(c, socket.gaierror) for c in causes) or "ERR_NAME_NOT_RESOLVED" in text \
            or "Name or service not known" in text or "name resolution" in text:
        return FetchError(f"cannot resolve host {host} (check the address or your network)", source=shown)
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or "ERR_CONNECTION_REFUSED" in text \
            or "Connection refused" in text:
        return FetchError(f"connection refused by {where} (is the server running?)", source=shown)
    if "ERR_TIMED_OUT" in text or "ERR_CONNECTION_TIMED_OUT" in text:
        return ExternalTimeout(f"connecting to {where} timed out", source=shown)
    if "ERR_CERT" in text or "CERTIFICATE_VERIFY_FAILED" in text:
        return FetchError(f"the TLS certificate of {host} is not trusted (self-signed, expired or for another "
                          "name); save the page and render the file if you trust it", source=shown)
    if "redirects" in text.lower() or "ERR_TOO_MANY_REDIRECTS" in text:
        return FetchError("the URL redirects in a loop (too many redirects); check the address", source=shown)
    if "ERR_FILE_NOT_FOUND" in text:
        return FetchError("no such file", source=shown)
    if "Download is starting" in text or "ERR_ABORTED" in text:
        return FetchError("the URL starts a download instead of showing a page; downloads are refused",
                          source=shown)
    code = next((w for w in text.replace(" ", "\n").splitlines() if w.startswith("net::ERR_")), "")
    first = code or (text.strip().splitlines() or [type(exc).__name__])[0]
    return FetchError(f"could not open the page: {first}", source=shown)

