"""IXCBackend: page views and a question in, IXC2-4KHD's greedy answer out (a Generation).

In: a model reference (alias ``ixc-4khd``, hub id or folder) resolved like every local model, a device, a
quantization and a dtype; then, per request, HD-N page views, a prompt and optionally a system text.
Out: the answer cut at the end-of-turn piece, with prompt / visual / new token counts taken from the
embedding sequence the model really receives, and timings.

Generation is transformers' own (GenerationMixin.generate on input embeddings, greedy, stopping at eos
or [UNUSED_TOKEN_145]). Prompt-cache reuse: the pages' part of a prompt -- system turn, page labels and
image embeddings, up to the end of the last image -- is the same for every question about those pages.
``answer(..., keep_prefix=True)`` returns a transformers Cache covering exactly that prefix;
``answer(..., prefix_cache=that)`` skips the vision tower and the prefix's forward and gives the same
tokens as a run from scratch. The cache passed in is copied, never changed, so it can be reused.
``generate`` does this itself through the backend's prefix cache (docs/prefix.md), keyed by the pages'
pixels, their labels and the system text, which together fix that prefix.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from docvision.errors import ModelError, OutOfMemory
import docvision.models.decode as decode
import docvision.models.prefix as prefix
import docvision.models.registry as registry
from docvision.models.base import Backend, Generation, PageView
from docvision.models.ixc import IXC_GRAPH_ROWS, is_ixc
from docvision.models.transformers import OOM_HINT, _Streamer, settle


@dataclass
class Request:
    """The model input of one request: embeddings, image positions, and the length of the pages' prefix."""

    embeds: object  # (1, length, hidden); zeros where a given prefix cache already covers the positions
    image_mask: object  # (1, length) bool
    prefix_len: int  # system + page labels + images: reusable across questions about the same pages
    visual_tokens: int

    @property
    def length(self) -> int:
        return int(self.embeds.shape[1])


class _StopFilter(_Streamer):
    """The shared streamer, minus the stop tokens (ordinary pieces, so decoding would print them)."""

    def __init__(self, tokenizer, on_text, stops: Sequence[int], status=None):
        import torch

        super().__init__(tokenizer, on_text, status)
        self.stops = torch.tensor(list(stops))

    def put(self, value) -> None:
        import torch

        if self.prompt_seen:
            value = value[~torch.isin(value, self.stops.to(value.device))]
        super().put(value)


