"""Exit statuses and the one place that maps what happened to them.

Every other module raises (a DocvisionError, KeyboardInterrupt, Terminated, BrokenPipeError) or reports
failed sources through the run's Outcome; only ``exit_status`` turns those into the process's exit code.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """The exit codes docvision uses (docs/records.md)."""

    OK = 0  # every source ok (or a closed pipe: the reader wanted no more)
    FAILED = 1  # one or more sources failed; the others ran
    USAGE = 2  # the command line or a setting is wrong; nothing ran
    OUTPUT_LOST = 74  # records could not be written to --output or stdout (full disk, I/O error): EX_IOERR
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
    TERMINATED = 143  # SIGTERM (128 + SIGTERM)


class Terminated(BaseException):
    """Raised in the main thread when SIGTERM arrives, so ``finally`` blocks stop what was started."""


class PipeClosed(Exception):
    """stdout's reader went away (``| head -1``). Not an OSError on purpose: Click turns a broken pipe
    into exit 1 before we could call it what it is, a reader that wanted no more."""


def exit_status(exc: BaseException | None = None, *, failed: bool = False,
                output_lost: bool = False) -> ExitStatus:
    """The exit status for how a command ended: an exception it raised, or its sources' outcome."""
    from docvision.errors import DocvisionError, OutputError, UsageError

    if exc is None:
        if output_lost:
            return ExitStatus.OUTPUT_LOST
        return ExitStatus.FAILED if failed else ExitStatus.OK
    if isinstance(exc, KeyboardInterrupt):
        return ExitStatus.INTERRUPTED
    if isinstance(exc, Terminated):
        return ExitStatus.TERMINATED
    if isinstance(exc, (BrokenPipeError, PipeClosed)):
        return ExitStatus.OK
    if isinstance(exc, UsageError):
        return ExitStatus.USAGE
    if isinstance(exc, OutputError):  # records could not be written to stdout
        return ExitStatus.OUTPUT_LOST
    if isinstance(exc, DocvisionError):
        return ExitStatus.FAILED
    return ExitStatus.FAILED
