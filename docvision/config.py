"""Settings in one place: every setting's type, default, bounds and help, and how flags, DOCVISION_*
variables and a TOML file combine.

In: the flags a command received (None where the user gave none), the environment, and an optional
config file. Out: a Settings object holding each effective value and where it came from ("flag", "env",
"file" or "default"). Flags win over the environment, which wins over the file, which wins over the
defaults; every origin is checked against the same bounds (``--hd 1000``, ``DOCVISION_HD=1000`` and
``hd = 1000`` in the file are the same error). ``docvision config`` prints the result.

The file is TOML, either top-level keys or a ``[docvision]`` table::

    backend = "openai"
    base_url = "http://gpu-box:8000/v1"
    model = "Qwen/Qwen3-VL-4B-Instruct"
    concurrency = 8

It is read from ``--config FILE``, else DOCVISION_CONFIG, else ``config.toml`` in the user config
folder (platformdirs: ~/.config/docvision on Linux) when that exists.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from docvision.errors import UsageError

ORIGINS = ("flag", "env", "file", "default")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class Spec:
    """One setting: its type, default, allowed values or bounds, and help text."""

    name: str
    kind: type  # str, int, float or bool
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    secret: bool = False  # never printed (API keys, passwords)
    env: tuple[str, ...] = ()  # extra environment variables read after DOCVISION_<NAME>

    @property
    def env_names(self) -> tuple[str, ...]:
        return (f"DOCVISION_{self.name.upper()}", *self.env)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


SPECS: dict[str, Spec] = {s.name: s for s in (
    # -- the model ------------------------------------------------------------------------------------
    Spec("backend", str, "transformers", "transformers (a local model) or openai (an OpenAI-compatible server: "
         "vLLM, SGLang, Ollama, transformers serve).", choices=("transformers", "openai")),
    Spec("model", str, None, "Model alias, hub id or local folder; with --backend openai the served model "
         "name (default: the one model the server lists)."),
    Spec("quant", str, "auto", "Quantization of a local model: auto (4-bit NF4 on CUDA, none on CPU), "
         "4bit, 8bit or none.", choices=("auto", "4bit", "8bit", "none")),
    Spec("device", str, "auto", "Device of a local model: auto (CUDA when present), cpu or cuda.",
         choices=("auto", "cpu", "cuda")),
    Spec("dtype", str, "auto", "Weights and compute of an unquantized local model: auto (bfloat16), "
         "bfloat16, float16 or float32.", choices=("auto", "bfloat16", "float16", "float32")),
    Spec("base_url", str, "http://127.0.0.1:8000/v1", "URL of the OpenAI-compatible server (--backend openai)."),
    Spec("api_key", str, None, "API key sent to the server as a Bearer token.", secret=True,
         env=("OPENAI_API_KEY",)),
    Spec("request_timeout", float, 60.0, "Seconds a model server may stay silent (not a byte) before a "
         "request fails.", minimum=0.1, maximum=86400),
    Spec("connect_timeout", float, 10.0, "Seconds to wait for a connection to the model server.",
         minimum=0.1, maximum=3600),
    Spec("retries", int, 6, "Retries of a request on 429, 5xx and lost connections (with backoff).",
         minimum=0, maximum=100),
    Spec("workers", int, None, "Sources rendered at once, each in a process of its own with its own PDF worker, "
         "Chromium and LibreOffice (default: the number of cores; 1: one render thread in docvision itself).",
         minimum=1, maximum=256),
    Spec("ray", bool, False, "Run on a Ray cluster (docs/cluster.md): sources rendered in CPU tasks across it, "
         "answered by the model server or by the local model in actors; needs pip install 'docvision[ray]'."),
    Spec("ray_address", str, None, "The Ray cluster to use with --ray (default: RAY_ADDRESS, else a Ray started "
         "on this machine for the run).", env=("RAY_ADDRESS",)),
    Spec("ray_gpus_per_actor", float, 1.0, "GPUs of each model actor with --ray and a local model (0: on CPUs).",
         minimum=0, maximum=64),
    Spec("max_context", int, None, "Tokens one call to the model server may hold, prompt and answer, where the "
         "server does not list its context (vLLM and SGLang do; Ollama does not): pages are grouped into calls "
         "that fit.", minimum=1024, maximum=10_000_000),
    Spec("concurrency", int, 1, "Model requests in flight at once (--backend openai).", minimum=1, maximum=256),
    Spec("prefix_cache_mb", int, 2048, "Memory a local model may keep for the encodings of pages it was shown, "
         "so the next question about them starts at once (0: off).", minimum=0, maximum=1_000_000),
    Spec("hub_kernels", bool, False, "Let transformers replace a local model's layers on the GPU with kernels "
         "it downloads from the Hugging Face hub and runs (off: the model's own PyTorch code, nothing fetched)."),
    # -- what the model is shown ----------------------------------------------------------------------
    Spec("hd", int, None, "Resolution budget HD-N: at most N tiles per page (InternLM-XComposer2-4KHD's "
         "dial).", minimum=1, maximum=400),
    Spec("max_pages", int, 4, "Pages shown to the model per call.", minimum=1, maximum=64),
    Spec("max_new_tokens", int, None, "Most tokens the model writes per call.", minimum=1, maximum=32768),
    Spec("tile", int, 336, "Tile size in pixels when no --model says it (336 as in 4KHD).",
         minimum=28, maximum=2048),
    # -- reading sources ------------------------------------------------------------------------------
    Spec("timeout", float, 60.0, "Seconds allowed for each step of reading a source (loading a web page, "
         "a conversion, a download).", minimum=0.1, maximum=86400),
    Spec("max_image_pixels", int, 250_000_000, "Refuse images larger than this many pixels "
         "(decompression-bomb guard).", minimum=1, maximum=10**12),
    Spec("viewport_width", int, 1280, "Web pages: browser width in CSS px.", minimum=200, maximum=8192),
    Spec("scale", float, 2.0, "Web pages: device scale factor (2 draws text as on a retina screen).",
         minimum=0.25, maximum=8.0),
    Spec("browser", str, None, "Web pages: the Chromium executable to use.", env=("DOCVISION_CHROMIUM",)),
    Spec("offline", bool, False, "No network for any source (a URL fails; a page's remote resources are "
         "not loaded)."),
    Spec("local_pages_online", bool, False, "Let a local .html file load from the network (its remote styles, "
         "fonts, images); never with --offline."),
    Spec("local_root", str, None, "The site of local .html pages inside this folder: their stylesheets, fonts, "
         "images and scripts may come from anywhere in it (default: up to 5 folders above the page, or the "
         "folder walked; never a home folder)."),
    Spec("ocr", str, "auto", "Read words from the pixels of pages without a text layer (auto), of every page "
         "(always), or never.", choices=("auto", "always", "never")),
    Spec("lang", str, "eng", "OCR languages: tesseract codes joined by + (eng, deu, eng+fra)."),
    # -- what records hold ----------------------------------------------------------------------------
    Spec("no_timings", bool, False, "Leave timings out of records, so JSON Lines are byte-identical across "
         "runs of the same inputs."),
)}

# Settings whose default depends on the command (one place for them too).
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "hd": {"render": 25, "ask": 25, "extract": 25, "chat": 25, "summarize": 16},
    "max_new_tokens": {"ask": 512, "extract": 512, "chat": 512, "summarize": 384},
}


def default_text(name: str, task: str | None = None) -> str:
    """How --help states a setting's default (``task``: that command's own, without the others')."""
    if name in TASK_DEFAULTS and task is not None:
        return f"default: {TASK_DEFAULTS[name][task]}"
    if name in TASK_DEFAULTS:
        by_task = {k: v for k, v in TASK_DEFAULTS[name].items() if k not in ("render", "chat")}
        common = max(set(by_task.values()), key=list(by_task.values()).count)
        others = ", ".join(f"{v} for {k}" for k, v in by_task.items() if v != common)
        return f"default: {common}" + (f" ({others})" if others else "")
    default = SPECS[name].default
    return "" if default is None or default is False else f"default: {default:g}" if isinstance(
        default, float) else f"default: {default}"


