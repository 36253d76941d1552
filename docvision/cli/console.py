"""The CLI's lines on stderr and its JSON Lines on stdout.

Everything docvision prints goes through here or ``cli.human``. Text that comes from outside (file
names, page titles, server messages) is made safe for a terminal first: control characters, such as
the escape sequences a hostile file name can hold to retitle or clear a terminal, are written as
\\xNN instead of being sent to it.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from typing import Callable

import docvision.records as records

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe(text: str) -> str:
    """``text`` with control characters (escape sequences) shown as \\xNN and lines joined: one line."""
    text = " ".join(str(text).split())
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def use_color() -> bool:
    return "NO_COLOR" not in os.environ and sys.stderr.isatty()


def say_error(message: str) -> None:
    """One clear line on stderr."""
    _say("error", "31", message)


def say_warning(message: str) -> None:
    _say("warning", "33", message)


def _say(word: str, colour: str, message: str) -> None:
    prefix = f"\x1b[{colour}m{word}:\x1b[0m " if use_color() else f"{word}: "
    try:
        sys.stderr.write(prefix + safe(message) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # stderr closed: nothing left to tell
        pass


def show_traceback(exc: BaseException) -> None:
    """--debug: the traceback of an error whose one line is said elsewhere."""
    traceback.print_exception(exc)


def failed_line(record: dict) -> str:
    """The one line for a failed source: its name and why."""
    return f"{record['source'] or chr(34) * 2}: {record['error']['message']}"


def json_emitter(warnings: bool = True) -> Callable[..., None]:
    """Records as JSON Lines on stdout, flushed one by one; an error also as a line on stderr unless the
    run reports its reason once (``say=False``: the model failed to load); warnings on stderr too."""

    def emit(record: dict, say: bool = True) -> None:
        records.write(record, sys.stdout)
        if say and record["status"] != "ok":
            say_error(failed_line(record))
        if warnings:
            for warning in record.get("warnings") or []:
                say_warning(f"{record['source']}: {warning}")

    return emit