class IXCBackend(Backend):
    """The native InternLM-XComposer2-4KHD (no checkpoint code run), 4-bit NF4 on CUDA by default."""

    name = "transformers"

    def __init__(self, model: str | None = None, device: str = "auto", quant: str = "auto", dtype: str = "auto",
                 prefix_cache_mb: int = 2048, hub_kernels: bool = False):
        import docvision.models.ixc.load as load

        started = time.perf_counter()
        resolved = registry.resolve(model)
        if not is_ixc(resolved.config):
            raise ModelError(f"{resolved.reference} is not an InternLM-XComposer2 checkpoint")
        settle(self, resolved, device, quant, dtype, prefix_cache_mb, hub_kernels)
        loaded = self._load(load, resolved.path, resolved.revision)
        self.model, self.tokenizer, self.from_cache = loaded.model, loaded.tokenizer, loaded.from_cache
        self._setup_generation()
        self.graphs = decode.Graphs(self.model, rows=IXC_GRAPH_ROWS) if self.device == "cuda" else None
        self.load_s = time.perf_counter() - started

    def _load(self, load, path, revision):
        import torch

        try:
            return load.load(path, self.model_id, revision, self.device, self.quant, self.dtype, self.hub_kernels)
        except (torch.OutOfMemoryError, MemoryError):
            raise OutOfMemory(f"out of memory loading {self.model_id} on {self.device}: "
                              f"use --quant 4bit, or --device") from None
        except (ImportError, OSError, RuntimeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelError(f"cannot load {self.model_id}: {first}") from None

    def _setup_generation(self) -> None:
        from transformers import GenerationConfig

        import docvision.models.ixc.chat as chat

        self.stops = chat.stop_ids(self.tokenizer)
        # Replaces the checkpoint's generation_config.json (its max_length 4480 only draws warnings here).
        self.model.generation_config = GenerationConfig(
            bos_token_id=self.tokenizer.bos_token_id, eos_token_id=self.stops,
            pad_token_id=self.tokenizer.eos_token_id, do_sample=False)

    def visual_tokens(self, plan) -> int:
        return self.family.visual_tokens(plan)

    def info(self) -> dict:
        return {"id": self.model_id, "backend": self.name, "device": self.device, "quant": self.quant,
                "dtype": self.dtype, "family": self.family.name, "load_s": round(self.load_s, 3)}

    def prepare(self, views: Sequence[PageView], prompt: str, system: str | None = None,
                reuse: bool = False) -> Request:
        """The embedding sequence of ``views`` and ``prompt``. With ``reuse`` (a prefix cache will cover
        the pages' part) that part is left as zeros and the vision tower does not run."""
        import torch

        import docvision.models.ixc.chat as chat
        import docvision.models.ixc.vision as vision
        from docvision.tiling import ixc_tokens

        pieces = [chat.encode(self.tokenizer, text) for text in chat.pieces([v.label for v in views], prompt, system)]
        planned = [ixc_tokens(v.plan.grid, self.tile) for v in views]
        self._check_length(sum(map(len, pieces)) + sum(planned))
        embed = self.model.get_input_embeddings()
        if views and not reuse:
            pixels = [vision.canvas_pixels(v.image, self.tile) for v in views]
            images = self.model.embed_pages([p for p, _ in pixels], [g for _, g in pixels])
        else:
            images = [embed.weight.new_zeros(count, embed.weight.shape[1]) for count in planned]
        parts, flags, prefix = [], [], 0
        for index, ids in enumerate(pieces):
            if ids:
                parts.append(embed(torch.tensor(ids, device=embed.weight.device)))
                flags += [False] * len(ids)
            if index < len(images):
                parts.append(images[index])
                flags += [True] * int(images[index].shape[0])
                prefix = len(flags)
        embeds = torch.cat(parts)[None]
        if reuse:
            embeds[:, :prefix] = 0  # covered by the cache: never read
        mask = torch.tensor(flags, device=embeds.device)[None]
        return Request(embeds, mask, prefix, int(mask.sum()))

    def _check_length(self, length: int) -> None:
        limit = self.model.config.context_length
        if length > limit:
            # The reference silently cuts its input here, question and all: say so instead.
            raise ModelError(f"the prompt is {length} tokens, more than the {limit} {self.model_id} reads: "
                             f"lower --hd or ask about fewer pages at once")

    def generate(self, views: Sequence[PageView], prompt: str, *, max_new_tokens: int = 512,
                 on_text: Callable[[str], None] | None = None, system: str | None = None) -> Generation:
        """Greedy answer to ``prompt`` about ``views``; streams text through ``on_text``. The pages' prefix
        is taken from the prefix cache when an earlier call had the same pages and system text."""
        options = dict(max_new_tokens=max_new_tokens, on_text=on_text, system=system)
        if not views or not self.prefixes.enabled:
            return self.answer(views, prompt, **options)[0]
        key = prefix.digest(views, [view.label for view in views], system)
        entry = self.prefixes.get(key)
        if entry is not None:
            generation, _ = self.answer(views, prompt, prefix_cache=entry.cache, **options)
            generation.cached_prefix_tokens = entry.cache.get_seq_length()
            return generation
        generation, kept = self.answer(views, prompt, keep_prefix=True, **options)
        if kept is not None:
            self.prefixes.put(key, prefix.Entry(cache=kept))
        return generation

    def answer(self, views: Sequence[PageView], prompt: str, *, max_new_tokens: int = 512,
               on_text: Callable[[str], None] | None = None, system: str | None = None,
               prefix_cache=None, keep_prefix: bool = False):
        """(Generation, prefix cache): ``generate`` with prompt-cache reuse. ``prefix_cache`` must come
        from an earlier call about the same views and system; ``keep_prefix`` returns the prefix's cache."""
        import torch

        from docvision.tiling import ixc_tokens

        started = time.perf_counter()
        status = self.status()
        status.encoding(len(views), sum(ixc_tokens(v.plan.grid, self.tile) for v in views),
                        0 if prefix_cache is None else prefix_cache.get_seq_length())
        try:
            with torch.inference_mode():
                given = None if prefix_cache is None else prefix_cache.get_seq_length()
                request = self.prepare(views, prompt, system, reuse=given is not None)
                if given is not None and given != request.prefix_len:
                    raise ModelError(f"the prefix cache covers {given} positions, these pages {request.prefix_len}: "
                                     f"it belongs to other pages or another system text")
                cache, kept = self._prefix(request, prefix_cache, keep_prefix)
                streamer = _StopFilter(self.tokenizer, on_text, self.stops, status)
                run = dict(inputs_embeds=request.embeds, image_mask=request.image_mask,
                           attention_mask=torch.ones(request.embeds.shape[:2], dtype=torch.long,
                                                     device=request.embeds.device))
                if decode.applies(self.graphs, max_new_tokens, request.length):
                    # The steps after the first token replay a CUDA graph (docs/gpu.md); the same argmax.
                    output = self.graphs.generate(run, decode.cache_or_new(cache, self.model), max_new_tokens,
                                                  streamer)
                else:
                    output = self.model.generate(**run, cache=cache, max_new_tokens=max_new_tokens, streamer=streamer)
        except (torch.OutOfMemoryError, MemoryError):
            raise OutOfMemory(f"out of memory answering on {self.device}: {OOM_HINT}") from None
        return self._generation(request, output[0], started, streamer), kept

    def _prefix(self, request: Request, prefix_cache, keep_prefix: bool):
        """(cache to generate with, prefix cache to hand back)."""
        from transformers.cache_utils import DynamicCache

        if prefix_cache is not None:
            return copy.deepcopy(prefix_cache), prefix_cache
        if not keep_prefix or request.prefix_len == 0:
            return None, None
        cache = DynamicCache(config=self.model.config)
        end = request.prefix_len
        self.model(inputs_embeds=request.embeds[:, :end], image_mask=request.image_mask[:, :end], cache=cache,
                   logits_to_keep=1)
        return cache, copy.deepcopy(cache)

    def _generation(self, request: Request, new, started: float, streamer) -> Generation:
        import docvision.models.ixc.chat as chat

        ended = time.perf_counter()
        first = streamer.first_token_at or ended
        generate_s = ended - first
        count = int(new.shape[0])
        return Generation(
            text=chat.cut(self.tokenizer.decode(new, skip_special_tokens=True)),
            prompt_tokens=request.length, visual_tokens=request.visual_tokens, new_tokens=count,
            timings={"prefill_s": round(first - started, 3), "generate_s": round(generate_s, 3),
                     "tokens_per_s": round((count - 1) / generate_s, 2) if generate_s > 0 else None})

    def close(self) -> None:
        self.prefixes.clear()
        self.graphs = None
        self.model = None
        self.tokenizer = None


__all__ = ["IXCBackend", "Request"]
