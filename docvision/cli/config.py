"""``docvision config``: the effective settings and where each came from (flag, env, file, default)."""

from __future__ import annotations

import json

import typer

import docvision.cli.options as o


def config(
    config_file: o.Config = None,
    backend: o.Backend = None,
    base_url: o.BaseUrl = None,
    model: o.Model = None,
    hd: o.Hd = None,
    concurrency: o.Concurrency = None,
    json_out: o.Json = False,
) -> int:
    """Show the effective settings: flags win over DOCVISION_* variables, over the config file, over defaults."""
    import docvision.config as settings_module

    flags = {"backend": backend, "base_url": base_url, "model": model, "hd": hd, "concurrency": concurrency}
    settings = settings_module.resolve(flags, config=config_file)
    rows = settings.rows()
    if json_out:
        typer.echo(json.dumps({"config_file": settings.config_file, "settings": rows}, ensure_ascii=False))
        return 0
    from rich.console import Console
    from rich.table import Table

    out = Console(highlight=False)  # rich honours NO_COLOR and plain pipes itself
    file_note = settings.config_file or f"none (looked for {settings_module.default_config_path()})"
    # The file's path on a line of its own: as a table title rich would wrap it to the table's width.
    out.print(f"config file: {file_note}", soft_wrap=True, markup=False)
    table = Table(show_edge=False)
    # The meaning of each column is in --json and --help. Names and values stay whole on one line (a
    # hub id cut in two cannot be copied); where a value came from folds when the terminal is narrow.
    table.add_column("setting", no_wrap=True)
    table.add_column("value", no_wrap=True, overflow="fold")
    table.add_column("from", overflow="fold")
    for row in rows:
        value = "-" if row["value"] is None else str(row["value"])
        if row["name"] == "model" and row["value"] is None and settings.backend == "transformers":
            from docvision.models.registry import ALIASES

            value = f"default ({ALIASES['default'][0]})"  # what "not set" means for a local model
        origin = row["origin"] if row["origin"] == "default" else f"{row['origin']} ({row['from']})"
        table.add_row(row["name"], value, origin)
    out.print(table)
    return 0

