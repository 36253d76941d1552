"""``docvision render``: show exactly what the model will see of each page."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

import docvision.cli.options as o
import docvision.cli.runner as runner

Views = Annotated[Optional[Path], typer.Option(
    "--views", "--out", help="Write canvas, global view, overview and anchors per page into this folder "
    "(one sub-folder per source).", show_default=False)]


def render(
    sources: o.Sources,
    hd: o.Hd = None,
    tile: o.Tile = None,
    model: o.Model = None,
    pages: o.Pages = None,
    password: o.Password = None,
    views: Views = None,
    json_out: o.Json = False,
    output: o.Output = None,
    resume: o.Resume = False,
    no_timings: o.NoTimings = False,
    no_cache: o.NoCache = False,
    allow_partial: o.AllowPartial = False,
    recursive: o.Recursive = False,
    max_image_pixels: o.MaxImagePixels = None,
    timeout: o.Timeout = None,
    browser: o.Browser = None,
    viewport_width: o.ViewportWidth = None,
    scale: o.Scale = None,
    offline: o.Offline = False,
    local_pages_online: o.LocalPagesOnline = False,
    local_root: o.LocalRoot = None,
    ocr: o.Ocr = None,
    lang: o.Lang = None,
    config_file: o.Config = None,
    debug: o.Debug = False,
) -> int:
    """Show what the model will see of each page: its HD-N plan (canvas, tile grid, visual tokens).

    With --views, write per page the canvas (the model's input), the global view, an overview picture
    with the tile grid drawn and numbered, and the page's words in canvas pixels.

    \b
    Examples:
      docvision render report.pdf
      docvision render poster.png --hd 16 --views views/
      docvision render https://example.com/pricing --json
      find docs -name '*.pdf' | docvision render - --json
    """
    from docvision.run.batch import Plan
    from docvision.tasks.render import RenderTask, ViewFolders

    flags = {"hd": hd, "tile": tile, "model": model, "max_image_pixels": max_image_pixels, "timeout": timeout,
             "browser": browser, "viewport_width": viewport_width, "scale": scale, "offline": offline,
             "local_pages_online": local_pages_online, "local_root": local_root, "ocr": ocr, "lang": lang}
    chosen = runner.settings(flags, config_file)
    ingest = runner.ingest_options(chosen, pages, password)
    check_folder(views, "--views")
    family = model_id = None
    if model is not None:
        import docvision.models.families as families
        import docvision.models.registry as registry

        resolved = registry.resolve(model, download=False)
        family, model_id = families.detect(resolved.config), resolved.model_id
    task = RenderTask(hd=chosen.for_task("hd", "render"), tile=chosen.tile, family=family, model_id=model_id,
                      folders=ViewFolders(views) if views is not None else None)
    plan = Plan(sources, task, ingest, recursive=recursive, output=runner.output_path(output), resume=resume,
                cache=not no_cache, timings=runner.timings_wanted(no_timings),
                engine=runner.engine_settings(chosen, False, allow_partial, debug),
                keep=_outside(views), left_out=f"left out {{n}} view picture(s) of an earlier run in --views {views}")
    return runner.execute(plan, json_out)


def _outside(views: Optional[Path]):
    """Leave out our own views in --views: rendering `.` again must not render the last run's pictures."""
    if views is None:
        return None
    from docvision.ingest.checks import is_url
    from docvision.tasks.render import VIEW_SUFFIXES

    root = views.resolve()

    def keep(entry) -> bool:
        path = Path(entry.source)
        return not (entry.error is None and not is_url(entry.source) and path.name.startswith("page-")
                    and path.name.endswith(VIEW_SUFFIXES) and path.resolve().parent.parent == root)

    return keep


def check_folder(folder: Optional[Path], flag: str) -> None:
    """Make sure a folder for pictures can be written before anything is drawn into it."""
    from docvision.errors import UsageError

    if folder is None:
        return
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{flag} {folder} is a file, not a folder: choose a folder for the pictures")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"{flag} {folder}: cannot write there ({reason}); choose another folder") from None
