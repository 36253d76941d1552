"""``docvision config``: the effective settings and where each came from (flag, env, file, default)."""

from __future__ import annotations

import json
from typing import Optional

import typer

from docvision.cli import common


def config(
    config_file: Optional[str] = common.CONFIG_OPTION,
    backend: Optional[str] = common.BACKEND_OPTION,
    base_url: Optional[str] = common.BASE_URL_OPTION,
    model: Optional[str] = typer.Option(None, "--model", help="Model alias, hub id, folder or served name."),
    hd: Optional[int] = typer.Option(None, "--hd", min=1, max=400, help="Resolution budget HD-N."),
    concurrency: Optional[int] = common.CONCURRENCY_OPTION,
    json_out: bool = common.JSON_OPTION,
) -> int:
    """Show the effective settings: flags win over DOCVISION_* variables, over the config file, over defaults."""
    from docvision import config as settings_module

    flags = {"backend": backend, "base_url": base_url, "model": model, "hd": hd, "concurrency": concurrency}
    settings = settings_module.resolve(flags, config=config_file)
    rows = settings.rows()
    if json_out:
        typer.echo(json.dumps({"config_file": settings.config_file, "settings": rows}, ensure_ascii=False))
        return common.EXIT_OK
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)  # rich honours NO_COLOR and plain pipes itself
    file_note = settings.config_file or f"none (looked for {settings_module.default_config_path()})"
    # The file's path on a line of its own: as a table title rich would wrap it to the table's width.
    console.print(f"config file: {file_note}", soft_wrap=True, markup=False)
    table = Table(show_edge=False)
    for column in ("setting", "value", "from"):  # the meaning of each is in --json and --help
        table.add_column(column, overflow="fold")
    for row in rows:
        value = "-" if row["value"] is None else str(row["value"])
        if row["name"] == "model" and row["value"] is None and settings.backend == "transformers":
            from docvision.models.registry import ALIASES

            value = f"default ({ALIASES['default'][0]})"  # what "not set" means for a local model
        origin = row["origin"] if row["origin"] == "default" else f"{row['origin']} ({row['from']})"
        table.add_row(row["name"], value, origin)
    console.print(table)
    return common.EXIT_OK

