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
from docvision.ingest.office.formats import FORMATS, OOXML, describe

CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE compound file: Office 97-2003, or an encrypted OOXML file
MAX_UNPACKED = 1 << 30  # bytes; a 1 GiB unpacked workbook is already far past what renders usefully
# Real sheets' XML compresses up to ~100x (long runs of identical styled cells); zip bombs reach 1000x+.
MAX_RATIO = 500
RATIO_FLOOR = 8 << 20  # members smaller than this unpack harmlessly whatever their ratio
# The stream an Office 97-2003 file of each application keeps its content in, by LibreOffice kind.
OLE_STREAMS = {"calc": ("Workbook", "Book"), "writer": ("WordDocument",), "impress": ("PowerPoint Document",)}
_OLE_NAMES = {"Workbook": ".xls", "Book": ".xls", "WordDocument": ".doc", "PowerPoint Document": ".ppt"}
_GENERATIONS = {"calc": (".xls", ".xlsx"), "writer": (".doc", ".docx"), "impress": (".ppt", ".pptx")}
_MAIN_PARTS = {"calc": "xl/workbook.xml", "writer": "word/document.xml", "impress": "ppt/presentation.xml"}
WORD_ENCRYPTED = 0x0100  # fEncrypted in the flags of a Word 97 file's FIB (offset 10 of WordDocument)
PPT_ENCRYPTED = 0xF3D1C4DF  # the CurrentUserAtom header token of an encrypted PowerPoint 97 file


def check(path: Path, ext: str, source: str) -> str:
    """Refuse what is certainly unreadable, with one clear line: not the container the extension names,
    encrypted, or a zip bomb. Anything else goes to LibreOffice, which has the last word (it reads fuzzed
    files that stricter parsers refuse). Returns the extension of the format the bytes are (``actual``)."""
    ext = actual(path, ext)
    with open(path, "rb") as fh:
        head = fh.read(4096)
    container = FORMATS[ext].container
    if container == "zip":
        if head.startswith(CFB_MAGIC):
            _refuse_compound(path, ext, source)
        _check_zip(path, ext, source, head)
    elif container == "ole":
        if head.startswith(CFB_MAGIC):
            _check_ole(path, ext, source)
        elif not (FORMATS[ext].kind == "calc" and _is_bof(head)):  # Excel 2.x-4.x wrote BIFF with no container
            _refuse_mislabelled(head, ext, source)
    elif ext == ".rtf":
        if not head.startswith(b"{\\rtf"):
            _refuse_mislabelled(head, ext, source)
    elif ext == ".csv":
        if b"\x00" in head or sniff(head) not in (None, "html"):
            _refuse_mislabelled(head, ext, source)
    return ext


def actual(path: Path, ext: str) -> str:
    """The extension of the format the file's bytes are: ``ext``, or, for a file of the same application
    under the other generation's name (a Word 97 file named .docm, a Word 2007 file named .doc), that
    generation's extension. Viewers open such files by their bytes; so does docvision, with that
    format's filters (never another application's)."""
    found = FORMATS[ext]
    with open(path, "rb") as fh:
        head = fh.read(8)
    if found.container == "zip" and head.startswith(CFB_MAGIC) and _ole_kind(path) == found.kind:
        return _GENERATIONS[found.kind][0]
    if found.container == "ole" and head.startswith(b"PK\x03\x04") and _zip_kind(path) == found.kind:
        return _GENERATIONS[found.kind][1]
    return ext


def _ole_kind(path: Path) -> str | None:
    """The application whose content an OLE container holds (None: none, damaged, or encrypted OOXML)."""
    import olefile

    try:
        with olefile.OleFileIO(str(path)) as ole:
            return next((kind for kind, names in OLE_STREAMS.items() if any(ole.exists(n) for n in names)), None)
    except Exception:  # noqa: BLE001 - a container olefile cannot read is judged by its extension
        return None


