"""``docvision render``: show exactly what the model will see of each page."""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

import typer

from docvision.cli import common


def render(
    sources: List[str] = typer.Argument(..., metavar="SOURCE",
                                        help="Files, folders, globs, URLs, or - to read paths from stdin."),
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
    """Show what the model will see of each page: its HD-N plan (canvas, tile grid, visual tokens).

    With --out, write per page the canvas, the global view and an overview picture with the tile
    grid drawn and numbered over the page.

    \b
    Examples:
      docvision render report.pdf
      docvision render poster.png --hd 16 --out views/
      docvision render https://example.com/pricing --json
      find docs -name '*.pdf' | docvision render - --json
    """
    from docvision.document import IngestOptions
    from docvision.tasks.render import ViewFolders, render_source
    from docvision.sources import expand

    _check_pages(pages)
    _check_out(out)
    options = IngestOptions(pages=pages, password=password, max_image_pixels=max_image_pixels, timeout=timeout,
                            viewport_width=viewport_width, device_scale_factor=scale, browser=browser)
    entries = _outside(expand(sources, recursive=recursive), out)
    family = None
    if model is not None:
        from docvision.models import families, registry as models

        family = families.detect(models.resolve(model, download=False).config)
    folders = ViewFolders(out) if out is not None else None
    emit = _json_emitter() if json_out else _human_emitter()
    from docvision.ingest.tools import Tools

    with Tools(options) as tools:
        tools.expect([e.source for e in entries if e.error is None])
        return common.run_sources(
            entries, "render",
            lambda s: render_source(s, options, hd=hd, tile=tile, family=family, folders=folders, tools=tools),
            emit, debug,
        )


def _outside(entries: list, out: Optional[Path]) -> list:
    """Leave out our own views in --out: rendering `.` again must not render the last run's pictures."""
    from docvision.ingest import is_url
    from docvision.tasks.render import VIEW_SUFFIXES

    if out is None:
        return entries
    root = out.resolve()

    def ours(source: str) -> bool:
        path = Path(source)
        return (not is_url(source) and path.name.startswith("page-") and path.name.endswith(VIEW_SUFFIXES)
                and path.resolve().parent.parent == root)

    kept = [e for e in entries if e.error is not None or not ours(e.source)]
    if len(kept) < len(entries):
        common.say_warning(f"left out {len(entries) - len(kept)} view picture(s) of an earlier run in --out {out}")
    return kept


def _check_pages(spec: Optional[str]) -> None:
    """Refuse a malformed --pages once, before any source runs (not once per file of a batch).

    Whether the pages exist depends on each document, so that check stays with the ingestors.
    """
    from docvision.errors import UsageError

    parts = [part for part in (spec or "").replace(" ", "").split(",") if part]
    if spec and not parts:
        raise UsageError(f"--pages {spec!r} names no page; use numbers like 1-3,7")
    for part in parts:
        match = re.fullmatch(r"(\d*)-(\d*)|(\d+)", part)
        if part == "-":
            continue
        if match is None:
            raise UsageError(f"--pages {spec}: {part!r} is not a page or a range; use numbers like 1-3,7")
        numbers = [int(n) for n in match.groups() if n]
        if any(n < 1 for n in numbers):
            raise UsageError(f"--pages {spec}: pages count from 1; use numbers like 1-3,7")
        if match.group(1) and match.group(2) and numbers[0] > numbers[1]:
            raise UsageError(f"--pages {spec}: the range {part} runs backwards; write {numbers[1]}-{numbers[0]}")


def _check_out(out: Optional[Path]) -> None:
    """Make sure --out is a folder we can write to before rendering anything into it."""
    from docvision.errors import UsageError

    if out is None:
        return
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder: choose a folder for the views")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"--out {out}: cannot write there ({reason}); choose another folder") from None


def _json_emitter():
    """JSON Lines on stdout; errors and, as with the table, a source's warnings also on stderr."""
    emit_json = common.json_emitter()

    def emit(record: dict) -> None:
        emit_json(record)
        for warning in record.get("warnings") or []:
            common.say_warning(f"{common.shown(record)}: {warning}")

    return emit


def _human_emitter():
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    numbers = ("source px", "scale", "canvas px", "grid", "tiles", "tokens", "words")

    def emit(record: dict) -> None:
        if record["status"] != "ok":
            common.say_error(f"{common.shown(record)}: {record['error']['message']}")
            return
        res = record["resolution"]
        # Paths are never wrapped by us (soft_wrap): they stay whole for copying.
        console.print(f"{record['source']}  (HD-{res['hd']}, tile {res['tile']} px)", soft_wrap=True)
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                      collapse_padding=True)
        # Numbers never wrap or shrink; the label wraps; a note is a short flag here and its full
        # text a line under the table, so an 80-column terminal shows one readable row per page.
        table.add_column("page", overflow="fold", min_width=6)
        for column in numbers:
            table.add_column(column, justify="right", no_wrap=True)
        table.add_column("notes", no_wrap=True, overflow="ellipsis")
        details = []
        for page in record["pages"]:
            p = page["plan"]
            notes = ["scanned"] if page["scanned"] else []
            if page.get("warnings"):
                notes.append("warning")
                details += [f"{page['label']}: {w}" for w in page["warnings"]
                            if not any(w in doc_warning for doc_warning in record.get("warnings", []))]
            table.add_row(
                page["label"], "x".join(map(str, p["source_size"])), f"{p['scale']:.3f}",
                "x".join(map(str, p["canvas_size"])), "x".join(map(str, p["grid"])),
                str(p["tiles"]), str(p["tokens"]), str(page["words"]), ", ".join(notes),
            )
        console.print(table)
        for detail in details:
            console.print(f"  {detail}", overflow="fold")
        console.print(f"  {res['pages']} page(s), {res['tiles']} tiles, {res['tokens']} visual tokens"
                      f" in {record['timings']['render_s']:.2f} s")
        if record["pages"] and "files" in record["pages"][0]:
            console.print(f"  views written to {Path(record['pages'][0]['files']['canvas']).parent}",
                          soft_wrap=True)
        for warning in record.get("warnings", []):
            common.say_warning(f"{common.shown(record)}: {warning}")
        sys.stdout.flush()

    return emit