def _parse(spec: Spec, raw: Any, where: str) -> Any:
    """Turn a raw flag/env/file value into the setting's type, or raise a UsageError naming ``where``."""
    if raw is None:
        return None
    value = _typed(spec, raw, where)
    if spec.choices and value not in spec.choices:
        raise UsageError(f"{where}: {spec.name} must be one of {', '.join(spec.choices)}, got {value!r}")
    if spec.minimum is not None and value < spec.minimum:
        raise UsageError(f"{where}: {spec.name} must be at least {spec.minimum:g}, got {value!r}")
    if spec.maximum is not None and value > spec.maximum:
        raise UsageError(f"{where}: {spec.name} must be at most {spec.maximum:g}, got {value!r}")
    return value


def _typed(spec: Spec, raw: Any, where: str) -> Any:
    what = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}[spec.kind]
    bad = UsageError(f"{where}: {spec.name} must be {what}, got {raw!r}")
    if spec.kind is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in _TRUE + _FALSE:
            return raw.strip().lower() in _TRUE
        raise bad
    if isinstance(raw, bool):
        raise bad
    try:
        if spec.kind is int:
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            return int(raw)
        if spec.kind is float:
            value = float(raw)
            if not math.isfinite(value):  # nan passes every comparison and inf every minimum
                raise ValueError
            return value
    except (TypeError, ValueError, OverflowError):
        raise bad from None
    if not isinstance(raw, (str, int, float)):
        raise bad
    return str(raw).strip()


