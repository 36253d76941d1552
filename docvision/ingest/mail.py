"""E-mail (.eml): the message as a reader sees it, and its attachments as sources of their own.

In: a .eml path (or ``mail.eml#invoice.pdf``, an attachment of it), IngestOptions and the run's Tools.
Out: for the message, a Document of kind "mail": its headers (from, to, cc, date, subject), its body
(the HTML part as a mail program shows it, pictures it embeds included; else the text part) and the
list of its attachments, drawn by the run's Chromium (``text.render_html``); for an attachment, the
Document its own ingestor makes of it, under the name ``mail.eml#invoice.pdf`` (``attachments`` says
how attachments are found and named). The mail's HTML runs no network (a local page's rules,
docs/web.md); its scripts are removed, as mail programs do.
"""

from __future__ import annotations

import base64
import html
import re
import shutil
import tempfile
from email.message import EmailMessage
from pathlib import Path

from docvision.document import Document, IngestOptions
from docvision.errors import DamagedSource, DocvisionError, SourceNotFound
from docvision.ingest.attachments import (CID, attachments, body_part, inline_parts, inner_message, parse, payload,
                                          split, text_of)
from docvision.ingest.checks import check_file
import docvision.ingest.text as text

HEADERS = ("From", "To", "Cc", "Date", "Subject")
_SCRIPT = re.compile(r"<script\b.*?</script\s*>|<script\b[^>]*/?>", re.IGNORECASE | re.DOTALL)


def load(source: str, options: IngestOptions, tools) -> Document:
    """The message as its reader sees it: headers, body, the list of attachments."""
    message = parse(check_file(source), source)
    return _message_document(message, source, options, tools)


def _message_document(message: EmailMessage, source: str, options: IngestOptions, tools) -> Document:
    try:
        listed = [name for name, _part in attachments(message)]
        page = text.page_html(str(message.get("Subject", "")) or Path(source).name, message_html(message, listed))
    except Exception:  # noqa: BLE001 - the parser takes anything; a part it cannot decode surfaces here
        raise DamagedSource("the message's parts cannot be read (a damaged MIME structure or encoding)",
                            source=source) from None
    document = text.render_html(page, source, options, tools, kind="mail")
    document.metadata = {"format": "e-mail", "subject": str(message.get("Subject", "")),
                         "from": str(message.get("From", "")), "date": str(message.get("Date", "")),
                         "attachments": listed}
    return document


def load_attachment(source: str, options: IngestOptions, tools, load_file) -> Document:
    """An attachment as a Document of its own kind, named ``source`` (``load_file`` opens the extracted file)."""
    mail, names = split(source)
    message = parse(check_file(mail), mail)
    for depth, name in enumerate(names):
        part = dict(attachments(message)).get(name)
        if part is None:
            raise SourceNotFound(f"the message has no attachment named {name!r}", source=source)
        if depth < len(names) - 1:
            message = inner_message(part)
            if message is None:
                raise DamagedSource(f"the attached message {name!r} cannot be read", source=source)
    if name.lower().endswith(".eml") and inner_message(part) is not None:
        return _message_document(inner_message(part), source, options, tools)
    folder = Path(tempfile.mkdtemp(prefix="docvision-mail-"))
    try:
        extracted = folder / name
        extracted.write_bytes(payload(part))
        try:
            document = load_file(str(extracted), options, tools)
        except DocvisionError as exc:
            raise text.renamed(exc, str(extracted), source) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    document.source = source
    document.also_close(lambda: shutil.rmtree(folder, ignore_errors=True))
    return document


def message_html(message: EmailMessage, listed: list[str]) -> str:
    """The message's headers, body and attachment list as the body of an HTML page."""
    rows = "".join(f"<tr><th>{name}</th><td>{html.escape(str(message.get(name)))}</td></tr>"
                   for name in HEADERS if message.get(name))
    parts = [f'<table class="headers">{rows}</table><hr class="mail">', _body_html(message)]
    if listed:
        items = "".join(f"<li>{html.escape(name)}</li>" for name in listed)
        parts.append(f'<hr class="mail"><p>Attachments ({len(listed)}):</p><ul>{items}</ul>')
    return "".join(parts)


def _body_html(message: EmailMessage) -> str:
    body = body_part(message)
    if body is None:
        return "<p><em>(no text)</em></p>"
    content = text_of(body)
    if body.get_content_type() != "text/html":
        return f'<pre class="text">{html.escape(content)}</pre>'
    images = inline_parts(message)  # cid: pictures the HTML shows, embedded so the page needs nothing else
    return CID.sub(lambda m: m.group(1) + (_data_url(images[m.group(2)]) if m.group(2) in images else m.group(0)[1:]),
                   _SCRIPT.sub("", content))


def _data_url(part: EmailMessage) -> str:
    return f"data:{part.get_content_type()};base64,{base64.b64encode(payload(part)).decode('ascii')}"
