"""``docvision ask SOURCE... QUESTION``: a question about each source, over as many pages as it has.

Pages are routed by their text (BM25), the best ones shown at full planned resolution; when the
evidence spans more pages than one call takes, each chunk is asked for notes and a last call combines
them (docvision.tasks.multipage).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

import docvision.cli.options as o
import docvision.cli.runner as runner

Arguments = Annotated[List[str], typer.Argument(
    metavar="SOURCE... QUESTION", help="Files, folders, globs, URLs, or - (paths from stdin); then the question "
    "(with -q or --questions every argument is a source).", show_default=False)]
Question = Annotated[List[str], typer.Option(
    "--question", "-q", help="A question; repeat for several (one record per source and question, the model "
    "loaded once, the pages' encoding reused).", show_default=False)]
Questions = Annotated[Optional[Path], typer.Option(
    "--questions", help="A file of questions, one per line.", show_default=False)]


def ask(
    args: Arguments,
    question: Question = [],  # noqa: B006 - Typer's way of saying "none given"
    questions: Questions = None,
    hd: o.Hd = None,
    max_pages: o.MaxPages = None,
    max_new_tokens: o.MaxNewTokens = None,
    system: o.System = None,
    raw: o.Raw = False,
    ground: o.Ground = False,
    evidence_out: o.EvidenceOut = None,
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
    """Answer QUESTION about each SOURCE with a vision-language model, greedy and streamed.

    \b
    Examples:
      docvision ask report.pdf "which model wins MMBench?"
      docvision ask invoices/*.pdf "what is the total?" --json
      docvision ask report.pdf -q "who wrote it?" -q "when?" --json
    """
    import docvision.cli.human as human

    given = dict(locals())

    sources, asked = split_questions(args, question, questions)
    several = len(asked) > 1
    streamer = None

    def call(session, progress):
        nonlocal streamer
        # Answers stream to a terminal one source at a time; several in flight would interleave.
        if sys.stdout.isatty() and not json_out and session.settings.concurrency == 1:
            streamer = human.Streamer(len(asked))
        return session.ask(sources, questions=asked, system=system, raw=raw, ground=ground,
                           evidence_out=evidence_out, on_text=streamer.write if streamer else None,
                           on_question=streamer.start if streamer else None, unordered=unordered,
                           progress=progress, **runner.call_arguments(given))

    def emitter(session, sources):  # made after the call, so it knows whether answers stream
        if streamer:
            return human.emitter("ask", streamer.done, several, sources)
        return human.emitter("ask", several=several, sources=sources)

    return runner.execute(call, given, json_out=json_out, human_emit=emitter)


def split_questions(args: list[str], flagged: list[str], path: Optional[Path]) -> tuple[list[str], list[str]]:
    """(sources, questions): ``SOURCE... QUESTION``, or every argument a source with -q / --questions; a
    hint when the question came first."""
    from docvision.errors import UsageError
    from docvision.ingest.checks import is_url

    def exists(arg: str) -> bool:
        return arg == "-" or is_url(arg) or Path(arg).exists()

    listed = list(flagged)
    if path is not None:
        try:
            listed += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read --questions {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if listed:
        sources = args
    elif len(args) < 2:
        raise UsageError("give the sources, then the question: docvision ask SOURCE... QUESTION")
    else:
        *sources, last = args
        listed = [last]
        if exists(last) and not exists(sources[0]) and (" " in sources[0] or sources[0].endswith("?")):
            raise UsageError(f"the question goes last: docvision ask {last} {sources[0]!r}")
        if exists(last):  # `ask page.html poster.png`: the question was forgotten, not named poster.png
            raise UsageError(f"the question is missing: {last} is a source; docvision ask SOURCE... QUESTION "
                             "(or -q QUESTION)")
    if not sources:
        raise UsageError("give the sources to ask about: docvision ask SOURCE... -q QUESTION")
    cleaned = [" ".join(q.split()) for q in listed]
    if not all(cleaned):
        raise UsageError("a question is empty")
    return sources, list(dict.fromkeys(cleaned))
