"""Reused page encodings: the key/value caches of prompts already run, kept within a byte budget.

In: page views, the family's processor options and the system text (what a prompt's pages are), the token
ids a prompt ran with and the transformers Cache it left. Out: for a later prompt about the same pages,
the stored cache cut to the longest token prefix the two prompts share -- the system turn, the page
images and the instruction before the question -- so only the rest is run (docs/prefix.md).

Entries are keyed by a digest of the canvases' pixels, not by token ids: two different pages of the same
size give the same placeholder ids, so a token match alone would reuse the wrong page's encoding. Within
a key, the token ids decide how much is shared. The least recently used entries are dropped when the
caches' bytes (counted from their tensors' storage) pass the budget; an entry larger than the whole
budget is not kept. A lock guards the table; entries are never changed once stored (a caller copies the
part it reuses), so several threads may read one.

torch and transformers are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from docvision.models.base import PageView

MB = 1024 * 1024


@dataclass
class Entry:
    """One stored prompt: its token ids (None where the cache covers a fixed prefix), its cache, its size."""

    cache: Any  # a transformers Cache
    tokens: Any = None  # 1-D tensor of the ids the cache covers, in order
    nbytes: int = 0
    extra: dict = field(default_factory=dict)  # per-family state that goes with the cache (Qwen's rope deltas)


class PrefixCache:
    """An LRU of Entries whose caches together hold at most ``budget_bytes``."""

    def __init__(self, budget_bytes: int):
        self.budget = max(0, int(budget_bytes))
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.nbytes = 0

    @classmethod
    def from_mb(cls, megabytes: int) -> "PrefixCache":
        return cls(int(megabytes) * MB)

    @property
    def enabled(self) -> bool:
        return self.budget > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Entry | None:
        """The entry stored under ``key`` (now the most recently used), or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: str, entry: Entry) -> bool:
        """Store ``entry`` under ``key`` (replacing what was there), then drop the least recently used
        entries until the budget holds. False (and nothing stored) when the entry alone exceeds it."""
        if not entry.nbytes:
            entry.nbytes = cache_bytes(entry.cache)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.nbytes -= old.nbytes
            if entry.nbytes > self.budget:
                return False
            self._entries[key] = entry
            self.nbytes += entry.nbytes
            while self.nbytes > self.budget:
                _, dropped = self._entries.popitem(last=False)
                self.nbytes -= dropped.nbytes
            return True

    def entries(self) -> list[Entry]:
        """The stored entries, least recently used first."""
        with self._lock:
            return list(self._entries.values())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.nbytes = 0


def digest(views: Sequence["PageView"], *extra: object) -> str:
    """What a prompt's pages are: each canvas's size, mode and pixels, plus ``extra`` (processor options,
    system text, labels) as JSON. Equal digests mean the same images reach the model."""
    hasher = hashlib.blake2b(digest_size=20)
    for view in views:
        image = view.image
        hasher.update(f"{image.mode}:{image.size[0]}x{image.size[1]};".encode())
        hasher.update(image.tobytes())
    hasher.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return hasher.hexdigest()


def cache_bytes(cache) -> int:
    """Bytes a Cache's tensors hold, each storage counted once (a cropped tensor keeps its whole storage)."""
    seen: dict[int, int] = {}
    for layer in getattr(cache, "layers", ()):
        for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if tensor is not None and hasattr(tensor, "untyped_storage"):
                storage = tensor.untyped_storage()
                seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def common_prefix(a, b) -> int:
    """The length of the longest common prefix of two 1-D id tensors."""
    import torch

    n = min(int(a.shape[0]), int(b.shape[0]))
    if n == 0:
        return 0
    differ = torch.nonzero(a[:n].cpu() != b[:n].cpu())
    return int(differ[0, 0]) if differ.numel() else n


def images_end(inputs: dict, image_token_id: int | None) -> int:
    """The position just after the last image token of a processor's output (0 when it has none): from
    Qwen-VL's per-token modality where the processor gives it, else the image placeholder id."""
    import torch

    kinds = inputs.get("mm_token_type_ids")
    if kinds is None:
        kinds = inputs["input_ids"] == image_token_id
    found = torch.nonzero(kinds[0])
    return int(found[-1, 0]) + 1 if found.numel() else 0


def reusable(cache) -> bool:
    """Whether a cache can be cut to a prefix and extended again: every layer a plain full-attention
    DynamicLayer. Sliding-window layers drop old positions and linear-attention layers keep one running
    state, so neither can be rewound to an earlier position."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer and layer.is_initialized for layer in layers)


def copy_prefix(cache, length: int):
    """A new DynamicCache holding the first ``length`` positions of ``cache`` (copied: the stored one
    stays as it is while generation extends the copy)."""
    from transformers.cache_utils import DynamicCache

    return DynamicCache(ddp_cache_data=[(layer.keys[..., :length, :], layer.values[..., :length, :])
                                        for layer in cache.layers])


__all__ = ["Entry", "MB", "PrefixCache", "cache_bytes", "common_prefix", "copy_prefix", "digest", "images_end",
           "reusable"]
