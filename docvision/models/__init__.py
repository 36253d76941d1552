"""Models: the registry of model names, the family adapters, and the backends that run them.

One small interface (``base.Backend.generate``: page views and a prompt in, text out) and two
implementations, resolved lazily from ``BACKENDS``: ``transformers`` runs a local image-text-to-text
model (4-bit on CUDA), ``openai`` drives any OpenAI-compatible server (vLLM, SGLang, Ollama,
``transformers serve``). Each backend takes its own typed settings, so a misspelt setting is an error.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass

from docvision.models.base import Backend, Generation, PageView

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"


@dataclass(frozen=True)
class LocalSettings:
    """A model run in this process (``--backend transformers``)."""

    model: str | None = None  # alias, hub id or folder; None: DOCVISION_MODEL, else the default alias
    device: str = "auto"  # auto | cpu | cuda
    quant: str = "auto"  # auto | 4bit | 8bit | none
    dtype: str = "auto"  # auto | bfloat16 | float16 | float32 (unquantized weights and compute)
    prefix_cache_mb: int = 2048  # memory for reused page encodings (docs/prefix.md); 0 = off
    hub_kernels: bool = False  # let transformers swap in kernels downloaded from the hub (docs/gpu.md)


@dataclass(frozen=True)
class ServerSettings:
    """An OpenAI-compatible server (``--backend openai``)."""

    model: str | None = None  # the served name; None: the one model the server lists
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = None
    request_timeout: float = 60.0  # seconds the server may stay silent before a request fails
    connect_timeout: float = 10.0
    retries: int = 6
    max_context: int | None = None  # the server's context where it does not list it (--max-context)
    hd: int | None = None  # the run's HD-N: the start-up check sends the largest page it plans (None: one tile)


BACKENDS = {
    "transformers": ("docvision.models.transformers:TransformersBackend", LocalSettings),
    "openai": ("docvision.models.openai:OpenAIBackend", ServerSettings),
}


def load_backend(settings: LocalSettings | ServerSettings) -> Backend:
    """Create the backend its settings' type names, with those settings.

    A local InternLM-XComposer2-4KHD checkpoint (recognised by its config.json) runs on docvision's
    native implementation (``models/ixc``), not through transformers' Auto classes.
    """
    for target, kind in BACKENDS.values():
        if type(settings) is kind:
            if kind is LocalSettings:
                _require_local()
            if kind is LocalSettings and _is_ixc(settings.model):
                target = "docvision.models.ixc.backend:IXCBackend"
            module_name, class_name = target.split(":")
            cls = getattr(importlib.import_module(module_name), class_name)
            return cls(**dataclasses.asdict(settings))
    raise TypeError(f"not backend settings: {settings!r}")  # a programming error, not a user's


LOCAL_PACKAGES = ("torch", "transformers", "accelerate", "safetensors")


def _require_local() -> None:
    """A local model needs the ``local`` extra: one line saying so when it is not installed."""
    import importlib.util

    from docvision.errors import ModelError

    missing = [name for name in LOCAL_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ModelError(f"a local model needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                         "not installed: pip install 'docvision[local]' (or use a model server: --backend openai)")


def _is_ixc(model: str | None) -> bool:
    """Whether ``model`` resolves to an InternLM-XComposer2 checkpoint (by its config.json)."""
    from docvision.errors import DocvisionError
    import docvision.models.ixc as ixc
    import docvision.models.registry as registry

    try:
        return ixc.is_ixc(registry.resolve(model).config)
    except DocvisionError:
        return False  # the backend says what is wrong when it resolves the model itself


__all__ = ["BACKENDS", "Backend", "Generation", "LocalSettings", "PageView", "ServerSettings", "load_backend"]
