"""Expand what the user typed (files, folders, globs, URLs, ``-`` for stdin) into a list of sources.

Each entry is either a source string to process, or an error (a folder with nothing readable in
it, a glob that matched nothing) that becomes an error record while the rest of the batch runs. An
e-mail (.eml) is followed by its attachments that docvision reads, each a source of its own named
``mail.eml#invoice.pdf``.
Folders and glob matches come in natural order (r2 before r10); a file reached twice (a symlink, a
symlink loop such as ``sub -> .``) is listed once. A file found by walking a folder carries that folder
(``Entry.folder``: a local web page's site, docs/web.md). ``shown`` is how a source appears in records
and messages: a URL's password hidden, bytes that are not UTF-8 written as \\xNN.
"""

from __future__ import annotations

import glob
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from docvision.errors import DocvisionError, SourceNotFound, UnsupportedSource, UsageError
import docvision.ingest.remote as remote
from docvision.ingest.checks import EXTENSIONS, is_url

MAX_FILES = 100_000  # a folder walk stops here: a runaway tree is reported, not listed for ever


def redact(source: str) -> str:
    """A source as it may be shown or stored: a URL's password (``https://user:pass@host/``) replaced,
    and file-name bytes that are not UTF-8 (surrogate escapes) written as \\xNN.

    Records, warnings, error lines and logs all go through this; the URL itself is still fetched
    with its credentials, and the file opened by its real name.
    """
    if any("\udc80" <= ch <= "\udcff" for ch in source):
        source = source.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if "@" not in source or not is_url(source):
        return source
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(source)
    if parts.password is None and parts.username is None:
        return source
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port is not None:
        host += f":{parts.port}"
    user = f"{parts.username}:***@" if parts.password is not None else f"{parts.username}@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


shown = redact


@dataclass(frozen=True)
class Entry:
    source: str
    error: DocvisionError | None = None
    folder: str | None = None  # the folder named by the user whose walk found this file (a local page's site)


def natural_key(text: str) -> list:
    """Sort key putting "r2" before "r10": digit runs compare as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", text)]


def _supported(name: str) -> bool:
    return Path(name).suffix.lower() in EXTENSIONS and not name.startswith(("~$", "."))


def _folder(path: Path, recursive: bool, say: Callable[[str], None]) -> list[Entry]:
    """The supported files of a folder (and its sub-folders with ``recursive``), hidden ones left out."""
    files: list[Path] = []
    seen: set[tuple[int, int]] = set()
    skipped = 0
    for root, dirs, names in os.walk(path, followlinks=recursive):
        here = os.stat(root)
        if (here.st_dev, here.st_ino) in seen:  # a symlink loop: this folder was walked already
            dirs[:] = []
            continue
        seen.add((here.st_dev, here.st_ino))
        dirs[:] = sorted((d for d in dirs if not d.startswith(".")), key=natural_key)
        files += [Path(root) / n for n in names if _supported(n) and (Path(root) / n).is_file()]
        if not recursive:
            skipped = len(dirs)
            dirs[:] = []
        if len(files) > MAX_FILES:
            raise UsageError(f"{path} holds more than {MAX_FILES:,} files; pass a smaller folder")
    files.sort(key=lambda p: natural_key(str(p.relative_to(path))))
    if skipped and files:
        say(f"{path}: left out {skipped} sub-folder{'s' if skipped > 1 else ''} (add --recursive to read them)")
    if not files:
        hint = " (add --recursive to look in sub-folders)" if skipped else ""
        return [Entry(str(path), UnsupportedSource(f"folder has no supported files{hint}", source=str(path)))]
    return [Entry(str(p), folder=str(path)) for p in files]


def _glob(pattern: str, recursive: bool, say: Callable[[str], None]) -> list[Entry]:
    matches = sorted(glob.glob(pattern, recursive=recursive), key=natural_key)
    if not matches:
        return [Entry(pattern, SourceNotFound("the pattern matched no file", source=pattern))]
    entries: list[Entry] = []
    for match in matches:
        entries.extend(_folder(Path(match), recursive, say) if Path(match).is_dir() else [Entry(match)])
    return entries


def _objects(uri: str, recursive: bool) -> list[Entry]:
    """The objects of an object-store URI (a prefix lists its supported files), or its one error."""
    try:
        found = remote.expand(uri, recursive, _supported, natural_key)
    except UsageError:
        raise  # no pyarrow to read it with: nothing can run
    except DocvisionError as exc:
        return [Entry(uri, exc)]
    if not found:
        return [Entry(uri, UnsupportedSource("no supported files under this prefix", source=uri))]
    return [Entry(u) for u in found]


def _stdin_lines(stream) -> list[str]:
    if stream.isatty():
        raise UsageError("`-` reads the sources from standard input, one per line: pipe them in, e.g. "
                         "find . -name '*.pdf' | docvision summarize -")
    # Only the line break is cut: a file name may begin or end with spaces.
    return [line.rstrip("\r\n") for line in stream if line.strip()]


def expand(args: Iterable[str], recursive: bool = False, stdin=None,
           say: Callable[[str], None] | None = None) -> list[Entry]:
    """Sources in the order given; folders in natural order; the same file twice listed once (first kept)."""
    say = say or (lambda message: None)
    entries: list[Entry] = []
    for arg in args:
        if arg == "-":
            entries.extend(expand(_stdin_lines(stdin if stdin is not None else sys.stdin), recursive, say=say))
        elif not arg.strip():  # Path("") is the current folder: an unset shell variable must not mean "."
            entries.append(Entry(arg, SourceNotFound("an empty source name was given (an unset shell variable?)",
                                                     source=arg)))
        elif is_url(arg):
            entries.append(Entry(arg))
        elif remote.is_object(arg):
            entries.extend(_objects(arg, recursive))
        elif Path(arg).is_dir():
            entries.extend(_folder(Path(arg), recursive, say))
        elif glob.has_magic(arg) and not Path(arg).exists():
            entries.extend(_glob(arg, recursive, say))
        else:
            entries.append(Entry(arg))
    return _unique(_with_attachments(entries))


def _with_attachments(entries: list[Entry]) -> list[Entry]:
    """Each e-mail followed by its attachments that docvision reads, as sources of their own
    (``mail.eml#invoice.pdf``)."""
    result = []
    for entry in entries:
        result.append(entry)
        if entry.error is None and entry.source.lower().endswith(".eml") and Path(entry.source).is_file():
            from docvision.ingest.attachments import attachment_names

            result += [Entry(f"{entry.source}#{name}") for name in attachment_names(Path(entry.source))]
    return result


def _unique(entries: list[Entry]) -> list[Entry]:
    """Drop repeats: the same text, or the same file reached by another path (links, ``sub -> .``)."""
    seen: set = set()
    unique = []
    for entry in entries:
        keys = {entry.source}
        if entry.error is None and not is_url(entry.source) and not remote.is_object(entry.source):
            try:
                keys.add(os.path.realpath(entry.source))
            except (OSError, ValueError):
                pass
        if not keys & seen:
            unique.append(entry)
        seen |= keys
    return unique
