"""Model backends: one small interface (``Backend.generate``), two implementations, resolved lazily.

``transformers`` runs a local image-text-to-text model (4-bit on CUDA); ``openai`` drives any
OpenAI-compatible server (vLLM, SGLang, Ollama, ``transformers serve``).
"""

from __future__ import annotations

import importlib

from docvision.models.base import Backend, Generation, PageView
from docvision.errors import UsageError

BACKENDS = {
    "transformers": "docvision.models.transformers:TransformersBackend",
    "openai": "docvision.models.openai:OpenAIBackend",
}


def load_backend(name: str, **settings) -> Backend:
    """Create the backend called ``name`` with its settings (model, device, quant, base_url...)."""
    try:
        target = BACKENDS[name]
    except KeyError:
        raise UsageError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}") from None
    if name == "transformers" and _is_ixc(settings.get("model")):
        target = "docvision.models.ixc.backend:IXCBackend"  # InternLM-XComposer2-4KHD runs natively
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**settings)


def _is_ixc(model: str | None) -> bool:
    """Whether ``model`` resolves to an InternLM-XComposer2 checkpoint (by its config.json)."""
    from docvision.errors import DocvisionError
    from docvision.models import ixc, registry

    try:
        return ixc.is_ixc(registry.resolve(model).config)
    except DocvisionError:
        return False  # the backend reports the problem when it resolves the model itself


__all__ = ["BACKENDS", "Backend", "Generation", "PageView", "load_backend"]
