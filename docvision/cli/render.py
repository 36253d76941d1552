"""``docvision render``: show exactly what the model will see of each page."""

from __future__ import annotations

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
    hd: o.RenderHd = None,
    tile: o.Tile = None,
    model: o.Model = None,
    pages: o.Pages = None,
    password: o.Password = None,
    views: Views = None,
    json_out: o.Json = False,
    output: o.Output = None,
    output_dir: o.OutputDir = None,
    resume: o.Resume = False,
    no_timings: o.NoTimings = False,
    no_cache: o.NoCache = False,
    allow_partial: o.AllowPartial = False,
    recursive: o.Recursive = False,
    workers: o.Workers = None,
    ray: o.Ray = False,
    ray_address: o.RayAddress = None,
    ray_gpus_per_actor: o.RayGpusPerActor = None,
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
    given = dict(locals())

    def call(session, progress):
        return session.render(sources, views=views, progress=progress, **runner.call_arguments(given))

    return runner.execute(call, given, json_out=json_out, task="render")


