"""``docvision models``: the model aliases, which are in the local cache, and how they would run here;
with ``--serve vllm|sglang|ollama``, the command that serves a model for docvision's calls instead
(docs/serving.md)."""

from __future__ import annotations

import json
import sys

from typing import Annotated, Optional

import typer

import docvision.cli.options as o
from docvision.errors import UsageError

Serve = Annotated[Optional[str], typer.Option(
    "--serve", metavar="SERVER", help="Print the command that starts vllm, sglang or ollama serving --model "
    "(default: the default alias) for calls at --hd (default 25), --max-pages and --max-new-tokens: the context, "
    "the encoder cache and the images per request they need.", show_default=False)]


def _human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def runtime(device: str = "auto", quant: str = "auto") -> dict:
    """The device and quantization a model would get here with these flags."""
    from docvision.models.placement import choose_device, choose_quant

    chosen = choose_device(device)
    return {"device": chosen, "quant": choose_quant(quant, chosen)}


def models(
    device: o.Device = None,
    quant: o.Quant = None,
    serve: Serve = None,
    model: o.Model = None,
    hd: o.Hd = None,
    max_pages: o.MaxPages = None,
    max_new_tokens: o.MaxNewTokens = None,
    json_out: o.Json = False,
) -> int:
    """List the model aliases, whether each is in the local Hugging Face cache, and how it would run; or
    (--serve) print the command that serves a model for docvision."""
    import docvision.models.registry as registry

    if serve is not None:
        return serve_command(serve, model, hd, max_pages, max_new_tokens, json_out)

    run = runtime(device or "auto", quant or "auto")
    rows = [{**row, **run, "default": row["alias"] == registry.default_reference()} for row in registry.listing()]
    if json_out:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return 0
    from rich.console import Console
    from rich.table import Table

    precision = "bf16" if run["quant"] == "none" else f"{run['quant']} NF4" if run["quant"] == "4bit" else run["quant"]
    table = Table(title=f"models (would run here on {run['device']}, {precision}; * = default)", title_justify="left",
                  show_edge=False)
    for column in ("alias", "hub id", "cached", "size", "note"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["alias"] + (" *" if row["default"] else ""), row["id"], "yes" if row["cached"] else "no",
                      _human_size(row["size_bytes"]) if row["cached"] else "-", row["note"])
    # To a pipe or a file the table keeps its full width: a hub id cut in two cannot be copied.
    Console(highlight=False, width=None if sys.stdout.isatty() else 1000).print(table)
    return 0


def serve_command(server: str, model: str | None, hd: int | None, max_pages: int | None,
                  max_new_tokens: int | None, json_out: bool) -> int:
    """Print the server's command line for the model and plan; its numbers on stderr (or all as JSON)."""
    import docvision.models.fit as fit
    import docvision.models.registry as registry
    from docvision.config import SPECS, TASK_DEFAULTS
    from docvision.models.openai import family_of

    if server not in fit.SERVERS:
        raise UsageError(f"--serve {server}: choose one of {', '.join(fit.SERVERS)}")
    reference = model or registry.default_reference()
    served = registry.hub_id(reference) or reference
    hd = hd or TASK_DEFAULTS["hd"]["ask"]
    pages = max_pages or SPECS["max_pages"].default
    answer = max_new_tokens or TASK_DEFAULTS["max_new_tokens"]["ask"]
    needs = fit.server_needs(family_of(served), hd, pages, answer)
    command = fit.serve_command(server, served, needs)
    if json_out:
        typer.echo(json.dumps({"server": server, "model": served, **needs, "command": command}))
        return 0
    typer.echo(command)
    from docvision.cli.console import safe

    then = "--max-context {context} ".format(**needs) if server == "ollama" else ""
    typer.echo(safe(f"# {needs['family']} family: a page at HD-{hd} needs up to {needs['page_tokens']:,} visual "
                    f"tokens; {pages} per call and {answer} for the answer need a {needs['context']:,}-token context. "
                    f"Then: docvision ask ... --backend openai --base-url http://HOST:PORT/v1 {then}--hd {hd}"),
               err=True)
    return 0
