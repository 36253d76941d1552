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
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**settings)


__all__ = ["BACKENDS", "Backend", "Generation", "PageView", "load_backend"]
