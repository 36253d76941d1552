"""What every command shares: options, the error line, exit codes and the per-source batch loop."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Callable

import typer

from docvision import records
from docvision.errors import DocvisionError, UsageError
from docvision.sources import Entry

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object per source per line (JSON Lines) on stdout.")
DEBUG_OPTION = typer.Option(False, "--debug", help="Show tracebacks for errors.")
HD_OPTION = typer.Option(
    25, "--hd", min=1, max=400,
    help="Resolution budget: at most N tiles per page (HD-N of InternLM-XComposer2-4KHD).",
)
PAGES_OPTION = typer.Option(None, "--pages", help="Pages to read, e.g. 1-3,7 (default: all).")
PASSWORD_OPTION = typer.Option(None, "--password", help="Password of an encrypted PDF.", envvar="DOCVISION_PASSWORD")
RECURSIVE_OPTION = typer.Option(False, "--recursive", "-r", help="Look into sub-folders of folders given.")
MAX_PIXELS_OPTION = typer.Option(
    250_000_000, "--max-image-pixels", min=1,
    help="Refuse images larger than this many pixels (decompression-bomb guard).",
)
TIMEOUT_OPTION = typer.Option(
    60.0, "--timeout", min=0.1, envvar="DOCVISION_TIMEOUT",
    help="Seconds allowed for each external step (loading a web page, a converter).",
)
VIEWPORT_OPTION = typer.Option(1280, "--viewport-width", min=200, max=8192, help="Web pages: browser width in CSS px.")
SCALE_OPTION = typer.Option(
    2.0, "--scale", min=0.25, max=8.0, help="Web pages: device scale factor (2 draws text as on a retina screen).",
)
BROWSER_OPTION = typer.Option(
    None, "--browser", envvar="DOCVISION_CHROMIUM", help="Web pages: the Chromium executable to use.",
)


def use_color() -> bool:
    return "NO_COLOR" not in os.environ and sys.stderr.isatty()


def say_error(message: str) -> None:
    """One clear line on stderr."""
    prefix = "\x1b[31merror:\x1b[0m " if use_color() else "error: "
    sys.stderr.write(prefix + " ".join(message.split()) + "\n")
    sys.stderr.flush()


def say_warning(message: str) -> None:
    prefix = "\x1b[33mwarning:\x1b[0m " if use_color() else "warning: "
    sys.stderr.write(prefix + " ".join(message.split()) + "\n")
    sys.stderr.flush()


def shown(record: dict) -> str:
    """A record's source as a person reads it in a message ('""' for an empty argument)."""
    return record["source"] or '""'


def report_fatal(exc: BaseException, debug: bool) -> int:
    """Turn an exception that escaped a command into one line (or a traceback with --debug)."""
    if debug:
        traceback.print_exception(exc)
    if isinstance(exc, DocvisionError):
        say_error(str(exc))
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_FAILED
    say_error(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
    return EXIT_FAILED


def run_sources(
    entries: list[Entry],
    task: str,
    work: Callable[[str], dict],
    emit: Callable[[dict], None],
    debug: bool = False,
) -> int:
    """Run ``work`` on each source, emit a record per source as it finishes, return the exit code.

    A failing source gets an error record and the others still run.
    """
    if not entries:
        raise UsageError("no sources given")
    failed = False
    for entry in entries:
        if entry.error is not None:
            record = records.error(entry.source, task, entry.error)
        else:
            try:
                record = records.ok(entry.source, task, **work(entry.source))
            except DocvisionError as exc:
                if debug:
                    traceback.print_exception(exc)
                record = records.error(entry.source, task, exc)
            except Exception as exc:  # noqa: BLE001 - a bug met on one file must not stop the batch
                if debug:
                    traceback.print_exception(exc)
                record = records.error(entry.source, task, exc)
        failed |= record["status"] != "ok"
        emit(record)
    return EXIT_FAILED if failed else EXIT_OK


def json_emitter(stream=None) -> Callable[[dict], None]:
    """Emit records as JSON Lines on stdout, flushed one by one; errors also as a line on stderr."""
    stream = stream or sys.stdout

    def emit(record: dict) -> None:
        records.write(record, stream)
        if record["status"] != "ok":
            say_error(f"{shown(record)}: {record['error']['message']}")

    return emit

# Settings that also come from DOCVISION_* variables and the config file (docvision.config): the flags
# default to None so that "not given" lets the environment and the file speak.
CONFIG_OPTION = typer.Option(None, "--config", help="Settings file (TOML); default: DOCVISION_CONFIG, "
                             "else config.toml in the user config folder (see: docvision config).")
BACKEND_OPTION = typer.Option(None, "--backend", help="transformers (a local model, default) or openai "
                              "(an OpenAI-compatible server: vLLM, SGLang, Ollama, transformers serve).")
BASE_URL_OPTION = typer.Option(None, "--base-url", help="Server URL for --backend openai "
                               "(default http://127.0.0.1:8000/v1).")
CONCURRENCY_OPTION = typer.Option(None, "--concurrency", min=1, max=256,
                                  help="Requests in flight at once in a batch (--backend openai; default 1).")
UNORDERED_OPTION = typer.Option(False, "--unordered", help="With --concurrency: write records as they complete "
                                "instead of in input order.")
