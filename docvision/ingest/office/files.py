"""Checking an office file's bytes before any parser or converter touches it.

In: a path and its extension. Out: nothing, or a DocvisionError with one line saying what is wrong.

Why up front: openpyxl and LibreOffice both unpack a zip before they can complain, so a zip bomb must
be refused from the archive's directory (declared sizes and compression ratios) alone; LibreOffice
also "succeeds" on garbage (it exits 0 and writes nothing, or imports random bytes as text).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from docvision.errors import DamagedSource, ImageTooLarge, PasswordRequired
from docvision.ingest.checks import sniff

ZIP_FORMATS = {".xlsx", ".xlsm", ".docx", ".pptx", ".ods", ".odt", ".odp"}
OOXML = {".xlsx", ".xlsm", ".docx", ".pptx"}
CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE compound file: .xls, or an encrypted OOXML file
MAX_UNPACKED = 1 << 30  # bytes; a 1 GiB unpacked workbook is already far past what renders usefully
# Real sheets' XML compresses up to ~100x (long runs of identical styled cells); zip bombs reach 1000x+.
MAX_RATIO = 500
RATIO_FLOOR = 8 << 20  # members smaller than this unpack harmlessly whatever their ratio

_NAMES = {
    ".xlsx": "Excel workbook", ".xlsm": "Excel workbook", ".xls": "Excel 97-2003 workbook",
    ".docx": "Word document", ".pptx": "PowerPoint presentation", ".ods": "OpenDocument spreadsheet",
    ".odt": "OpenDocument text", ".odp": "OpenDocument presentation", ".rtf": "RTF document",
    ".csv": "CSV file",
}


def describe(ext: str) -> str:
    """A person's name for the format of an extension ("Excel workbook")."""
    return _NAMES.get(ext, ext.lstrip(".").upper() + " file")


def check(path: Path, ext: str, source: str) -> None:
    """Refuse damaged, mislabelled, encrypted or zip-bomb office files with one clear line."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if ext in ZIP_FORMATS:
        if head.startswith(CFB_MAGIC):
            _refuse_compound(path, ext, source)
        _check_zip(path, ext, source, head)
    elif ext == ".xls":
        if not head.startswith(CFB_MAGIC):
            _refuse_mislabelled(head, ext, source)
        _check_biff(path, source)
    elif ext == ".rtf":
        if not head.startswith(b"{\\rtf"):
            _refuse_mislabelled(head, ext, source)
    elif ext == ".csv":
        if b"\x00" in head or sniff(head) not in (None, "html"):
            _refuse_mislabelled(head, ext, source)


def _refuse_compound(path: Path, ext: str, source: str) -> None:
    # Encrypted OOXML is an OLE container holding "EncryptionInfo" and "EncryptedPackage" streams.
    data = path.read_bytes()[: 64 << 20]
    if "EncryptionInfo".encode("utf-16-le") in data or "EncryptedPackage".encode("utf-16-le") in data:
        raise PasswordRequired(
            f"the {describe(ext)} is password-protected (encrypted); open it in its program, remove the "
            "password and save it again", source=source)
    if ext in (".xlsx", ".xlsm"):
        hint = "it looks like an Excel 97-2003 workbook; rename it to .xls"
    elif ext in OOXML:
        hint = f"it looks like an Office 97-2003 file, which docvision does not read; save it as {ext} first"
    else:
        hint = "it is an OLE compound file, not an OpenDocument zip"
    raise DamagedSource(f"not a valid {describe(ext)}: {hint}", source=source)


def _check_biff(path: Path, source: str) -> None:
    """An .xls must hold a workbook stream that starts with a BIFF BOF record: LibreOffice opened an OLE
    container full of random bytes as an empty workbook and "succeeded"."""
    import olefile

    try:
        with olefile.OleFileIO(str(path)) as ole:
            stream = next((name for name in ("Workbook", "Book") if ole.exists(name)), None)
            head = ole.openstream(stream).read(4) if stream else b""
    except Exception as exc:  # olefile raises OSError, ValueError, struct.error... on damaged containers
        raise DamagedSource(f"not a valid {describe('.xls')}: its OLE container is damaged ({exc})",
                            source=source) from None
    if stream is None:
        raise DamagedSource(f"not a valid {describe('.xls')}: it holds no workbook; it may be another Office "
                            "97-2003 file (.doc, .ppt) with the wrong extension", source=source)
    if len(head) < 4 or head[1] not in (0x00, 0x02, 0x04, 0x08) or head[0] != 0x09:
        raise DamagedSource(f"not a valid {describe('.xls')}: its workbook stream is not Excel data; the file is "
                            "damaged", source=source)


def _refuse_mislabelled(head: bytes, ext: str, source: str) -> None:
    found = sniff(head)
    if found == "html":
        hint = "it is an HTML page; rename it to .html to read it as a web page"
    elif found in ("pdf", "image"):
        hint = f"it is a {'PDF' if found == 'pdf' else 'image'} file; give it the right extension"
    elif found == "zip":
        hint = "it is a zip archive; an .xlsx, .docx or .pptx file may have the wrong extension"
    else:
        hint = "its content is not recognised; the file may be damaged or mislabelled"
    raise DamagedSource(f"not a valid {describe(ext)}: {hint}", source=source)


def _check_zip(path: Path, ext: str, source: str, head: bytes) -> None:
    if head.startswith(b"PK\x05\x06"):  # a zip's end record and nothing before it
        raise DamagedSource(f"not a valid {describe(ext)}: it is an empty zip archive (no files inside); "
                            "save the document again from its program", source=source)
    if not head.startswith(b"PK\x03\x04"):
        _refuse_mislabelled(head, ext, source)
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise DamagedSource(f"not a valid {describe(ext)}: the zip container is damaged ({exc})",
                            source=source) from None
    names = {m.filename for m in members}
    expected = "[Content_Types].xml" if ext in OOXML else "content.xml"
    if expected not in names:
        raise DamagedSource(f"not a valid {describe(ext)}: the zip archive has no {expected}", source=source)
    if ext not in OOXML and "META-INF/manifest.xml" in names:
        _refuse_encrypted_odf(path, ext, source)
    total = sum(m.file_size for m in members)
    if total > MAX_UNPACKED:
        raise ImageTooLarge(
            f"refusing to open: the {describe(ext)} would unpack to {total / 2**30:.1f} GiB (limit "
            f"{MAX_UNPACKED / 2**30:.0f} GiB); it may be a zip bomb", source=source)
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > RATIO_FLOOR and ratio > MAX_RATIO:
            raise ImageTooLarge(
                f"refusing to open: {member.filename} inside the {describe(ext)} is compressed {ratio:.0f} to 1 "
                f"({member.file_size / 2**20:.0f} MiB unpacked); it looks like a zip bomb", source=source)


def _refuse_encrypted_odf(path: Path, ext: str, source: str) -> None:
    # A password-protected OpenDocument file is a normal zip whose manifest lists encryption-data per part.
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("META-INF/manifest.xml")
        if info.file_size > 16 << 20:
            return
        manifest = archive.read(info)
    if b"encryption-data" in manifest:
        raise PasswordRequired(
            f"the {describe(ext)} is password-protected (encrypted); open it in its program, remove the "
            "password and save it again", source=source)