def _zip_kind(path: Path) -> str | None:
    """The application whose content an OOXML zip holds, by its main part."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None
    return next((kind for kind, part in _MAIN_PARTS.items() if part in names), None)


def _refuse_compound(path: Path, ext: str, source: str) -> None:
    if _encrypted_package(path):
        _refuse_encrypted(ext, source)
    older = _GENERATIONS[FORMATS[ext].kind][0]
    if ext in OOXML:
        hint = f"it looks like an Office 97-2003 file; rename it to {older}"
    else:
        hint = "it is an OLE compound file, not an OpenDocument zip"
    raise DamagedSource(f"not a valid {describe(ext)}: {hint}", source=source)


def _encrypted_package(path: Path) -> bool:
    # Encrypted OOXML is an OLE container holding "EncryptionInfo" and "EncryptedPackage" streams.
    with open(path, "rb") as fh:
        data = fh.read(64 << 20)
    return "EncryptionInfo".encode("utf-16-le") in data or "EncryptedPackage".encode("utf-16-le") in data


def _check_ole(path: Path, ext: str, source: str) -> None:
    """An Office 97-2003 file: refused when it is encrypted, or when its container is whole and holds
    another application's content or no Excel data where a workbook should be. A container olefile
    cannot read goes to LibreOffice, which reads damaged ones olefile refuses."""
    import olefile

    kind = FORMATS[ext].kind
    try:
        with olefile.OleFileIO(str(path)) as ole:
            stream = next((name for name in OLE_STREAMS[kind] if ole.exists(name)), None)
            others = [name for names in OLE_STREAMS.values() for name in names if ole.exists(name)]
            encrypted = _ole_encrypted(ole, kind, stream)
            head = ole.openstream(stream).read(4) if stream and kind == "calc" else b""
    except Exception:  # noqa: BLE001 - olefile raises OSError, ValueError, struct.error... on damaged containers
        if _encrypted_package(path):
            _refuse_encrypted(ext, source)
        return
    if encrypted:
        _refuse_encrypted(ext, source)
    if stream is None:
        if others:
            hint = f"it is a {describe(_OLE_NAMES[others[0]])}; give it the right extension"
        else:
            hint = "it holds no Office content; the file may be damaged or another kind of OLE file"
        raise DamagedSource(f"not a valid {describe(ext)}: {hint}", source=source)
    if kind == "calc" and not _is_bof(head):
        # LibreOffice opened an OLE container full of random bytes as an empty workbook and "succeeded".
        raise DamagedSource(f"not a valid {describe(ext)}: its workbook stream is not Excel data; the file is "
                            "damaged", source=source)


def _is_bof(head: bytes) -> bool:
    """True when ``head`` starts with a BIFF BOF record (any Excel version's)."""
    return len(head) >= 4 and head[0] == 0x09 and head[1] in (0x00, 0x02, 0x04, 0x08)


def _ole_encrypted(ole, kind: str, stream: str | None) -> bool:
    """True for an encrypted Word or PowerPoint 97-2003 file, or an encrypted OOXML file in a container
    (an encrypted .xls says so in its workbook stream: ``sheets.xls_sheets``)."""
    import struct

    if ole.exists("EncryptionInfo") or ole.exists("EncryptedPackage"):
        return True
    if kind == "writer" and stream is not None:
        fib = ole.openstream(stream).read(12)
        return len(fib) == 12 and bool(struct.unpack_from("<H", fib, 10)[0] & WORD_ENCRYPTED)
    if kind == "impress" and ole.exists("Current User"):
        atom = ole.openstream("Current User").read(16)
        return ole.exists("EncryptedSummary") or (len(atom) >= 16 and struct.unpack_from("<I", atom, 12)[0]
                                                   == PPT_ENCRYPTED)
    return False


def _refuse_encrypted(ext: str, source: str) -> None:
    raise PasswordRequired(f"the {describe(ext)} is password-protected (encrypted); open it in its program, remove "
                           "the password and save it again", source=source)


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
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise DamagedSource(f"not a valid {describe(ext)}: the zip container is damaged (cut short or overwritten); "
                            "save or download the document again", source=source) from None
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
        _refuse_encrypted(ext, source)
