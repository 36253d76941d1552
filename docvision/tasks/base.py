"""What every model task shares: what the calls cost, and the tail of the record that says which model
saw what (the contract is docs/records.md).

In: the Generations of a source's model calls, the chunks of pages it showed, the backend. Out: the
record's ``model``, ``resolution`` and ``usage`` blocks, built in one place for ask, summarize and extract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from docvision.models.base import Backend, Generation
    from docvision.tasks.pages import Chunk

MODEL_KEYS = ("id", "backend", "family", "device", "quant", "dtype", "base_url")


@dataclass
class Usage:
    """Tokens and model time summed over the calls of one source."""

    calls: int = 0
    prompt_tokens: int = 0
    visual_tokens: int = 0  # counted from the real model input, where the backend can count them
    new_tokens: int = 0
    cached_prefix_tokens: int = 0
    repairs: int = 0
    timings: dict = field(default_factory=dict)
    uncounted: int = 0  # calls whose tokens the server did not report
    warnings: list[str] = field(default_factory=list)  # each said once per record

    def add(self, generation: "Generation") -> "Generation":
        self.calls += 1
        if generation.prompt_tokens is None or generation.new_tokens is None:
            self.uncounted += 1
        self.prompt_tokens += generation.prompt_tokens or 0
        self.visual_tokens += generation.visual_tokens
        self.new_tokens += generation.new_tokens or 0
        self.cached_prefix_tokens += getattr(generation, "cached_prefix_tokens", 0)
        self.warnings += [w for w in getattr(generation, "warnings", ()) if w not in self.warnings]
        for key, value in (generation.timings or {}).items():
            # durations add up; rates (tokens_per_s) do not
            if isinstance(value, (int, float)) and key.endswith("_s") and not key.endswith("per_s"):
                self.timings[key] = round(self.timings.get(key, 0.0) + value, 3)
        return generation

    def block(self) -> dict:
        """The record's ``usage``; token counts are null when a call's were not reported (never a made-up 0)."""
        known = self.uncounted == 0
        return {"calls": self.calls, "prompt_tokens": self.prompt_tokens if known else None,
                "new_tokens": self.new_tokens if known else None,
                "cached_prefix_tokens": self.cached_prefix_tokens, "repairs": self.repairs}


def model_info(backend: "Backend") -> dict:
    """What records say about the model (stable keys only: nothing that varies between runs)."""
    info = backend.info()
    return {key: info.get(key) for key in MODEL_KEYS}


def resolution(chunks: Sequence["Chunk"], hd: int, backend: "Backend", visual_tokens: int = 0) -> dict:
    """The record's resolution block: HD-N, tile, pages shown, their grids and canvases, tiles, and the
    visual tokens -- as the processor really produced them where the backend counts them, else as the
    family adapter predicts them from the plans."""
    plans = [view.plan for chunk in chunks for view in chunk.views]
    return {
        "hd": hd,
        "tile": backend.tile,
        "pages": len(plans),
        "tiles": sum(p.tile_count for p in plans),
        "grid": [list(p.grid) for p in plans],
        "canvas": [list(p.canvas_size) for p in plans],
        "visual_tokens": visual_tokens or sum(backend.visual_tokens(p) for p in plans),
    }


def tail(chunks: Sequence["Chunk"], hd: int, backend: "Backend", usage: Usage) -> dict:
    """The part of a record body every model task ends with."""
    return {"model": model_info(backend), "resolution": resolution(chunks, hd, backend, usage.visual_tokens),
            "usage": usage.block(), "timings": dict(usage.timings), "warnings": list(usage.warnings)}
