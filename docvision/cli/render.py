"""``docvision render``: show exactly what the model will see of each page."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from docvision.cli import common


def render(
    sources: List[str] = typer.Argument(..., help="Files, folders, globs, URLs, or - to read paths from stdin."),
    hd: int = common.HD_OPTION,
    tile: int = typer.Option(336, "--tile", min=28, help="Tile size in pixels (336 as in 4KHD)."),
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help="Plan as this model sees pages: its tile size and visual-token count."),
    pages: Optional[str] = common.PAGES_OPTION,
    password: Optional[str] = common.PASSWORD_OPTION,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write canvas, global view and overview per page here."),
    json_out: bool = common.JSON_OPTION,
    recursive: bool = common.RECURSIVE_OPTION,
    max_image_pixels: int = common.MAX_PIXELS_OPTION,
    timeout: float = common.TIMEOUT_OPTION,
    viewport_width: int = common.VIEWPORT_OPTION,
    scale: float = common.SCALE_OPTION,
    browser: Optional[str] = common.BROWSER_OPTION,
    debug: bool = common.DEBUG_OPTION,
) -> int:
    """Plan each page at HD-N and print the plan; with --out, write the views."""
    from docvision import ingest
    from docvision.document import IngestOptions
    from docvision.render import render_source
    from docvision.sources import expand

    options = IngestOptions(pages=pages, password=password, max_image_pixels=max_image_pixels, timeout=timeout,
                            viewport_width=viewport_width, device_scale_factor=scale, browser=browser)
    entries = expand(sources, recursive=recursive)
    ingest.expect([e.source for e in entries if e.error is None])
    family = None
    if model is not None:
        from docvision import families, models

        family = families.detect(models.resolve(model, download=False).config)
    emit = common.json_emitter() if json_out else _human_emitter()
    return common.run_sources(
        entries, "render", lambda s: render_source(s, options, hd=hd, tile=tile, out_dir=out, family=family),
        emit, debug,
    )


def _human_emitter():
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)

    def emit(record: dict) -> None:
        if record["status"] != "ok":
            common.say_error(f"{record['source']}: {record['error']['message']}")
            return
        res = record["resolution"]
        table = Table(title=f"{record['source']}  (HD-{res['hd']}, tile {res['tile']} px)",
                      title_justify="left", show_edge=False)
        for column in ("page", "source px", "scale", "canvas px", "grid", "tiles", "tokens", "words", "notes"):
            table.add_column(column, justify="left" if column in ("page", "notes") else "right")
        for page in record["pages"]:
            p = page["plan"]
            notes = ["scanned"] if page["scanned"] else []
            notes += page.get("warnings", [])
            table.add_row(
                page["label"], "x".join(map(str, p["source_size"])), f"{p['scale']:.3f}",
                "x".join(map(str, p["canvas_size"])), "x".join(map(str, p["grid"])),
                str(p["tiles"]), str(p["tokens"]), str(page["words"]), "; ".join(notes),
            )
        console.print(table)
        console.print(f"  {res['pages']} page(s), {res['tiles']} tiles, {res['tokens']} visual tokens"
                      f" in {record['timings']['render_s']:.2f} s")
        if record["pages"] and "files" in record["pages"][0]:
            console.print(f"  views written to {Path(record['pages'][0]['files']['canvas']).parent}")
        for warning in record.get("warnings", []):
            common.say_warning(f"{record['source']}: {warning}")
        sys.stdout.flush()

    return emit
