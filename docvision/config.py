"""Settings in one place: command-line flags, DOCVISION_* environment variables, a TOML file, defaults.

In: the flags a command received (None where the user gave none), the environment, and an optional
config file. Out: a Settings object holding each effective value and where it came from
("flag", "env", "file" or "default"). Flags win over the environment, which wins over the file,
which wins over the defaults. ``docvision config`` prints the result.

The file is TOML, either top-level keys or a ``[docvision]`` table::

    backend = "openai"
    base_url = "http://gpu-box:8000/v1"
    model = "Qwen/Qwen3-VL-4B-Instruct"
    concurrency = 8

It is read from ``--config FILE``, else DOCVISION_CONFIG, else ``config.toml`` in the user config
folder (platformdirs: ~/.config/docvision on Linux) when that exists.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from docvision.errors import UsageError

ORIGINS = ("flag", "env", "file", "default")


@dataclass(frozen=True)
class Spec:
    """One setting: its type, default, allowed values and help text."""

    name: str
    kind: type  # str, int or float
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    secret: bool = False  # never printed (API keys)
    env: tuple[str, ...] = ()  # extra environment variables read after DOCVISION_<NAME>

    @property
    def env_names(self) -> tuple[str, ...]:
        return (f"DOCVISION_{self.name.upper()}", *self.env)


SPECS: dict[str, Spec] = {s.name: s for s in (
    Spec("backend", str, "transformers", "Model backend: a local model or an OpenAI-compatible server.",
         choices=("transformers", "openai")),
    Spec("model", str, None, "Model alias, hub id or local folder (transformers); the served model name "
         "(openai; default: the one model the server lists)."),
    Spec("base_url", str, "http://127.0.0.1:8000/v1", "URL of the OpenAI-compatible server (openai backend)."),
    Spec("api_key", str, None, "API key sent to the server as a Bearer token.", secret=True,
         env=("OPENAI_API_KEY",)),
    Spec("hd", int, None, "Resolution budget HD-N: at most N tiles per page (default: the task's).", minimum=1),
    Spec("quant", str, "auto", "Quantization of a local model.", choices=("auto", "4bit", "8bit", "none")),
    Spec("device", str, "auto", "Device of a local model.", choices=("auto", "cpu", "cuda")),
    Spec("concurrency", int, 1, "Requests in flight at once in a batch (openai backend).", minimum=1),
    Spec("timeout", float, 60.0, "Seconds allowed for each external step; a model server silent this long "
         "(not a byte) fails the request.", minimum=0.1),
    Spec("connect_timeout", float, 10.0, "Seconds to wait for a connection to the server.", minimum=0.1),
    Spec("retries", int, 6, "Retries of a request on 429, 5xx and lost connections (with backoff).",
         minimum=0),
    Spec("max_new_tokens", int, None, "Most tokens the model may write per answer (default: the task's).",
         minimum=1),
)}


def _parse(spec: Spec, raw: Any, where: str) -> Any:
    """Turn a raw flag/env/file value into the setting's type, or raise a UsageError naming ``where``."""
    if raw is None:
        return None
    try:
        if spec.kind is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            value: Any = int(raw)
        elif spec.kind is float:
            if isinstance(raw, bool):
                raise ValueError
            value = float(raw)
        else:
            if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
                raise ValueError
            value = str(raw).strip()
    except (TypeError, ValueError):
        raise UsageError(f"{where}: {spec.name} must be {'a number' if spec.kind is not str else 'text'}, "
                         f"got {raw!r}") from None
    if spec.choices and value not in spec.choices:
        raise UsageError(f"{where}: {spec.name} must be one of {', '.join(spec.choices)}, got {value!r}")
    if spec.minimum is not None and value < spec.minimum:
        raise UsageError(f"{where}: {spec.name} must be at least {spec.minimum:g}, got {value!r}")
    return value


def default_config_path() -> Path:
    """Where the config file lives when neither --config nor DOCVISION_CONFIG names one."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("docvision")) / "config.toml"


def config_path(flag: str | None, environ: Mapping[str, str]) -> tuple[Path | None, str]:
    """The config file to read and how it was chosen; (None, ...) when there is none."""
    if flag:
        return Path(flag), "flag"
    if environ.get("DOCVISION_CONFIG"):
        return Path(environ["DOCVISION_CONFIG"]), "env"
    path = default_config_path()
    return (path, "default") if path.is_file() else (None, "default")


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

    def backend_kwargs(self) -> dict[str, Any]:
        """What ``load_backend(settings.backend, **kwargs)`` takes: the model and connection settings."""
        keys = ("model", "device", "quant", "base_url", "api_key", "timeout", "connect_timeout", "retries")
        return {k: self.values[k] for k in keys}

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
    path, _ = config_path(config, environ)
    from_file = read_file(path) if path is not None else {}
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    sources: dict[str, str] = {}
    for name, spec in SPECS.items():
        layers: list[tuple[str, str, Callable[[], Any]]] = [("flag", "--" + name.replace("_", "-"),
                                                             lambda: flags.get(name))]
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
