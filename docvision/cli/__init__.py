"""The command line: parse options, call one function per command, print, exit.

This package is the only place that prints or exits. Heavy packages (torch, transformers, playwright)
are imported only inside the commands that need them, so ``docvision --help`` is instant. ``run`` is
the one function that turns how a command ended into an exit status (``docvision.run.status``).
"""

from __future__ import annotations

import os
import signal
import sys

import typer

from docvision.cli.ask import ask
from docvision.cli.chat import chat
from docvision.cli.config import config
from docvision.cli.console import say_error, show_traceback
from docvision.cli.extract import extract
from docvision.cli.models import models
from docvision.cli.render import render
from docvision.cli.summarize import summarize
from docvision.run.status import ExitStatus, PipeClosed, Terminated, exit_status

app = typer.Typer(
    name="docvision",
    help="Ask questions about any document with a local vision-language model.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# The command registry: one line per command, nothing registered by import side effects.
app.command("render")(render)
app.command("ask")(ask)
app.command("summarize")(summarize)
app.command("extract")(extract)
app.command("chat")(chat)
app.command("models")(models)
app.command("config")(config)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        from docvision.version import __version__

        typer.echo(f"docvision {__version__}")
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None:  # bare `docvision`: the normal help, exit 0
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``docvision`` command."""
    sys.exit(int(run(argv)))


def _terminate(signum, frame) -> None:
    raise Terminated()


def run(argv: list[str] | None = None) -> ExitStatus:
    """Run the command line and return its exit status instead of exiting."""
    args = list(argv if argv is not None else sys.argv[1:])
    debug = "--debug" in args
    if sys.stdout is None:  # started with stdout closed (>&-)
        say_error("standard output is closed: redirect it (> file, or > /dev/null with --output FILE)")
        return ExitStatus.USAGE
    from docvision.cli.runner import listen

    previous = signal.signal(signal.SIGTERM, _terminate)
    unlisten = listen(debug)
    try:
        result = app(args=args, standalone_mode=False, prog_name="docvision")
        status = ExitStatus(result) if isinstance(result, int) else ExitStatus.OK
        if status == ExitStatus.INTERRUPTED:  # Typer returns (not raises) its Exit(130) on Ctrl-C here
            say_error("interrupted")
        return status
    except typer.Exit as exc:
        # Typer turns Ctrl-C inside a command into a silent Exit(130): say it, as for any interrupt.
        if exc.exit_code == ExitStatus.INTERRUPTED:
            say_error("interrupted")
        return ExitStatus(exc.exit_code) if exc.exit_code in ExitStatus._value2member_map_ else ExitStatus.FAILED
    except (typer.Abort, KeyboardInterrupt):
        say_error("interrupted")
        return ExitStatus.INTERRUPTED
    except Terminated:
        say_error("terminated (SIGTERM): stopped what was running; records written so far are kept")
        return ExitStatus.TERMINATED
    except (BrokenPipeError, PipeClosed):
        _quiet_stdout()  # `| head -1`: the reader wanted no more; that is not an error
        return ExitStatus.OK
    except typer.TyperException as exc:  # usage errors from the parser (typer vendors click)
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        ctx = getattr(exc, "ctx", None)
        say_error(message + (f" (see: {ctx.command_path} --help)" if ctx is not None else ""))
        return ExitStatus.USAGE
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if debug:
            show_traceback(exc)
        from docvision.errors import DocvisionError

        if isinstance(exc, DocvisionError):
            say_error(str(exc))
            if exc.kind == "output":
                _quiet_stdout()  # what is still buffered for stdout must not fail again at exit
        else:
            say_error(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return exit_status(exc)
    finally:
        unlisten()
        signal.signal(signal.SIGTERM, previous)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush does not complain about the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
