"""``docvision models``: the model aliases, which are in the local cache, and how they would run here."""

from __future__ import annotations

import json
import sys

import typer

import docvision.cli.options as o


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
    json_out: o.Json = False,
) -> int:
    """List the model aliases, whether each is in the local Hugging Face cache, and how it would run."""
    import docvision.models.registry as registry

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
