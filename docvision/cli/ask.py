"""``docvision ask SOURCE... QUESTION``: a question about each source, over as many pages as it has.

Pages are routed by their text (BM25), the best ones shown at full planned resolution; when the
evidence spans more pages than one call takes, each chunk is asked for notes and a last call combines
them (docvision.tasks.multipage). Batches, the render cache and --output/--resume work as for every
command (docvision.run.engine).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from docvision.cli import batchrun, common

QUANT_HELP = "auto (4-bit NF4 on CUDA, bf16 on CPU), 4bit, 8bit or none (bf16)."


def ask(
    sources: List[str] = typer.Argument(None, metavar="SOURCE",
                                        help="Files, folders, globs, URLs, or - to read paths from stdin."),
    question: str = typer.Argument(..., metavar="QUESTION", help="The question to answer (after the sources)."),
    model: Optional[str] = typer.Option(None, "--model", "-m",
                                        help="Model alias, hub id or local folder (default: DOCVISION_MODEL or 'default')."),
    hd: Optional[int] = typer.Option(None, "--hd", min=1, max=400, help="Resolution budget: at most N tiles per page "
                                     "(HD-N of InternLM-XComposer2-4KHD; default 25)."),
    max_pages: int = batchrun.MAX_PAGES_OPTION,
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", min=1, help="Most tokens the answer may have (default 512)."),
    quant: Optional[str] = typer.Option(None, "--quant", help=QUANT_HELP),
    device: Optional[str] = typer.Option(None, "--device", help="auto (CUDA when present), cpu or cuda."),
    backend: Optional[str] = common.BACKEND_OPTION,
    base_url: Optional[str] = common.BASE_URL_OPTION,
    concurrency: Optional[int] = common.CONCURRENCY_OPTION,
    unordered: bool = common.UNORDERED_OPTION,
    config_file: Optional[str] = common.CONFIG_OPTION,
    pages: Optional[str] = typer.Option(None, "--pages", help="Pages to consider, e.g. 2 or 1-3 (default: all, routed "
                                        "by relevance); all of them are shown when they fit --max-pages."),
    password: Optional[str] = common.PASSWORD_OPTION,
    output: Optional[Path] = batchrun.OUTPUT_OPTION,
    resume: bool = batchrun.RESUME_OPTION,
    json_out: bool = common.JSON_OPTION,
    no_timings: bool = batchrun.NO_TIMINGS_OPTION,
    no_cache: bool = batchrun.NO_CACHE_OPTION,
    recursive: bool = common.RECURSIVE_OPTION,
    max_image_pixels: int = common.MAX_PIXELS_OPTION,
    debug: bool = common.DEBUG_OPTION,
) -> int:
    """Answer QUESTION about each SOURCE with a vision-language model, greedy and streamed."""
    from docvision.document import IngestOptions
    from docvision.errors import UsageError
    from docvision.tasks.routing import Budget
    from docvision.tasks.ask import AskTask

    if not sources:  # one word given: the parser took it as the question
        raise UsageError("give the sources, then the question: docvision ask SOURCE... QUESTION")
    if not question.strip():
        raise UsageError("the question is empty")
    flags = {"model": model, "quant": quant, "device": device, "backend": backend, "base_url": base_url,
             "concurrency": concurrency, "hd": hd, "max_new_tokens": max_new_tokens}
    chosen = batchrun.settings(flags, config_file)
    # Answers are streamed to a terminal one source at a time; several in flight would interleave.
    streamer = batchrun.Streamer() if sys.stdout.isatty() and not json_out and chosen.concurrency == 1 else None
    task = AskTask(" ".join(question.split()), hd=chosen.hd or 25, budget=Budget(pages=max_pages),
                   max_new_tokens=chosen.max_new_tokens or 512, show_selected=bool(pages),
                   on_text=streamer.write if streamer else None, announce=streamer.start if streamer else None)
    return batchrun.execute(
        sources, task, flags=flags, config_file=config_file,
        ingest_options=IngestOptions(pages=pages, password=password, max_image_pixels=max_image_pixels),
        recursive=recursive, no_cache=no_cache, output=output, resume=resume, json_out=json_out,
        no_timings=no_timings, debug=debug, unordered=unordered,
        human=batchrun.human_emitter(streamer.done) if streamer else None,
    )
