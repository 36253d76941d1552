"""What a source is and whether it can be read, decided before any ingestor touches it.

In: a source string (a path or a URL) or a file's first bytes. Out: its kind of ingestor (by URL scheme
and extension), the kind its bytes say it is, and one-line errors for files that are missing, empty,
folders, pipes, devices, symbolic-link loops, unreadable, or not what their name says.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from docvision.errors import DamagedSource, EmptySource, SourceNotFound, UnsupportedSource

EXTENSIONS = {
    ".pdf": "pdf",
    ".png": "image", ".jpg": "image", ".jpeg": "image", ".webp": "image", ".tif": "image",
    ".tiff": "image", ".gif": "image", ".bmp": "image",
    ".html": "web", ".htm": "web",
    ".xlsx": "office", ".xlsm": "office", ".xls": "office", ".ods": "office", ".csv": "office",
    ".xltx": "office", ".xltm": "office", ".xlt": "office",
    ".docx": "office", ".docm": "office", ".dotx": "office", ".dotm": "office", ".doc": "office", ".dot": "office",
    ".odt": "office", ".rtf": "office",
    ".pptx": "office", ".pptm": "office", ".ppsx": "office", ".potx": "office", ".ppt": "office", ".pps": "office",
    ".pot": "office", ".odp": "office",
    ".txt": "text", ".md": "text", ".markdown": "text",
    ".eml": "mail",
}

# Leading bytes of the formats we read, to catch files whose name lies about their content.
_MAGIC = (
    (b"%PDF", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "image"),
    (b"\xff\xd8\xff", "image"),
    (b"GIF87a", "image"),
    (b"GIF89a", "image"),
    (b"II*\x00", "image"),
    (b"MM\x00*", "image"),
    (b"II+\x00", "image"),  # BigTIFF
    (b"MM\x00+", "image"),
    (b"BM", "image"),
)


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def sniff(head: bytes) -> str | None:
    """Name the kind of content from a file's first bytes, or None when unknown."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1",
                                               b"avif", b"avis"):
        return "heif"  # iPhone photos (often renamed .jpg); Pillow cannot read them without a plugin
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<meta")):
        return "html"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    # Readers accept a PDF header anywhere in the first 1024 bytes (junk from mail gateways).
    if b"%PDF-" in head[:1024]:
        return "pdf"
    return None


def kind_of(source: str) -> str:
    """The ingestor for a source, by URL scheme or extension; raises for the unsupported."""
    if is_url(source):
        return "web"
    kind = EXTENSIONS.get(Path(source).suffix.lower())
    if kind is None:
        suffix = Path(source).suffix or "(no extension)"
        raise UnsupportedSource(
            f"unsupported file type {suffix}: docvision reads "
            + ", ".join(sorted({e.lstrip('.') for e in EXTENSIONS})),
            source=source,
        )
    return kind


def check_file(source: str) -> Path:
    """The path of a local source, after checking it exists, is a file and is not empty."""
    path = Path(source)
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a -> b -> a: exists() says False, which would read "no such file"
            raise SourceNotFound("is a symbolic link that loops (it points back at itself); fix the link",
                                 source=source) from None
        if exc.errno != errno.ENOENT:
            raise SourceNotFound(f"cannot read the file ({exc.strerror})", source=source) from None
    if not path.exists():
        if path.is_symlink():
            raise SourceNotFound("no such file (a symbolic link to a file that does not exist)", source=source)
        raise SourceNotFound("no such file", source=source)
    if path.is_dir():
        raise UnsupportedSource("is a folder; pass the files in it or the folder as a batch", source=source)
    if not path.is_file():
        # A pipe or a device (/dev/zero behind a symlink named .pdf) reports size 0 and may never end.
        raise UnsupportedSource("is not a regular file (a pipe, device or socket); save its content to a "
                                "file first", source=source)
    if not os.access(path, os.R_OK):
        raise SourceNotFound("cannot read the file (permission denied)", source=source)
    if path.stat().st_size == 0:
        raise EmptySource("the file is empty (0 bytes)", source=source)
    return path


def check_content(path: Path, expected: str, source: str) -> None:
    """Refuse a file whose bytes are not the kind its extension claims (an HTML page named .pdf)."""
    with open(path, "rb") as fh:
        head = fh.read(1024)
    found = sniff(head)
    if found == expected:
        return
    if found == "heif":
        hint = "it is a HEIC/HEIF or AVIF photo, which docvision does not read; convert it to JPEG or PNG"
    elif found == "html":
        hint = "it is an HTML page; rename it to .html to read it as a web page"
    elif found in ("pdf", "image"):
        hint = f"it is a {found.upper() if found == 'pdf' else found} file; give it the right extension"
    else:
        hint = "its content is not recognised; the file may be damaged or mislabelled"
    raise DamagedSource(f"not a valid {expected.upper() if expected == 'pdf' else expected} file: {hint}",
                        source=source)


def decode_text(data: bytes, source: str, what: str = "text file") -> tuple[str, str]:
    """(the text, its encoding): a BOM's, else UTF-8, else Windows-1252 (what such files usually are);
    DamagedSource for bytes that are no text at all."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace"), "UTF-16"
    found = sniff(data[:1024])
    if b"\x00" in data[:8192] or found in ("pdf", "image", "zip"):
        hint = {"pdf": "it is a PDF file", "image": "it is an image", "zip": "it is a zip archive (an office file?)"}
        raise DamagedSource(f"not a {what}: {hint.get(found, 'it holds binary data')}; give it the right extension",
                            source=source)
    try:
        return data.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "Windows-1252"
