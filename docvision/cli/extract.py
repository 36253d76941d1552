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
    max_context: o.MaxContext = None,
    prefix_cache_mb: o.PrefixCacheMb = None,
    hub_kernels: o.HubKernels = False,
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
    """Extract fields from each source as a JSON object, validated, with the page each came from.

    A field the document does not give is null; only a value of the wrong type is a validation failure.

    \b
    Examples:
      docvision extract invoice.pdf --field total:number --field due:date --json
      docvision extract invoices/*.pdf -f total:number --json | jq -r .data.total
      docvision extract contract.pdf --schema contract.schema.json --output fields.jsonl
    """
    given = dict(locals())

    def call(session, progress):
        return session.extract(sources, fields=field or None, schema=schema, system=system, unordered=unordered,
                               progress=progress, **runner.call_arguments(given))

    return runner.execute(call, given, json_out=json_out, task="extract")
