"""The command line: parse options, call one function per command, print, exit.

This package is the only place that prints or exits. Heavy packages (torch, transformers,
playwright) are imported only inside the commands that need them, so ``docvision --help`` is instant.
Exit codes (DESIGN.md section 4): 0 all ok, 1 a source failed, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import sys

import typer

from docvision.cli import common
from docvision.cli.ask import ask
from docvision.cli.config import config
from docvision.cli.extract import extract
from docvision.cli.models import models
from docvision.cli.render import render
from docvision.cli.summarize import summarize

app = typer.Typer(
    name="docvision",
    help="Ask questions about any document with a local vision-language model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# The command registry: one line per command, nothing registered by import side effects.
app.command("render")(render)
app.command("ask")(ask)
app.command("models")(models)
app.command("config")(config)
app.command("summarize")(summarize)
app.command("extract")(extract)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        from docvision import __version__

        typer.echo(f"docvision {__version__}")
        raise typer.Exit(0)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``docvision`` command."""
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit code instead of exiting."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        result = app(args=argv, standalone_mode=False, prog_name="docvision")
        if result == common.EXIT_INTERRUPTED:  # Typer returns (not raises) its Exit(130) on Ctrl-C here
            common.say_error("interrupted")
        return result if isinstance(result, int) else 0
    except typer.Exit as exc:
        # Typer turns Ctrl-C inside a command into a silent Exit(130): say it, as for any interrupt.
        if exc.exit_code == common.EXIT_INTERRUPTED:
            common.say_error("interrupted")
        return exc.exit_code
    except typer.Abort:
        common.say_error("interrupted")
        return common.EXIT_INTERRUPTED
    except typer.TyperException as exc:  # usage errors from the parser (typer vendors click)
        code = getattr(exc, "exit_code", common.EXIT_USAGE)
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see: {ctx.command_path} --help)" if ctx is not None and code == common.EXIT_USAGE else ""
        common.say_error(message + hint)
        return code
    except KeyboardInterrupt:
        common.say_error("interrupted")
        return common.EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        return common.report_fatal(exc, debug)
