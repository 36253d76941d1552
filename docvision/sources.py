"""Expand what the user typed (files, folders, globs, URLs, ``-`` for stdin) into a list of sources.

Each entry is either a source string to process, or an error (a folder with nothing readable in
it, a glob that matched nothing) that becomes an error record while the rest of the batch runs.
"""

from __future__ import annotations

import glob
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from docvision.errors import DocvisionError, SourceNotFound, UnsupportedSource
from docvision.ingest import EXTENSIONS, is_url


def redact(source: str) -> str:
    """A source as it may be shown or stored: a URL's password (``https://user:pass@host/``) replaced.

    Records, warnings, error lines and logs all go through this; the URL itself is still fetched
    with its credentials.
    """
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


@dataclass(frozen=True)
class Entry:
    source: str
    error: DocvisionError | None = None


def _folder(path: Path, recursive: bool) -> list[Entry]:
    pattern = "**/*" if recursive else "*"
    files = sorted(
        p for p in path.glob(pattern)
        if p.is_file() and p.suffix.lower() in EXTENSIONS and not p.name.startswith("~$")
        and not any(part.startswith(".") for part in p.relative_to(path).parts)  # hidden files and folders
    )
    if not files:
        hint = "" if recursive else " (add --recursive to look in sub-folders)"
        return [Entry(str(path), UnsupportedSource(f"folder has no supported files{hint}", source=str(path)))]
    return [Entry(str(p)) for p in files]


def expand(args: Iterable[str], recursive: bool = False, stdin=None) -> list[Entry]:
    """Sources in the order given; folders sorted by name; duplicates dropped (first kept)."""
    entries: list[Entry] = []
    for arg in args:
        if arg == "-":
            stream = stdin if stdin is not None else sys.stdin
            # Only the line break is cut: a file name may begin or end with spaces.
            lines = [line.rstrip("\r\n") for line in stream if line.strip()]
            entries.extend(expand(lines, recursive))
        elif not arg.strip():  # Path("") is the current folder: an unset shell variable must not mean "."
            entries.append(Entry(arg, SourceNotFound("an empty source name was given (an unset shell variable?)",
                                                     source=arg)))
        elif is_url(arg):
            entries.append(Entry(arg))
        elif Path(arg).is_dir():
            entries.extend(_folder(Path(arg), recursive))
        elif glob.has_magic(arg) and not Path(arg).exists():
            matches = sorted(glob.glob(arg, recursive=recursive))
            if not matches:
                entries.append(Entry(arg, SourceNotFound("the pattern matched no file", source=arg)))
            for match in matches:
                entries.extend(_folder(Path(match), recursive) if Path(match).is_dir() else [Entry(match)])
        else:
            entries.append(Entry(arg))
    seen: set[str] = set()
    unique = []
    for entry in entries:
        if entry.source not in seen:
            seen.add(entry.source)
            unique.append(entry)
    return unique
