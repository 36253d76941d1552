"""An e-mail's structure: its headers, body and attachments, read with the standard library's parser.

In: a .eml path or its bytes, or a source such as ``mail.eml#invoice.pdf``. Out: the parsed message, its
body part, its attachments with safe, unique file names, and for a batch the attachments docvision reads
(``attachment_names``: ``sources.expand`` lists them as sources of their own). Nothing here draws or
imports a renderer: ``mail`` turns a message into pages.

Names: an attachment is named after its file name with folders, control characters, '#' and leading dots
taken out (one with no name gets ``attachment-N`` and an extension from its type); a repeated name gets
" (2)" before its extension. A message attached to a message is an attachment too, and so are its own:
``mail.eml#forward.eml#report.xlsx``, followed at most MAX_DEPTH deep.
"""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path, PurePosixPath

from docvision.errors import DamagedSource, DocvisionError
from docvision.ingest.checks import EXTENSIONS, decode_text, is_url

MAX_MESSAGE = 64 << 20  # bytes of a .eml read; a larger one is refused (attachments that large are rare)
MAX_DEPTH = 3  # messages inside messages followed this deep
CID = re.compile(r"""(["'(])cid:([^"')\s]+)""", re.IGNORECASE)
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\#]")


def parse(path: Path, source: str) -> EmailMessage:
    """The message in a .eml file; DamagedSource when it holds no e-mail."""
    if path.stat().st_size > MAX_MESSAGE:
        raise DamagedSource(f"the message is over {MAX_MESSAGE >> 20} MB; save the attachments you need and read "
                            "them instead", source=source)
    with open(path, "rb") as fh:
        data = fh.read()
    return parse_bytes(data, source)


def parse_bytes(data: bytes, source: str) -> EmailMessage:
    """The message in ``data``; DamagedSource for binary bytes or text with no mail header."""
    decode_text(data[:8192], source, "mail message")  # binary bytes (a PDF named .eml) are refused here
    message = BytesParser(policy=policy.default).parsebytes(data)
    if not any(message.get(name) for name in ("From", "To", "Subject", "Date", "Message-ID")):
        raise DamagedSource("not an e-mail message: it has no From, To, Subject or Date header", source=source)
    return message


def attachments(message: EmailMessage) -> list[tuple[str, EmailMessage]]:
    """(safe file name, part) of every attachment, in the message's order; names made unique."""
    body = body_part(message)
    shown_inline = set(inline_ids(message, body))
    found, taken = [], set()
    for part in leaves(message):
        if part is body or part.get("Content-ID", "").strip("<> ") in shown_inline:
            continue
        name = part.get_filename()
        if not name and part.get_content_disposition() != "attachment" and part.get_content_type() != "message/rfc822":
            continue  # an alternative body (the text version of an HTML mail), not an attachment
        name = _unique(_safe_name(name, part, len(found) + 1), taken)
        found.append((name, part))
    return found


def attachment_names(path: Path, depth: int = 0) -> list[str]:
    """The attachments of a .eml that become sources of their own, as ``name`` or ``name#inner``; [] when the
    file cannot be read (the message's own record says why)."""
    try:
        return _readable(parse(path, str(path)), depth)
    except Exception:  # noqa: BLE001 - listing a batch never fails on a message: its own record will say why
        return []


def _readable(message: EmailMessage, depth: int) -> list[str]:
    names = []
    for name, part in attachments(message):
        if EXTENSIONS.get(Path(name).suffix.lower()) is None:
            continue
        names.append(name)
        if name.lower().endswith(".eml") and depth + 1 < MAX_DEPTH:
            inner = inner_message(part)
            if inner is not None:
                names += [f"{name}#{deeper}" for deeper in _readable(inner, depth + 1)]
    return names


def split(source: str) -> tuple[str, list[str]] | None:
    """(the .eml file, the attachment names inside it) for ``mail.eml#invoice.pdf``; None for anything else
    (a file whose own name holds '#' is a file)."""
    if is_url(source) or "#" not in source or Path(source).exists():
        return None
    head, *names = source.split("#")
    while names:
        if head.lower().endswith(".eml") and Path(head).is_file():
            return head, names
        head = f"{head}#{names.pop(0)}"
    return None


def body_part(message: EmailMessage) -> EmailMessage | None:
    """The part a mail program shows as the message: its HTML, else its plain text (None: neither)."""
    try:
        return message.get_body(preferencelist=("html", "plain"))
    except (KeyError, LookupError, ValueError):
        return None


def text_of(part: EmailMessage) -> str:
    """A text part's text, decoded by its charset (UTF-8 with replacements when the charset is unknown)."""
    try:
        return part.get_content()
    except (LookupError, ValueError, AssertionError):  # an unknown charset or a broken transfer encoding
        return payload(part).decode("utf-8", errors="replace")


def payload(part: EmailMessage) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        return inner.as_bytes(policy=policy.default) if isinstance(inner, EmailMessage) else b""
    return part.get_payload(decode=True) or b""


def inner_message(part: EmailMessage) -> EmailMessage | None:
    """A message attached to a message (message/rfc822, or a .eml file attached as bytes)."""
    try:
        return parse_bytes(payload(part), "attachment")
    except (DocvisionError, ValueError):
        return None


def leaves(message: EmailMessage):
    """The message's parts that are not containers, in order; an attached message is one part (its own
    parts are its business, not this message's)."""
    for part in message.iter_parts() if message.is_multipart() else [message]:
        if part.is_multipart() and part.get_content_type() != "message/rfc822":
            yield from leaves(part)
        else:
            yield part


def inline_parts(message: EmailMessage) -> dict[str, EmailMessage]:
    return {part["Content-ID"].strip("<> "): part for part in leaves(message)
            if part.get("Content-ID") and part.get_content_maintype() == "image"}


def inline_ids(message: EmailMessage, body: EmailMessage | None) -> list[str]:
    """Content-IDs of the pictures the HTML body shows (they are part of the body, not attachments)."""
    if body is None or body.get_content_type() != "text/html":
        return []
    shown = set(m.group(2) for m in CID.finditer(text_of(body)))
    return [cid for cid in inline_parts(message) if cid in shown]


def _safe_name(name: str | None, part: EmailMessage, number: int) -> str:
    """A file name with no folders, control characters, '#' or leading dots; one from the type if none."""
    if name:
        name = _UNSAFE.sub("_", PurePosixPath(name.replace("\\", "/")).name).lstrip(". ").strip()
    if not name:
        import mimetypes

        kind = part.get_content_type()
        extension = ".eml" if kind == "message/rfc822" else mimetypes.guess_extension(kind) or ".bin"
        name = f"attachment-{number}{extension}"
    return name


def _unique(name: str, taken: set[str]) -> str:
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, n = name, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{stem} ({n}){suffix}"
    taken.add(candidate.lower())
    return candidate