def default_config_path() -> Path:
    """Where the config file lives when neither --config nor DOCVISION_CONFIG names one."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("docvision")) / "config.toml"


def config_path(flag: str | None, environ: Mapping[str, str]) -> Path | None:
    """The config file to read, or None when there is none."""
    if flag:
        return Path(flag)
    if environ.get("DOCVISION_CONFIG"):
        return Path(environ["DOCVISION_CONFIG"])
    path = default_config_path()
    return path if path.is_file() else None


def read_file(path: Path) -> dict[str, Any]:
    """The settings in a TOML file (top level or a [docvision] table); unknown keys are an error."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist: create it or fix --config / DOCVISION_CONFIG") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"config file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None
    table = data.get("docvision", data)
    if not isinstance(table, dict):
        raise UsageError(f"config file {path}: [docvision] must be a table")
    unknown = sorted(k for k in table if k not in SPECS and k != "docvision")
    if unknown:
        raise UsageError(f"config file {path}: unknown setting {', '.join(unknown)} "
                         f"(known: {', '.join(SPECS)})")
    return {k: v for k, v in table.items() if k in SPECS}


@dataclass(frozen=True)
class Settings:
    """Effective settings: ``values[name]`` and ``origins[name]`` (flag, env, file or default)."""

    values: dict[str, Any]
    origins: dict[str, str]
    sources: dict[str, str]  # where a value came from in detail: "--hd", "DOCVISION_HD", a file path
    config_file: str | None = None

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def for_task(self, name: str, task: str) -> Any:
        """The setting's value, or the command's own default where the setting is unset."""
        value = self.values[name]
        return TASK_DEFAULTS[name][task] if value is None and name in TASK_DEFAULTS else value

    def backend_settings(self, task: str | None = None):
        """The typed settings of the chosen backend (docvision.models); ``task`` names the command whose
        HD-N a server is checked at (without it: --hd, else the smallest default)."""
        from docvision.models import LocalSettings, ServerSettings

        v = self.values
        if v["backend"] == "openai":
            hd = self.for_task("hd", task) if task else v["hd"] or min(TASK_DEFAULTS["hd"].values())
            return ServerSettings(model=v["model"], base_url=v["base_url"], api_key=v["api_key"],
                                  request_timeout=v["request_timeout"], connect_timeout=v["connect_timeout"],
                                  retries=v["retries"], max_context=v["max_context"], hd=hd)
        return LocalSettings(model=v["model"], device=v["device"], quant=v["quant"], dtype=v["dtype"],
                             prefix_cache_mb=v["prefix_cache_mb"], hub_kernels=v["hub_kernels"])

    def rows(self) -> list[dict[str, Any]]:
        """One row per setting for ``docvision config``; secrets are shown as set/unset only."""
        rows = []
        for name, spec in SPECS.items():
            value = self.values[name]
            if spec.secret and value is not None:
                value = "(set)"
            rows.append({"name": name, "value": value, "origin": self.origins[name],
                         "from": self.sources[name], "help": spec.help})
        return rows


def resolve(
    flags: Mapping[str, Any] | None = None,
    *,
    config: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Layer flags over DOCVISION_* variables over the config file over defaults.

    ``flags`` maps setting names to what the command line gave; None means "not given".
    """
    environ = os.environ if environ is None else environ
    flags = dict(flags or {})
    unknown = sorted(set(flags) - set(SPECS))
    if unknown:
        raise ValueError(f"not settings: {unknown}")  # a programming error, not a user's
    path = config_path(config, environ)
    from_file = read_file(path) if path is not None else {}
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    sources: dict[str, str] = {}
    for name, spec in SPECS.items():
        layers: list[tuple[str, str, Callable[[], Any]]] = [("flag", spec.flag, lambda: flags.get(name))]
        layers += [("env", var, lambda var=var: environ.get(var) or None) for var in spec.env_names]
        layers += [("file", str(path), lambda: from_file.get(name))]
        for origin, where, get in layers:
            raw = get()
            if raw is not None:
                values[name] = _parse(spec, raw, where)
                origins[name], sources[name] = origin, where
                break
        else:
            values[name], origins[name], sources[name] = spec.default, "default", "default"
    return Settings(values, origins, sources, str(path) if path is not None else None)
