"""``docvision extract``: fields as validated JSON, e.g. ``--field total:number --json | jq -r .data.total``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

import docvision.cli.options as o
import docvision.cli.runner as runner

Field = Annotated[List[str], typer.Option(
    "--field", "-f", help="NAME[:TYPE], TYPE one of string, number, date, bool, list (default string). Repeat "
    "for more fields.", show_default=False)]
Schema = Annotated[Optional[Path], typer.Option(
    "--schema", help="A JSON Schema file (an object with properties; references only inside it).",
    show_default=False)]


def extract(
    sources: o.Sources,
    field: Field = [],  # noqa: B006 - Typer's way of saying "none given"
    schema: Schema = None,
    hd: o.Hd = None,
    max_pages: o.MaxPages = None,
    max_new_tokens: o.MaxNewTokens = None,
    system: o.System = None,
    pages: o.Pages = None,
    password: o.Password = None,
    model: o.Model = None,
    backend: o.Backend = None,
    base_url: o.BaseUrl = None,
    quant: o.Quant = None,
    device: o.Device = None,
    dtype: o.Dtype = None,
    concurrency: o.Concurrency = None,
    unordered: o.Unordered = False,
    request_timeout: o.RequestTimeout = None,
    prefix_cache_mb: o.PrefixCacheMb = None,
    hub_kernels: o.HubKernels = False,
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
    ocr: o.Ocr = None,
    lang: o.Lang = None,
    config_file: o.Config = None,
    debug: o.Debug = False,
) -> int:
    """Extract fields from each source as a JSON object, validated, with the page each came from.

    A field the document does not give is null; only a value of the wrong type is a validation failure.
    """
    from docvision.errors import UsageError
    from docvision.tasks.extract import ExtractTask, fields_schema, load_schema
    from docvision.tasks.routing import Budget

    if bool(field) == bool(schema):
        raise UsageError("give the fields with --field NAME[:TYPE] (repeatable) or --schema FILE, not both"
                         if field else "nothing to extract: add --field NAME[:TYPE] or --schema FILE")
    wanted = load_schema(schema) if schema else fields_schema(field)

    def task(chosen):
        return ExtractTask(schema=wanted, hd=chosen.for_task("hd", "extract"), budget=Budget(pages=chosen.max_pages),
                           max_new_tokens=chosen.for_task("max_new_tokens", "extract"), system=system)

    return runner.model_run(sources, task, locals(), json_out=json_out)
