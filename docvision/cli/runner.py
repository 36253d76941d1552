"""What every source command does with its parsed options: settle the settings, build the run's Plan,
execute it with the right emitter, return the exit status.

In: the flags a command received (a dict of setting names, None where not given) and its other options.
Out: the ExitStatus of ``docvision.run.batch.execute``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Callable

import docvision.cli.console as console
import docvision.cli.human as human
import docvision.cli.options as options
from docvision.errors import UsageError


def settings(flags: dict[str, Any], config_file: str | None):
    """Effective settings: flags over DOCVISION_* variables over the config file over defaults."""
    from docvision.config import resolve

    return resolve({k: v for k, v in flags.items() if v is not None and v is not False}, config=config_file)


def ingest_options(chosen, pages: str | None, password: str | None):
    """The IngestOptions every ingestor reads, from the settings and the page range."""
    from docvision.document import IngestOptions

    import docvision.ingest.ocr as ocr

    from docvision.ingest.web.site import check_root

    check_pages(pages)
    check_root(chosen.local_root)
    mode = chosen.ocr
    if mode != "never":
        problem = ocr.lang_problem(chosen.lang)
        asked = chosen.origins["ocr"] != "default" or chosen.origins["lang"] != "default"
        if problem and asked:
            raise UsageError(f"--lang {chosen.lang}: {problem}")
        if problem:  # OCR was not asked for by name: say once that scans get no words, and go on
            console.say_warning(f"{problem}; pages without a text layer get no words (--ocr never hides this)")
            mode = "never"
    return IngestOptions(pages=pages, password=password, max_image_pixels=chosen.max_image_pixels,
                         timeout=chosen.timeout, viewport_width=chosen.viewport_width,
                         device_scale_factor=chosen.scale, browser=chosen.browser, offline=chosen.offline,
                         local_pages_online=chosen.local_pages_online, local_root=chosen.local_root, ocr=mode,
                         lang=chosen.lang)


def check_pages(spec: str | None) -> None:
    """Refuse a malformed --pages once, before any source runs (not once per file of a batch).

    Whether the pages exist depends on each document, so that check stays with the ingestors.
    """
    parts = [part for part in (spec or "").replace(" ", "").split(",") if part]
    if spec is not None and not parts:
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


def engine_settings(chosen, unordered: bool, allow_partial: bool, debug: bool):
    """How the engine runs; --concurrency only means something for a model server."""
    from docvision.run.engine import Settings

    concurrency = chosen.concurrency
    if concurrency > 1 and chosen.backend != "openai":
        console.say_warning("--concurrency is for --backend openai (a model server); a local model answers "
                            "one at a time")
        concurrency = 1
    return Settings(concurrency=concurrency, ordered=not unordered, partial_ok=allow_partial,
                    debug=console.show_traceback if debug else None)


def timings_wanted(flag: bool) -> bool:
    """Timings are on unless --no-timings or DOCVISION_NO_TIMINGS=1 (for byte-identical output)."""
    return not flag and os.environ.get("DOCVISION_NO_TIMINGS", "").strip().lower() not in ("1", "true", "yes", "on")


def execute(plan, json_out: bool, human_emit: Callable[..., None] | None = None) -> int:
    """Run the plan; records as JSON Lines or for people; warnings and errors on stderr."""
    from docvision.run.batch import execute as run_plan

    from docvision.run.status import PipeClosed

    emit = console.json_emitter() if json_out else (human_emit or human.emitter(plan.task.name))
    try:
        return run_plan(plan, emit, console.say_warning)
    except BrokenPipeError:
        raise PipeClosed() from None


def output_path(output: Path | None) -> Path | None:
    """--output as given ('-' is not a file: records already go to stdout)."""
    if output is not None and str(output) == "-":
        raise UsageError("--output - is not needed: records go to stdout already (use --json)")
    return output


MODEL_FLAGS = options.MODEL_SETTINGS + options.INGEST_SETTINGS


def model_run(sources: list[str], make_task: Callable[[Any], Any], given: dict[str, Any], *, json_out: bool,
              human: Callable[[], Callable[..., None]] | None = None) -> int:
    """The shared tail of ask, summarize and extract: settings, plan, run.

    ``given`` holds the command's parameters by name (its locals); ``make_task(settings)`` builds the Task;
    ``human()``, called after it, the emitter for people (default: the task's own).
    """
    from docvision.run.batch import Plan

    chosen = settings({k: given.get(k) for k in MODEL_FLAGS}, given.get("config_file"))
    ingest = ingest_options(chosen, given.get("pages"), given.get("password"))
    plan = Plan(sources, make_task(chosen), ingest, recursive=given["recursive"],
                output=output_path(given["output"]), resume=given["resume"], cache=not given["no_cache"],
                timings=timings_wanted(given["no_timings"]), backend=chosen.backend_settings(),
                engine=engine_settings(chosen, given["unordered"], given["allow_partial"], given["debug"]))
    return execute(plan, json_out, human() if human is not None else None)
