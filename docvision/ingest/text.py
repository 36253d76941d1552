"""Plain text and Markdown: a .txt or .md file in, the pages a reader sees out, drawn by the run's Chromium.

In: a path, IngestOptions and the run's Tools. Out: a Document of kind "text" whose pages are the file
drawn as a page ("segment i/n", as web pages are cut), with the words and their boxes from the page.

Plain text is shown as an editor shows it: its own line breaks, long lines wrapped, a monospaced font.
Markdown is formatted as a Markdown viewer formats it (headings, lists, emphasis, code, tables, quotes),
converted to HTML by markdown-it (CommonMark with tables and strikethrough); HTML written inside the
Markdown is shown as text, never run. A picture the Markdown names is embedded when it is a file in the
Markdown file's own folder tree (the rule docs/web.md gives local pages); any other is left to the page,
which has no network unless --local-pages-online lets it out.

``render_html`` is the step the mail ingestor shares: an HTML page written to a private folder, captured
as a local page, the Document handed back under the source's own name.
"""

from __future__ import annotations

import base64
import html
import mimetypes
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from docvision.document import Document, IngestOptions
from docvision.errors import DocvisionError, EmptySource
from docvision.ingest.checks import check_file, decode_text

MAX_TEXT = 1 << 20  # characters shown; past them a warning says how much was left out
MAX_PICTURE = 20 << 20  # bytes of one picture embedded from the Markdown's folder
MARKDOWN = {".md", ".markdown"}
STYLE = """
body { font-family: 'DejaVu Sans', 'Liberation Sans', Arial, sans-serif; font-size: 16px; line-height: 1.5;
       color: #1f2328; background: #fff; margin: 0; padding: 24px 32px; overflow-wrap: break-word; }
pre.text { font-family: 'DejaVu Sans Mono', 'Liberation Mono', monospace; font-size: 15px; white-space: pre-wrap;
           margin: 0; }
h1, h2 { border-bottom: 1px solid #d1d9e0; padding-bottom: .3em; }
code, pre { font-family: 'DejaVu Sans Mono', 'Liberation Mono', monospace; font-size: 14px; background: #f6f8fa; }
pre { padding: 12px 16px; border-radius: 6px; white-space: pre-wrap; }
code { padding: .1em .3em; border-radius: 4px; }
pre code { padding: 0; }
blockquote { margin: 0 0 16px; padding: 0 1em; color: #59636e; border-left: .25em solid #d1d9e0; }
table { border-collapse: collapse; margin: 0 0 16px; }
th, td { border: 1px solid #d1d9e0; padding: 6px 13px; }
th { background: #f6f8fa; }
img { max-width: 100%; }
table.headers { border: none; margin: 0 0 20px; }
table.headers th, table.headers td { border: none; background: none; padding: 2px 12px 2px 0; text-align: left;
                                     vertical-align: top; }
table.headers th { color: #59636e; font-weight: normal; }
hr.mail { border: none; border-top: 1px solid #d1d9e0; margin: 0 0 20px; }
"""


def load(source: str, options: IngestOptions, tools) -> Document:
    """Draw a text or Markdown file as its reader sees it."""
    path = check_file(source)
    with open(path, "rb") as fh:
        data = fh.read(MAX_TEXT * 4 + 4)
    text, encoding = decode_text(data, source)
    warnings = []
    if len(text) > MAX_TEXT or path.stat().st_size > len(data):
        text = text[:MAX_TEXT]
        warnings.append(f"only the first {MAX_TEXT:,} characters are shown")
    if not text.strip():
        raise EmptySource("the file holds no text", source=source)
    markdown = path.suffix.lower() in MARKDOWN
    body = markdown_html(text, path.parent) if markdown else f'<pre class="text">{html.escape(text)}</pre>'
    document = render_html(page_html(path.name, body), source, options, tools)
    document.warnings[:0] = warnings
    document.metadata = {"format": "Markdown" if markdown else "plain text", "encoding": encoding}
    return document


def page_html(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>")


def markdown_html(text: str, folder: Path) -> str:
    """Markdown as HTML (CommonMark, tables, strikethrough; raw HTML shown as text), with the pictures
    it names from its own folder tree embedded."""
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    tokens = parser.parse(text)
    for token in tokens:
        for child in token.children or ():
            if child.type == "image":
                child.attrSet("src", embedded(child.attrGet("src") or "", folder))
    return parser.renderer.render(tokens, parser.options, {})


def embedded(src: str, folder: Path) -> str:
    """A picture reference as the page may load it: a data URL for a regular, visible file inside
    ``folder``'s tree; anything else unchanged (a local page reaches nothing else)."""
    parts = urlsplit(src)
    if parts.scheme not in ("", "file") or not parts.path:
        return src
    root = os.path.realpath(folder)
    target = os.path.realpath(os.path.join(root, unquote(parts.path)))
    inside = target.startswith(root + os.sep) and not any(p.startswith(".") for p in Path(target[len(root):]).parts)
    if not inside or not os.path.isfile(target) or os.path.getsize(target) > MAX_PICTURE:
        return src
    kind = mimetypes.guess_type(target)[0] or "application/octet-stream"
    with open(target, "rb") as fh:
        return f"data:{kind};base64,{base64.b64encode(fh.read()).decode('ascii')}"


def render_html(page: str, source: str, options: IngestOptions, tools, kind: str = "text") -> Document:
    """Capture an HTML page as a local page in Chromium; the Document carries ``source``'s name."""
    import docvision.ingest.web as web

    folder = Path(tempfile.mkdtemp(prefix="docvision-text-"))
    try:
        written = folder / "page.html"
        written.write_text(page, encoding="utf-8")
        try:
            document = web.load(str(written), options, tools)
        except DocvisionError as exc:
            raise renamed(exc, str(written), source) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # the page is captured by now
    document.source, document.kind = source, kind
    return document


def renamed(exc: DocvisionError, shown: str, source: str) -> DocvisionError:
    """The error of a private copy, told about the source the user named."""
    exc.message = exc.message.replace(shown, source)
    exc.args = (exc.message,)
    exc.source = source
    return exc
