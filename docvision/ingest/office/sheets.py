"""Sheet names and visibility of .ods and .xls workbooks, read straight from the file (no spreadsheet library).

In: a path. Out: [(name, visible)] in workbook order, or None when the file does not say; for .xls,
PasswordRequired when the workbook is encrypted. LibreOffice exports every sheet, hidden ones too, one
page each, so these lists let the office ingestor label pages with sheet names and leave hidden
sheets out, as it does for .xlsx with openpyxl.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

from docvision.errors import PasswordRequired

_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_STYLE = "{urn:oasis:names:tc:opendocument:xmlns:style:1.0}"

# BIFF record types (Excel 97-2003 "Workbook" stream).
_BOF, _EOF, _FILEPASS, _BOUNDSHEET = 0x0809, 0x000A, 0x002F, 0x0085


def ods_sheets(path: Path) -> list[tuple[str, bool]] | None:
    """(name, visible) per table of an OpenDocument spreadsheet; hidden tables have display="false" styles."""
    import xml.etree.ElementTree as ET

    hidden_styles, tables, style = set(), [], None
    try:
        with zipfile.ZipFile(path) as archive, archive.open("content.xml") as fh:
            for event, element in ET.iterparse(fh, events=("start", "end")):
                if event == "end":
                    if element.tag != _TABLE + "table-cell":
                        continue
                    element.clear()  # cells are the bulk of a big sheet; keep memory flat
                elif element.tag == _STYLE + "style":
                    style = element.get(_STYLE + "name")
                elif element.tag == _STYLE + "table-properties" and element.get(_TABLE + "display") == "false":
                    hidden_styles.add(style)
                elif element.tag == _TABLE + "table" and element.get(_TABLE + "name"):
                    tables.append((element.get(_TABLE + "name"), element.get(_TABLE + "style-name")))
    except (KeyError, ET.ParseError, zipfile.BadZipFile, OSError):
        return None
    return [(name, style_name not in hidden_styles) for name, style_name in tables] or None


def xls_sheets(path: Path, source: str) -> list[tuple[str, bool]] | None:
    """(name, visible) per sheet of an Excel 97-2003 workbook, from the BOUNDSHEET records of its globals."""
    import olefile

    try:
        with olefile.OleFileIO(str(path)) as ole:
            stream = "Workbook" if ole.exists("Workbook") else "Book" if ole.exists("Book") else None
            if stream is None:
                return None
            data = ole.openstream(stream).read()
    except (OSError, ValueError, struct.error) as exc:
        if "encrypt" in str(exc).lower():
            raise PasswordRequired("the Excel 97-2003 workbook is password-protected; remove the password "
                                   "and save it again", source=source) from None
        return None
    return _boundsheets(data, source, biff5=stream == "Book")


def _boundsheets(data: bytes, source: str, biff5: bool) -> list[tuple[str, bool]] | None:
    sheets, offset = [], 0
    while offset + 4 <= len(data):
        kind, size = struct.unpack_from("<HH", data, offset)
        body = data[offset + 4: offset + 4 + size]
        offset += 4 + size
        if kind == _FILEPASS:
            raise PasswordRequired("the Excel 97-2003 workbook is password-protected; open it in its program, "
                                   "remove the password and save it again", source=source)
        if kind == _BOUNDSHEET and len(body) >= 8:
            state, count = body[4] & 0x03, body[6]
            wide = not biff5 and body[7] & 1  # BIFF8 names carry a flags byte: UTF-16 or compressed Latin-1
            start = 7 if biff5 else 8
            raw = body[start: start + (count * 2 if wide else count)]
            name = raw.decode("utf-16-le" if wide else "latin-1", errors="replace")
            sheets.append((name, state == 0))
        if kind == _EOF:  # end of the workbook globals; sheet substreams follow
            break
    return sheets or None
