"""``docvision ask SOURCE... QUESTION``: a question about each source, over as many pages as it has.

Pages are routed by their text (BM25), the best ones shown at full planned resolution; when the
evidence spans more pages than one call takes, each chunk is asked for notes and a last call combines
them (docvision.tasks.multipage).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, List

import typer

from docvision.cli import options as o, runner

Arguments = Annotated[List[str], typer.Argument(
    metavar="SOURCE... QUESTION", help="Files, folders, globs, URLs, or - (paths from stdin); then the question.",
    show_default=False)]


def ask(
    args: Arguments,
    hd: o.Hd = None,
    max_pages: o.MaxPages = None,
    max_new_tokens: o.MaxNewTokens = None,
    system: o.System = None,
    raw: o.Raw = False,
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
    """Answer QUESTION about each SOURCE with a vision-language model, greedy and streamed.

    \b
    Examples:
      docvision ask report.pdf "which model wins MMBench?"
      docvision ask invoices/*.pdf "what is the total due?" --json
    """
    from docvision.cli import human
    from docvision.tasks.ask import AskTask
    from docvision.tasks.routing import Budget

    sources, question = split_question(args)
    streamer = None

    def task(chosen):
        nonlocal streamer
        # Answers stream to a terminal one source at a time; several in flight would interleave.
        if sys.stdout.isatty() and not json_out and chosen.concurrency == 1:
            streamer = human.Streamer()
        return AskTask(question, hd=chosen.for_task("hd", "ask"), budget=Budget(pages=chosen.max_pages),
                       max_new_tokens=chosen.for_task("max_new_tokens", "ask"), system=system, raw=raw,
                       show_selected=bool(pages), on_text=streamer.write if streamer else None,
                       announce=streamer.start if streamer else None)

    def emitter():  # built after the task, so it knows whether answers stream
        return human.emitter("ask", streamer.done) if streamer else human.emitter("ask")

    return runner.model_run(sources, task, locals(), json_out=json_out, human=emitter)


def split_question(args: list[str]) -> tuple[list[str], str]:
    """(sources, question) from ``SOURCE... QUESTION``, with a hint when they came the other way round."""
    from docvision.errors import UsageError
    from docvision.ingest.checks import is_url

    def exists(arg: str) -> bool:
        return arg == "-" or is_url(arg) or Path(arg).exists()

    if len(args) < 2:
        raise UsageError("give the sources, then the question: docvision ask SOURCE... QUESTION")
    *sources, question = args
    if not question.strip():
        raise UsageError("the question is empty")
    if exists(question) and not exists(sources[0]) and (" " in sources[0] or sources[0].endswith("?")):
        raise UsageError(f"the question goes last: docvision ask {question} {sources[0]!r}")
    return sources, " ".join(question.split())
