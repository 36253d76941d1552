"""Small PDFs written byte by byte for the tests: what PDF libraries will not write on purpose.

A page whose Type3 glyph draws itself, a document whose attachments alone are encrypted (the user
password guards only the embedded files: /StmF and /StrF are /Identity, /EFF names the crypt filter),
and a dynamic XFA form whose PDF page is the usual "Please wait..." placeholder.
"""

from __future__ import annotations

import hashlib
import struct

# The padding string of the standard security handler (PDF 32000-1, 7.6.3.3).
PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def pdf(objects: list[bytes], trailer: bytes = b"") -> bytes:
    """A whole PDF of ``objects`` (numbered from 1, the first the catalog) with a correct xref table."""
    out, offsets = b"%PDF-1.6\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + b"trailer\n<</Size %d/Root 1 0 R%s>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, trailer, xref)


def stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<<%s/Length %d>>\nstream\n" % (extra, len(data)) + data + b"\nendstream"


def page_objects(content: bytes, fonts: bytes = b"/F1 5 0 R") -> list[bytes]:
    """Catalog, page tree, one Letter page drawing ``content``, its content stream, Helvetica."""
    return [b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Count 1/Kids[3 0 R]>>",
            b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Resources<</Font<<" + fonts + b">>>>/Contents 4 0 R>>",
            stream(content), b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>"]


def type3_cycle(path, text: bytes = b"Hello Type3 page") -> None:
    """A page of text plus one glyph of a Type3 font whose procedure shows that same glyph again."""
    objects = page_objects(b"BT /F1 36 Tf 72 650 Td (" + text + b") Tj ET BT /F2 24 Tf 72 500 Td (a) Tj ET",
                           fonts=b"/F1 5 0 R/F2 6 0 R")
    objects += [b"<</Type/Font/Subtype/Type3/FontBBox[0 0 750 750]/FontMatrix[0.001 0 0 0.001 0 0]"
                b"/CharProcs<</a 7 0 R>>/Encoding<</Type/Encoding/Differences[97/a]>>/FirstChar 97/LastChar 97"
                b"/Widths[1000]/Resources<</Font<</F2 6 0 R>>>>>>",
                stream(b"1000 0 0 0 750 750 d1 0 0 750 750 re f BT /F2 1 Tf (a) Tj ET")]
    path.write_bytes(pdf(objects))


def _rc4(key: bytes, data: bytes) -> bytes:
    s, j = list(range(256)), 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    i = j = 0
    out = bytearray()
    for byte in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def _iterated(key: bytes, value: bytes) -> bytes:
    """RC4 with the key, then 19 more times with the key's bytes XORed with 1..19 (algorithms 3 and 5)."""
    value = _rc4(key, value)
    for i in range(1, 20):
        value = _rc4(bytes(b ^ i for b in key), value)
    return value


def _md5_50(data: bytes) -> bytes:
    key = hashlib.md5(data).digest()
    for _ in range(50):
        key = hashlib.md5(key).digest()
    return key


def attachment_encrypted(path, text: bytes, user: bytes = b"secret", owner: bytes = b"owner") -> None:
    """One page of ``text`` in the clear and one embedded file encrypted under ``user`` (revision 4,
    RC4 crypt filter for embedded files only, as Acrobat's "encrypt only file attachments" writes)."""
    file_id, permissions = hashlib.md5(b"docvision").digest(), -4
    o = _iterated(_md5_50((owner + PAD)[:32]), (user + PAD)[:32])
    key = _md5_50((user + PAD)[:32] + o + struct.pack("<i", permissions) + file_id)
    u = _iterated(key, hashlib.md5(PAD + file_id).digest()) + bytes(16)
    secret = _rc4(hashlib.md5(key + b"\x07\x00\x00\x00\x00").digest()[:16], b"the attachment's secret")  # object 7
    objects = page_objects(b"BT /F1 28 Tf 72 650 Td (" + text + b") Tj ET")
    objects[0] = b"<</Type/Catalog/Pages 2 0 R/Names<</EmbeddedFiles<</Names[(data.txt) 8 0 R]>>>>>>"
    objects += [b"<</Filter/Standard/V 4/R 4/Length 128/P %d/O<%s>/U<%s>/CF<</StdCF<</CFM/V2/AuthEvent/EFOpen"
                b"/Length 16>>>>/StmF/Identity/StrF/Identity/EFF/StdCF>>" % (permissions, o.hex().encode(),
                                                                            u.hex().encode()),
                stream(secret, b"/Type/EmbeddedFile"), b"<</Type/Filespec/F(data.txt)/EF<</F 7 0 R>>>>"]
    path.write_bytes(pdf(objects, b"/Encrypt 6 0 R/ID[<%s><%s>]" % (file_id.hex().encode(), file_id.hex().encode())))


XDP = b"""<?xml version="1.0" encoding="UTF-8"?>
<xdp:xdp xmlns:xdp="http://ns.adobe.com/xdp/">
<template xmlns="http://www.xfa.org/schema/xfa-template/3.3/">
  <subform name="form1" layout="tb" locale="en_US">
    <pageSet><pageArea name="Page1"><contentArea x="0.25in" y="0.25in" w="8in" h="10.5in"/></pageArea></pageSet>
    <draw name="Heading" w="150mm" h="20mm"><value><text>Expense claim form 2026</text></value></draw>
    <field name="Amount" w="80mm" h="10mm"><caption><value><text>Amount claimed</text></value></caption>
      <ui><textEdit/></ui></field>
  </subform>
</template>
<xfa:datasets xmlns:xfa="http://www.xfa.org/schema/xfa-data/1.0/">
  <xfa:data><form1><Amount>1234.56</Amount></form1></xfa:data></xfa:datasets>
</xdp:xdp>"""


def dynamic_xfa(path) -> None:
    """A dynamic XFA form: NeedsRendering, the form in /AcroForm /XFA, the PDF page a placeholder."""
    objects = page_objects(b"BT /F1 24 Tf 72 650 Td (Please wait...) Tj ET BT /F1 11 Tf 72 620 Td (If this message "
                           b"is not eventually replaced, your viewer cannot show this document.) Tj ET")
    objects[0] = b"<</Type/Catalog/Pages 2 0 R/NeedsRendering true/AcroForm<</Fields[]/XFA 6 0 R>>>>"
    objects.append(stream(XDP))
    path.write_bytes(pdf(objects))
