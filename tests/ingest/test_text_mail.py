"""Plain text, Markdown and e-mail: drawn by the real Chromium as a reader sees them, attachments as sources.

Fixtures are written here (a .txt, a .md with a picture beside it, a .eml with an HTML body, a PDF and a
text attachment and a program); tesseract judges the pixels, the DOM words judge the text layer.
"""

from __future__ import annotations

from email.message import EmailMessage

import pymupdf
import pytest
from PIL import Image

from docvision import ingest, views
from docvision.document import IngestOptions
from docvision.errors import DamagedSource, SourceNotFound
from docvision.ingest.tools import Tools
from docvision.sources import expand
from docvision.tiling import plan
from tests.helpers import json_lines, read_back, run_cli
from tests.ingest.web_support import chromium  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.ocr, pytest.mark.usefixtures("chromium")]
MARKDOWN = """# Quarterly results

Revenue grew by **42 percent** in the third quarter.

| Region | Revenue |
|--------|---------|
| North  | 1200    |

![chart](chart.png) <script>document.title = "ran"</script>
"""


@pytest.fixture(scope="module")
def tools():
    with Tools(IngestOptions()) as shared:
        yield shared


def _text(document) -> tuple[list, str]:
    """(the pages, what tesseract reads on them at HD-25)."""
    pages = list(document.pages())
    return pages, "\n".join(read_back(views.canvas(page, plan(page.size, 25))) for page in pages)


def test_markdown_is_formatted_and_its_words_have_boxes(tmp_path, tools):
    Image.new("RGB", (120, 60), (200, 0, 0)).save(tmp_path / "chart.png")
    (tmp_path / "notes.md").write_text(MARKDOWN, encoding="utf-8")
    with ingest.load(str(tmp_path / "notes.md"), IngestOptions(), tools) as document:
        pages, text = _text(document)
        assert document.kind == "text" and document.metadata["format"] == "Markdown"
        heading = next(w for w in pages[0].words if w.text == "Quarterly")
        body = next(w for w in pages[0].words if w.text == "Revenue")
        board = views.canvas(pages[0], plan(pages[0].size, 25))
    assert "Quarterly results" in text and "42 percent" in text and "North" in text
    assert "#" not in text and "|" not in text  # formatted, not shown as markup
    assert heading.box[3] - heading.box[1] > 1.5 * (body.box[3] - body.box[1])  # a heading, drawn large
    assert "<script>" in " ".join(w.text for w in pages[0].words) or "script" in text  # shown as text, not run
    assert _reds(board) > 100  # the picture beside the file is embedded


def _reds(image) -> int:
    """Pixels of the fixture's red picture in ``image``."""
    r, g, b = image.split()
    mask = Image.eval(r, lambda v: 255 if v > 150 else 0)
    for channel in (g, b):
        mask = Image.composite(mask, Image.new("L", image.size, 0), Image.eval(channel, lambda v: 255 if v < 60 else 0))
    return mask.histogram()[255]


def test_plain_text_keeps_its_lines(tmp_path, tools):
    (tmp_path / "log.txt").write_bytes("Invoice 4711\n    total: 1234.56 EUR\nDue: Friday\n".encode("cp1252"))
    with ingest.load(str(tmp_path / "log.txt"), IngestOptions(), tools) as document:
        pages, text = _text(document)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[:3] == ["Invoice 4711", "total: 1234.56 EUR", "Due: Friday"]
    assert [w.text for w in pages[0].words][:2] == ["Invoice", "4711"]


def test_binary_named_txt_is_refused(tmp_path):
    (tmp_path / "data.txt").write_bytes(b"%PDF-1.7\n" + bytes(range(256)))
    with pytest.raises(DamagedSource, match="not a text file: it is a PDF file"):
        ingest.load(str(tmp_path / "data.txt"))


def _mail(path) -> None:
    page = pymupdf.open()
    page.new_page().insert_text((72, 100), "Invoice 4711 total 1234.56 EUR", fontsize=20)
    message = EmailMessage()
    message["From"], message["To"] = "Alice Example <alice@example.org>", "bob@example.org"
    message["Subject"], message["Date"] = "Quarterly invoice", "Fri, 04 Dec 2026 10:00:00 +0000"
    message.set_content("Hello Bob, the invoice is attached.")
    message.add_alternative("<p>Hello Bob,</p><p>the <b>invoice</b> is attached and due on Friday.</p>"
                            "<script>document.body.innerHTML = 'SCRIPT RAN'</script>", subtype="html")
    message.add_attachment(page.tobytes(), maintype="application", subtype="pdf", filename="invoice.pdf")
    message.add_attachment(b"Remember the deadline", maintype="text", subtype="plain", filename="../notes.txt")
    message.add_attachment(b"MZ\x00\x01", maintype="application", subtype="octet-stream", filename="setup.exe")
    path.write_bytes(bytes(message))


def test_an_email_and_its_attachments_are_sources_of_their_own(tmp_path):
    _mail(tmp_path / "mail.eml")
    names = [entry.source for entry in expand([str(tmp_path)])]
    assert names == [str(tmp_path / "mail.eml"), str(tmp_path / "mail.eml#invoice.pdf"),
                     str(tmp_path / "mail.eml#notes.txt")]  # a folder name made safe; the program left out
    proc = run_cli("render", tmp_path, "--json", "--no-cache", timeout=300)
    assert proc.returncode == 0, proc.stderr
    records = {record["source"]: record for record in json_lines(proc.stdout)}
    assert list(records) == names
    message = records[names[0]]
    assert message["document"]["type"] == "mail"
    assert message["document"]["metadata"]["attachments"] == ["invoice.pdf", "notes.txt", "setup.exe"]
    assert records[names[1]]["document"]["type"] == "pdf" and records[names[1]]["pages"][0]["words"] == 5


def test_the_message_body_is_drawn_with_its_headers(tmp_path, tools):
    _mail(tmp_path / "mail.eml")
    with ingest.load(str(tmp_path / "mail.eml"), IngestOptions(), tools) as document:
        pages, text = _text(document)
    assert "Quarterly invoice" in text and "alice@example.org" in text
    assert "invoice is attached and due on Friday" in text and "SCRIPT RAN" not in text  # the HTML, scripts removed
    assert "invoice.pdf" in text and "setup.exe" in text  # the attachments are listed
    with ingest.load(str(tmp_path / "mail.eml#invoice.pdf"), IngestOptions(), tools) as document:
        assert document.source.endswith("mail.eml#invoice.pdf") and document.kind == "pdf"
        pages, text = _text(document)
    assert "Invoice 4711 total 1234.56 EUR" in text


def test_a_missing_attachment_and_a_broken_message_are_one_line(tmp_path):
    _mail(tmp_path / "mail.eml")
    with pytest.raises(SourceNotFound, match="no attachment named 'missing.pdf'"):
        ingest.load(str(tmp_path / "mail.eml#missing.pdf"))
    (tmp_path / "noise.eml").write_text("just words, no headers\n")
    proc = run_cli("render", tmp_path / "noise.eml")
    assert proc.returncode == 1 and "not an e-mail message" in proc.stderr and "Traceback" not in proc.stderr
