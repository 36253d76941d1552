"""Every command-line option, declared once (Typer ``Annotated`` aliases), with its help and default.

Settings that also come from DOCVISION_* variables and the config file (``docvision.config.SPECS``)
default to None here, meaning "not given", so the environment and the file can speak; their help text
and bounds come from SPECS, the one place that holds defaults. Short flags are the same on every
command: -o --output, -m --model, -p --pages, -r --recursive, -f --field, -q --question.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from docvision.config import SPECS, default_text


def _setting(name: str, *flags: str, task: str | None = None, **extra) -> typer.models.OptionInfo:
    """An option backed by a setting: default None ("not given"), help with its default (``task``: the
    command's own, for settings whose default depends on it) and variable."""
    spec = SPECS[name]
    notes = [note for note in (default_text(name, task), f"env {spec.env_names[0]}") if note]
    return typer.Option(*(flags or (spec.flag,)), help=f"{spec.help} [{'; '.join(notes)}]",
                        show_default=False, **extra)


# -- sources and where records go --------------------------------------------------------------------
Sources = Annotated[List[str], typer.Argument(
    metavar="SOURCE", help="Files, folders, globs, URLs, or - to read paths from stdin.", show_default=False)]
Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="Look into sub-folders of folders given.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object per source per line (JSON Lines) "
                                    "on stdout, nothing else (docs/records.md).")]
Output = Annotated[Optional[Path], typer.Option(
    "--output", "-o", help="Also append records as JSON Lines to this file (locked while the run writes).",
    show_default=False)]
OutputDir = Annotated[Optional[Path], typer.Option(
    "--output-dir", help="Write records as JSON Lines shards (part-00000.jsonl, ...) into this folder instead of "
    "one --output file, for runs too large for one file (locked while the run writes).", show_default=False)]
Resume = Annotated[bool, typer.Option("--resume", help="Skip sources already done (status ok) in --output or "
                                      "--output-dir.")]
NoTimings = Annotated[bool, typer.Option(
    "--no-timings", help="Leave timings out of records so JSON Lines are byte-identical across runs "
    "(or DOCVISION_NO_TIMINGS=1).")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the render cache.")]
AllowPartial = Annotated[bool, typer.Option(
    "--allow-partial", help="Accept documents with damaged pages as ok (what survived is read); without it "
    "such a source fails with its damaged pages named.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")]
Config = Annotated[Optional[str], typer.Option(
    "--config", help="Settings file (TOML); default: DOCVISION_CONFIG, else config.toml in the user config "
    "folder (see: docvision config).", show_default=False)]

# -- reading sources ------------------------------------------------------------------------------------
Pages = Annotated[Optional[str], typer.Option(
    "--pages", "-p", help="Pages to read, e.g. 1-3,7 or 10- (default: all).", show_default=False)]
Password = Annotated[Optional[str], typer.Option(
    "--password", envvar="DOCVISION_PASSWORD", help="Password of an encrypted PDF.",
    show_default=False)]
MaxImagePixels = Annotated[Optional[int], _setting("max_image_pixels")]
Timeout = Annotated[Optional[float], _setting("timeout")]
Browser = Annotated[Optional[str], _setting("browser")]
ViewportWidth = Annotated[Optional[int], _setting("viewport_width")]
Scale = Annotated[Optional[float], _setting("scale")]
Offline = Annotated[bool, typer.Option(
    "--offline", help=SPECS["offline"].help + " Local files never reach the network (docs/security.md). "
    "[env DOCVISION_OFFLINE]")]

LocalPagesOnline = Annotated[bool, typer.Option(
    "--local-pages-online", help=SPECS["local_pages_online"].help + " [env DOCVISION_LOCAL_PAGES_ONLINE]")]
LocalRoot = Annotated[Optional[str], _setting("local_root", metavar="DIR")]
Ocr = Annotated[Optional[str], _setting("ocr")]
Lang = Annotated[Optional[str], _setting("lang")]

# -- what the model is shown ------------------------------------------------------------------------------
Hd = Annotated[Optional[int], _setting("hd", task="ask")]  # ask, extract and chat share their defaults
RenderHd = Annotated[Optional[int], _setting("hd", task="render")]
SummarizeHd = Annotated[Optional[int], _setting("hd", task="summarize")]
Tile = Annotated[Optional[int], _setting("tile")]
MaxPages = Annotated[Optional[int], _setting("max_pages")]
MaxNewTokens = Annotated[Optional[int], _setting("max_new_tokens", task="ask")]
SummarizeMaxNewTokens = Annotated[Optional[int], _setting("max_new_tokens", task="summarize")]

# -- the model ---------------------------------------------------------------------------------------------
Model = Annotated[Optional[str], _setting("model", "--model", "-m")]
Backend = Annotated[Optional[str], _setting("backend")]
BaseUrl = Annotated[Optional[str], _setting("base_url")]
Quant = Annotated[Optional[str], _setting("quant")]
Device = Annotated[Optional[str], _setting("device")]
Dtype = Annotated[Optional[str], _setting("dtype")]
Concurrency = Annotated[Optional[int], _setting("concurrency")]

# -- where the work runs ------------------------------------------------------------------------------------
Workers = Annotated[Optional[int], _setting("workers")]
Ray = Annotated[bool, typer.Option("--ray", help=SPECS["ray"].help + " [env DOCVISION_RAY]")]
RayAddress = Annotated[Optional[str], _setting("ray_address")]
RayGpusPerActor = Annotated[Optional[float], _setting("ray_gpus_per_actor")]
PrefixCacheMb = Annotated[Optional[int], _setting("prefix_cache_mb")]
HubKernels = Annotated[bool, typer.Option(
    "--hub-kernels", help=SPECS["hub_kernels"].help + " See docs/gpu.md. [env DOCVISION_HUB_KERNELS]")]
RequestTimeout = Annotated[Optional[float], _setting("request_timeout")]
MaxContext = Annotated[Optional[int], _setting("max_context")]
Unordered = Annotated[bool, typer.Option(
    "--unordered", help="With --concurrency: write records as they complete instead of in input order.")]
System = Annotated[Optional[str], typer.Option(
    "--system", help="Replace the model's system prompt (its meta instruction) with this text.",
    show_default=False)]
Raw = Annotated[bool, typer.Option(
    "--raw", help="Send the question verbatim, with no task wording around it (to reproduce a benchmark's "
    "own prompts); pages are still routed and shown.")]

Ground = Annotated[bool, typer.Option(
    "--ground", help="Ask the model for the region it read the answer from (Qwen2.5-VL, Qwen3-VL); the record's "
    "evidence gets it in canvas and source pixels, with the words found there.")]
EvidenceOut = Annotated[Optional[Path], typer.Option(
    "--evidence-out", help="Write pictures of the evidence here: per answer the page with its regions boxed "
    "and a crop of each region (one sub-folder per source).", show_default=False)]

# The settings a command may pass on: the names of docvision.config.SPECS it declares.
INGEST_SETTINGS = ("timeout", "max_image_pixels", "viewport_width", "scale", "browser", "offline",
                   "local_pages_online", "local_root", "ocr", "lang")
RUN_SETTINGS = ("workers", "ray", "ray_address", "ray_gpus_per_actor")
MODEL_SETTINGS = ("model", "backend", "base_url", "quant", "device", "dtype", "concurrency", "request_timeout",
                  "prefix_cache_mb", "hub_kernels", "hd", "max_pages", "max_new_tokens", "max_context")
