"""``docvision summarize``: a summary per source, page by page for long documents, then combined."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from docvision.cli import batchrun, common


def summarize(
    sources: List[str] = typer.Argument(..., help="Files, folders, globs, URLs, or - to read paths from stdin."),
    hd: Optional[int] = typer.Option(None, "--hd", min=1, max=400, help="Resolution budget HD-N per page (default 16)."),
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
    """Summarize each source: page by page for long documents, then combined into one summary."""
    from docvision.document import IngestOptions
    from docvision.tasks.routing import Budget
    from docvision.tasks.summarize import SummarizeTask

    flags = {"model": model, "quant": quant, "device": device, "backend": backend, "base_url": base_url,
             "concurrency": concurrency, "hd": hd, "max_new_tokens": max_new_tokens}
    settings = batchrun.settings(flags, config_file)
    task = SummarizeTask(hd=settings.hd or 16, budget=Budget(pages=max_pages),
                         max_new_tokens=settings.max_new_tokens or 384)
    return batchrun.execute(
        sources, task, flags=flags, config_file=config_file,
        ingest_options=IngestOptions(pages=pages, password=password, max_image_pixels=max_image_pixels),
        recursive=recursive, no_cache=no_cache, output=output, resume=resume, json_out=json_out,
        no_timings=no_timings, debug=debug, unordered=unordered,
    )
