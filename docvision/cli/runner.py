"""What every source command does with its parsed options: open a Session for one call, show its records,
return the exit status. The command modules only say which call and which arguments.

In: a command's parameters by name (its ``locals()``: settings None where not given) and a function that
makes the call on the Session. Out: the ExitStatus of the call's Run.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Callable

import docvision.cli.console as console
import docvision.cli.human as human
import docvision.cli.options as options

SETTINGS = options.MODEL_SETTINGS + options.INGEST_SETTINGS + options.RUN_SETTINGS + ("tile", "no_timings")


def open_session(given: dict[str, Any]):
    """A Session for one command: the flags it was given (None or False: not given, so the environment
    and the config file speak), its tools stopped as soon as rendering ends."""
    from docvision.session import one_call

    flags = {k: given[k] for k in SETTINGS if given.get(k) is not None and given.get(k) is not False}
    return one_call(config=given.get("config_file"), cache=not given.get("no_cache", False),
                    debug=console.show_traceback if given.get("debug") else None, **flags)


def call_arguments(given: dict[str, Any], *names: str) -> dict[str, Any]:
    """The arguments every source command passes on, plus ``names`` of its own."""
    shared = ("pages", "password", "recursive", "output", "output_dir", "resume", "allow_partial", "on_status")
    return {k: given[k] for k in (*shared, *names) if k in given}


def execute(run_call: Callable[[Any], Any], given: dict[str, Any], *, json_out: bool,
            human_emit: Callable[[Any, int], Callable[..., None]] | None = None, task: str = "") -> int:
    """Open the Session, make the call (``run_call(session, progress)``), show each record as it comes:
    JSON Lines or for people; warnings and errors on stderr. A model that could not load is said once."""
    from docvision.run.status import PipeClosed

    bar = ProgressBar()
    if task != "render":  # long model work shows a live status line on a terminal (never on a pipe)
        given["on_status"] = console.show_status
    with open_session(given) as session, native_stderr(session.settings.ray):
        run = run_call(session, bar.update)
        sources = len(run.entries)  # to a pipe, the answers of several sources are each headed by it
        emit = console.guarded(console.json_emitter() if json_out else human_emit(session, sources) if human_emit
                               else human.emitter(task, sources=sources))
        try:
            with run:
                for record in run:
                    own = run.failure is None or record["error"] != _error_of(run.failure)
                    emit(record) if own else emit(record, say=False)
        except BrokenPipeError:
            raise PipeClosed() from None
        finally:
            bar.close()
            console.clear_status()
    if run.failure is not None:
        raise run.failure
    return run.status


def _error_of(exc: BaseException) -> dict:
    import docvision.records as records

    return records.error_of(exc)


@contextmanager
def native_stderr(ray: bool):
    """With --ray, what Ray's C++ core writes to the process's stderr goes to a log file in the cache folder;
    docvision's own lines still reach the terminal (through a copy of the original stderr)."""
    if not ray:
        yield
        return
    import io
    import os
    import sys

    from platformdirs import user_cache_dir

    folder = os.environ.get("DOCVISION_CACHE_DIR") or user_cache_dir("docvision")
    os.makedirs(folder, exist_ok=True)
    sys.stderr.flush()
    saved, shown = os.dup(2), sys.stderr
    log = os.open(os.path.join(folder, "ray-driver.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 2)
    os.close(log)
    sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(saved), "wb"), encoding=shown.encoding, errors="backslashreplace",
                                  line_buffering=True)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = shown
        os.dup2(saved, 2)
        os.close(saved)


class ProgressBar:
    """A bar with ETA on stderr for a call with more than one source, when stderr is a terminal."""

    def __init__(self) -> None:
        self.bar = None

    def update(self, done: int, total: int, source: str) -> None:
        from docvision.run.progress import Progress

        if self.bar is None:
            self.bar = Progress(total)
            self.bar.__enter__()
            console.STATUS.describe = self.bar.describe  # the status line moves into the bar
        if done:
            self.bar.advance(source)

    def close(self) -> None:
        if self.bar is not None:
            console.STATUS.describe = None
            self.bar.__exit__(None, None, None)
            self.bar = None


class LogLines(logging.Handler):
    """The library's log as the CLI's stderr lines: a warning is "warning: ...", a failed source's
    traceback is shown with --debug."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            console.say_warning(record.getMessage())
        elif record.exc_info and record.exc_info[1] is not None:
            console.show_traceback(record.exc_info[1])


def listen(debug: bool) -> Callable[[], None]:
    """Route the ``docvision`` logger to stderr for one command; returns what undoes it."""
    logger = logging.getLogger("docvision")
    handler = LogLines()
    previous = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    logger.propagate = False
    others = console.keep_stderr_ours(debug)  # stderr holds docvision's lines only

    def undo() -> None:
        others()
        logger.removeHandler(handler)
        logger.setLevel(previous[0])
        logger.propagate = previous[1]

    return undo
