"""What a document cannot make the converter do: fetch anything, or read a file outside the document.

A loopback HTTP server counts every request; the documents name it in the ways LibreOffice 7.4 with a
default profile was seen to follow (a .docx with an external linked image and an .odt with a linked
graphic each sent OPTIONS and GET), plus a WEBSERVICE formula. A linked graphic pointing at a red
picture on this machine must not be drawn.
"""

from __future__ import annotations

import threading
import zipfile
from http.server import BaseHTTPRequestHandler

import numpy as np
import pytest

from docvision import ingest
from docvision.document import IngestOptions
from docvision.ingest.tools import Tools
from tests.helpers import require_tool, serve_http

pytestmark = pytest.mark.office

CONTENT_TYPES = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.'
                 'org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxml'
                 'formats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
                 '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
                 'wordprocessingml.document.main+xml"/></Types>')
PACKAGE_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.'
                'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
                'openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
                '</Relationships>')
IMAGE_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.'
              'openxmlformats.org/package/2006/relationships"><Relationship Id="rIdImg" Type="http://schemas.'
              'openxmlformats.org/officeDocument/2006/relationships/image" Target="{url}" TargetMode="External"/>'
              '</Relationships>')
LINKED_PICTURE = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
    'wordprocessingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" '
    'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" xmlns:a="http://schemas.'
    'openxmlformats.org/drawingml/2006/main" xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture">'
    '<w:body><w:p><w:r><w:t>Linked picture below</w:t></w:r></w:p><w:p><w:r><w:drawing><wp:inline><wp:extent '
    'cx="1828800" cy="1828800"/><wp:docPr id="1" name="Picture 1"/><a:graphic><a:graphicData uri="http://schemas.'
    'openxmlformats.org/drawingml/2006/picture"><pic:pic><pic:nvPicPr><pic:cNvPr id="1" name="p.png"/><pic:cNvPicPr/>'
    '</pic:nvPicPr><pic:blipFill><a:blip r:link="rIdImg"/><a:stretch><a:fillRect/></a:stretch></pic:blipFill>'
    '<pic:spPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="1828800" cy="1828800"/></a:xfrm><a:prstGeom prst="rect">'
    '<a:avLst/></a:prstGeom></pic:spPr></pic:pic></a:graphicData></a:graphic></wp:inline></w:drawing></w:r></w:p>'
    '</w:body></w:document>')
ODT_CONTENT = (
    '<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:'
    'xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:draw="urn:oasis:names:tc:'
    'opendocument:xmlns:drawing:1.0" xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:svg="urn:oasis:names:tc:'
    'opendocument:xmlns:svg-compatible:1.0" office:version="1.2"><office:body><office:text><text:p>Linked graphic '
    'below</text:p><text:p><draw:frame draw:name="g" text:anchor-type="as-char" svg:width="5cm" svg:height="5cm">'
    '<draw:image xlink:href="{url}" xlink:type="simple" xlink:show="embed" xlink:actuate="onLoad"/></draw:frame>'
    '</text:p></office:text></office:body></office:document-content>')
ODT_MANIFEST = ('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:'
                'opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" '
                'manifest:media-type="application/vnd.oasis.opendocument.text"/><manifest:file-entry manifest:'
                'full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>')


def red_png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), (255, 0, 0)).save(out, "PNG")
    return out.getvalue()


def linked_docx(path, url: str) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", PACKAGE_RELS)
        archive.writestr("word/_rels/document.xml.rels", IMAGE_RELS.format(url=url))
        archive.writestr("word/document.xml", LINKED_PICTURE)
    return str(path)


def linked_odt(path, url: str) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text", compress_type=zipfile.ZIP_STORED)
        archive.writestr("content.xml", ODT_CONTENT.format(url=url))
        archive.writestr("META-INF/manifest.xml", ODT_MANIFEST)
    return str(path)


def webservice_xlsx(path, url: str) -> str:
    from openpyxl import Workbook

    wb = Workbook()
    wb.active["A1"] = "fetched"
    wb.active["B1"] = f'=_xlfn.WEBSERVICE("{url}")'  # written without a stored result
    wb.active["A2"], wb.active["B2"] = 2, "=A2*21"
    wb.save(path)
    return str(path)


@pytest.fixture
def counting_server():
    """A loopback server that answers everything with a red PNG and records each request."""
    seen, lock, body = [], threading.Lock(), red_png()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            with lock:
                seen.append(f"{self.command} {self.path}")
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_OPTIONS = do_PROPFIND = _answer

        def log_message(self, *args):
            pass

    httpd = serve_http(Handler)
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()


def _red(page) -> int:
    pixels = np.asarray(page.render(page.size[0] // 4, page.size[1] // 4), dtype=int)
    return int(((pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)).sum())


def test_converting_makes_no_request_to_a_server_the_document_names(tmp_path, counting_server):
    require_tool("soffice", "libreoffice")
    url, seen = counting_server
    sources = [linked_docx(tmp_path / "linked.docx", f"{url}/docx.png"),
               linked_odt(tmp_path / "linked.odt", f"{url}/odt.png"),
               webservice_xlsx(tmp_path / "web.xlsx", f"{url}/webservice")]
    with Tools(IngestOptions()) as tools:
        for source in sources:
            with ingest.load(source, IngestOptions(), tools) as document:
                for page in document.pages():
                    assert _red(page) == 0, source
                    words = {w.text for w in page.words}
        assert words >= {"fetched", "42"}  # the workbook's stored and computed values are shown
    assert seen == []


def test_a_linked_graphic_outside_the_document_is_not_read(tmp_path):
    require_tool("soffice", "libreoffice")
    picture = tmp_path / "elsewhere" / "red.png"
    picture.parent.mkdir()
    picture.write_bytes(red_png())
    source = linked_odt(tmp_path / "local.odt", picture.as_uri())
    with ingest.load(source, IngestOptions()) as document:
        [page] = list(document.pages())
        assert "Linked graphic below" in page.text
        assert _red(page) == 0
