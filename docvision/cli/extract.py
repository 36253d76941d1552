"""``docvision extract``: fields as validated JSON, e.g. ``--field total:number --json | jq -r .data.total``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from docvision.cli import batchrun, common


def extract(
    sources: List[str] = typer.Argument(..., help="Files, folders, globs, URLs, or - to read paths from stdin."),
    field: List[str] = typer.Option([], "--field", "-f", help="NAME[:TYPE], TYPE one of string, number, date, "
                                    "bool, list (default string). Repeat for more fields."),
    schema: Optional[Path] = typer.Option(None, "--schema", help="A JSON Schema file (an object with properties)."),
    hd: Optional[int] = typer.Option(None, "--hd", min=1, max=400, help="Resolution budget HD-N per page (default 25)."),
    max_pages: int = batchrun.MAX_PAGES_OPTION,
    pages: Optional[str] = common.PAGES_OPTION,
    password: Optional[str] = common.PASSWORD_OPTION,
    model: Optional[str] = batchrun.MODEL_OPTION,
    quant: Optional[str] = batchrun.QUANT_OPTION,
    device: Optional[str] = batchrun.DEVICE_OPTION,
    backend: Optional[str] = common.BACKEND_OPTION,
    base_url: Optional[str] = common.BASE_URL_OPTION,
    concurrency: Optional[int] = common.CONCURRENCY_OPTION,
    unordered: bool = common.UNORDERED_OPTION,
    config_file: Optional[str] = common.CONFIG_OPTION,
    max_new_tokens: Optional[int] = batchrun.MAX_NEW_TOKENS_OPTION,
    output: Optional[Path] = batchrun.OUTPUT_OPTION,
    resume: bool = batchrun.RESUME_OPTION,
    json_out: bool = common.JSON_OPTION,
    no_timings: bool = batchrun.NO_TIMINGS_OPTION,
    no_cache: bool = batchrun.NO_CACHE_OPTION,
    recursive: bool = common.RECURSIVE_OPTION,
    max_image_pixels: int = common.MAX_PIXELS_OPTION,
    debug: bool = common.DEBUG_OPTION,
) -> int:
    """Extract fields from each source as a JSON object, validated, with the page each came from."""
    from docvision.document import IngestOptions
    from docvision.errors import UsageError
    from docvision.tasks.routing import Budget
    from docvision.tasks.extract import ExtractTask, fields_schema, load_schema

    if bool(field) == bool(schema):
        raise UsageError("give the fields with --field NAME[:TYPE] (repeatable) or --schema FILE, not both"
                         if field else "nothing to extract: add --field NAME[:TYPE] or --schema FILE")
    flags = {"model": model, "quant": quant, "device": device, "backend": backend, "base_url": base_url,
             "concurrency": concurrency, "hd": hd, "max_new_tokens": max_new_tokens}
    settings = batchrun.settings(flags, config_file)
    task = ExtractTask(schema=load_schema(schema) if schema else fields_schema(field), hd=settings.hd or 25,
                       budget=Budget(pages=max_pages), max_new_tokens=settings.max_new_tokens or 512)
    return batchrun.execute(
        sources, task, flags=flags, config_file=config_file,
        ingest_options=IngestOptions(pages=pages, password=password, max_image_pixels=max_image_pixels),
        recursive=recursive, no_cache=no_cache, output=output, resume=resume, json_out=json_out,
        no_timings=no_timings, debug=debug, unordered=unordered,
    )
