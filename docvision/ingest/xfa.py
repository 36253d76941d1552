"""XFA forms in a PDF: what kind, and the words they hold, read from the form's XML.

In: an open PyMuPDF document. Out: ``kind`` -- "dynamic" for a form only Adobe Reader draws (its PDF
pages hold a placeholder such as "Please wait..."), "static" for one whose pages are ordinary PDF too,
None for no XFA -- and ``facts``: the form's own text (headings, captions) and its field values, as
lines a question can be routed by and a prompt can quote.

Why not draw it: no engine here draws XFA. MuPDF and PDFium as pypdfium2 ships it have no XFA, and the
PDF viewer of Debian's Chromium (156) shows the placeholder page too (checked with a generated form).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

MAX_XML = 8 << 20  # bytes of XFA read; a larger form gives no facts
MAX_FACTS = 200
_SPACE = re.compile(r"\s+")
_PACKET = re.compile(rb"<((?:\w+:)?(?:template|datasets))\b")


def kind(doc) -> str | None:
    """ "dynamic", "static" or None (no XFA form)."""
    catalog = doc.pdf_catalog()
    if doc.xref_get_key(catalog, "AcroForm/XFA")[0] == "null":
        return None
    return "dynamic" if doc.xref_get_key(catalog, "NeedsRendering") == ("bool", "true") else "static"


def _packets(doc) -> bytes:
    """The form's XML: one stream, or the streams of a [name stream name stream ...] array, joined."""
    catalog = doc.pdf_catalog()
    found, value = doc.xref_get_key(catalog, "AcroForm/XFA")
    refs = [int(x) for x in re.findall(r"(\d+) 0 R", value)] if found in ("array", "xref") else []
    data = b""
    for xref in refs:
        if doc.xref_is_stream(xref):
            data += doc.xref_stream(xref) or b""
        if len(data) > MAX_XML:
            return b""
    return data


def facts(doc) -> list[str]:
    """The form's text and field values ("XFA form: Expense claim"; "XFA field Amount: 1234.56"); [] when
    there is no form or its XML cannot be read."""
    try:
        xml = _packets(doc)
    except (RuntimeError, ValueError):
        return []
    found: list[str] = []
    for match in _PACKET.finditer(xml):  # each packet parsed alone: the whole XDP may not be one document
        tag = match.group(1)
        end = xml.find(b"</" + tag + b">", match.start())
        if end < 0:
            continue
        try:
            root = ET.fromstring(xml[match.start(): end + len(tag) + 3])
        except ET.ParseError:
            continue
        found += _template_text(root) if tag.endswith(b"template") else _data_values(root)
    return list(dict.fromkeys(found))[:MAX_FACTS]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _template_text(root: ET.Element) -> list[str]:
    """Headings and captions the form draws: the text of <draw> elements and of field captions."""
    lines = []
    for element in root.iter():
        if _local(element.tag) in ("draw", "caption"):
            words = _SPACE.sub(" ", " ".join(t for node in element.iter() if _local(node.tag) in ("text", "exData")
                                             for t in node.itertext())).strip()
            if words:
                lines.append(f"XFA form: {words}")
    return lines


def _data_values(root: ET.Element, path: str = "") -> list[str]:
    """Field values of the form's data: "XFA field Amount: 1234.56" for each element holding text."""
    lines = []
    for child in root:
        name = _local(child.tag)
        if len(child):
            lines += _data_values(child, name)
        elif child.text and child.text.strip():
            lines.append(f"XFA field {name}: {_SPACE.sub(' ', child.text.strip())}")
    return lines
