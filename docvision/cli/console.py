"""The CLI's lines on stderr and its JSON Lines on stdout.

Everything docvision prints goes through here or ``cli.human``. Text that comes from outside (file
names, page titles, server messages) is made safe for a terminal first: control characters, such as
the escape sequences a hostile file name can hold to retitle or clear a terminal, are written as
\\xNN instead of being sent to it.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import sys
import threading
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
    clear_status()
    try:
        sys.stderr.write(prefix + safe(message) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # stderr closed: nothing left to tell
        pass


class _Status:
    """The live status line on stderr (a terminal only): one line redrawn in place, cleared before any
    other line is written; held while an answer streams, so it never lands inside the answer."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.shown = False
        self.held = False
        self.describe: Callable[[str], bool] | None = None  # a progress bar that shows it instead


STATUS = _Status()


def show_status(text: str) -> None:
    """Draw ``text`` as the status line (on a terminal's stderr only; nothing reaches a pipe)."""
    with STATUS.lock:
        if STATUS.held:
            return
        if STATUS.describe is not None and STATUS.describe(text):
            return
        if not _stderr_is_terminal():
            return
        width = max(10, shutil.get_terminal_size((80, 24)).columns - 1)
        line = safe(text)
        line = line if len(line) <= width else line[: width - 1] + "…"
        dim = ("\x1b[2m", "\x1b[0m") if use_color() else ("", "")
        _write_stderr(f"\r\x1b[2K{dim[0]}{line}{dim[1]}")
        STATUS.shown = True


def clear_status(hold: bool = False) -> None:
    """Remove the status line; ``hold``: keep it away until ``release_status`` (an answer streams)."""
    with STATUS.lock:
        if STATUS.shown:
            _write_stderr("\r\x1b[2K")
            STATUS.shown = False
        STATUS.held = STATUS.held or hold


def release_status() -> None:
    STATUS.held = False


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _write_stderr(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass


class _Foreign(logging.Handler):
    """Other libraries' log lines and Python warnings (an optional package missing, a trust check skipped
    offline) kept off stderr, which holds docvision's own lines: an error of theirs becomes one docvision
    warning (each message once), the rest is dropped; --debug shows everything."""

    def __init__(self, debug: bool) -> None:
        super().__init__(logging.DEBUG if debug else logging.ERROR)
        self.debug, self.said = debug, set()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "docvision" or record.name.startswith("docvision."):
            return  # the docvision logger has its own handler (cli.runner.LogLines)
        message = f"{record.name}: {record.getMessage()}"
        if self.debug:
            _write_stderr(f"debug: {safe(message)}\n")
        elif message not in self.said:
            self.said.add(message)
            say_warning(message)


def keep_stderr_ours(debug: bool) -> Callable[[], None]:
    """Route other libraries' logging and warnings through ``_Foreign`` for one command; returns the undo."""
    root = logging.getLogger()
    handler = _Foreign(debug)
    root.addHandler(handler)
    logging.captureWarnings(True)

    def undo() -> None:
        root.removeHandler(handler)
        logging.captureWarnings(False)

    return undo


def show_traceback(exc: BaseException) -> None:
    """--debug: the traceback of an error whose one line is said elsewhere."""
    traceback.print_exception(exc)


def failed_line(record: dict) -> str:
    """The one line for a failed source: its name and why."""
    return f"{record['source'] or chr(34) * 2}: {record['error']['message']}"


def guarded(emit: Callable[..., None]) -> Callable[..., None]:
    """``emit`` whose failure to write stdout (a full disk, ``> /dev/full``, an I/O error) stops the run as
    one OutputError (exit 74) instead of an unexpected OSError; a reader that went away stays a
    BrokenPipeError (exit 0)."""
    from docvision.errors import OutputError

    def shown(record: dict, say: bool = True) -> None:
        try:
            emit(record) if say else emit(record, say=False)
        except BrokenPipeError:
            raise
        except OSError as exc:
            reason = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else exc.strerror or exc
            raise OutputError(f"cannot write records to standard output ({reason}); the run stopped") from None

    return shown


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
