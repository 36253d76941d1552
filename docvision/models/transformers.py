"""The local backend: a natively supported image-text-to-text model run with transformers.

In: a model reference (alias, hub id or folder), a device and a quantization choice; then page views
and a prompt per request. Out: a Generation (greedy text, prompt/visual/new token counts, timings).

auto quantization is 4-bit NF4 (bitsandbytes, double quant, bf16 compute) on CUDA and bf16 on CPU,
where NF4 runs about 10x slower than bf16 (measured; docs/architecture.md, Models). On CPU bitsandbytes only handles
linear layers with out_features % 32 == 0 and in_features % 64 == 0, so the others (typically in a
vision tower) are left in bf16. A quantized model is saved once to the user cache so the next load
skips quantization. torch, transformers and bitsandbytes are imported here only, inside functions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import docvision.models.decode as decode
import docvision.models.families as families
import docvision.models.placement as placement
import docvision.models.prefix as prefix
import docvision.models.registry as models
from docvision.models.base import Backend, Generation, PageView
from docvision.errors import ModelError, OutOfMemory

CACHE_ENV = "DOCVISION_CACHE_DIR"
OOM_HINT = "lower --hd, use --quant 4bit, or run on the other device with --device"
# The processor outputs that still go in when a prefix cache covers every image: the token ids, their mask
# and Qwen-VL's per-token modality (the rest are pixels and image shapes).
TEXT_INPUTS = ("input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids")
# model_types whose prompt caches are not reused (docs/prefix.md says why); none so far.
NO_REUSE_TYPES: tuple[str, ...] = ()


def incompatible_linears(linears: Iterable[tuple[str, int, int]]) -> list[str]:
    """Names of linear layers (name, in_features, out_features) bitsandbytes cannot quantize on CPU."""
    return [name for name, fan_in, fan_out in linears if fan_out % 32 or fan_in % 64]


def skip_modules(folder: Path, device: str) -> list[str]:
    """Modules to keep in bf16: the output head, plus (on CPU) linears of widths bitsandbytes rejects.

    Built from a meta-device skeleton of the model, so no weights are read.
    """
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    config = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        skeleton = AutoModelForImageTextToText.from_config(config)
    try:
        from transformers.quantizers.base import get_keys_to_not_convert

        keep = list(get_keys_to_not_convert(skeleton))
    except Exception:  # noqa: BLE001 - the helper moved between versions; the head is what matters
        keep = ["lm_head"]
    if device == "cpu":
        linears = ((name, m.in_features, m.out_features) for name, m in skeleton.named_modules()
                   if isinstance(m, torch.nn.Linear))
        keep += incompatible_linears(linears)
    return sorted(set(keep))


def cache_root() -> Path:
    """Where pre-quantized copies live: $DOCVISION_CACHE_DIR or the platform's user cache."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("docvision"))


def quantized_path(model_id: str, revision: str, quant: str, device: str) -> Path:
    """The cache folder of one quantization of one model revision.

    The skip list is not part of the key: it follows from the model, the device and these versions, so
    a cache hit needs no model skeleton at all.
    """
    from importlib.metadata import version

    # Versions from the installed metadata: importing bitsandbytes costs seconds and is done by the load.
    key = json.dumps([model_id, revision, quant, device, version("transformers"), version("bitsandbytes")])
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id.strip("/"))[-60:]
    return cache_root() / "quantized" / f"{slug}-{quant}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _quant_config(quant: str, skip: list[str]):
    import torch
    from transformers import BitsAndBytesConfig

    if quant == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=torch.bfloat16, llm_int8_skip_modules=skip)
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)


def _quiet() -> None:
    """Keep stderr for docvision's own lines: no progress bars or generation-config chatter."""
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as hf_logging

    import logging
    import warnings

    disable_progress_bars()
    # bitsandbytes on a CPU with AVX512-BF16 logs at import that the optional `kernels` package is missing.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    # bitsandbytes' 8-bit matmul says so on every call; the record already names the quantization.
    warnings.filterwarnings("ignore", message="MatMul8bitLt")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _save_atomically(model, processor, target: Path) -> None:
    """Write model + processor to ``target`` via a temporary folder and one rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".tmp-{target.name}-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    try:
        model.save_pretrained(temp)
        processor.save_pretrained(temp)
        os.replace(temp, target)
    except OSError:
        shutil.rmtree(temp, ignore_errors=True)  # another process won the race, or the disk is full
        if not (target / "config.json").is_file():
            raise


def load_model(path: Path, model_id: str, revision: str, device: str, quant: str, dtype: str = "bfloat16",
               hub_kernels: bool = False):
    """(model, processor, from_cache) for a resolved model folder, quantizing (and caching) as asked; hub
    kernels only with ``hub_kernels`` (placement.load_keywords)."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    common = dict(dtype=getattr(torch, dtype), device_map={"": device}, **placement.load_keywords(hub_kernels))
    if quant != "none":
        placement.import_bitsandbytes(hub_kernels)
    if quant == "none":
        model = AutoModelForImageTextToText.from_pretrained(path, **common)
        return model, AutoProcessor.from_pretrained(path, trust_remote_code=False), False
    cached = quantized_path(model_id, revision, quant, device)
    if (cached / "config.json").is_file():
        model = AutoModelForImageTextToText.from_pretrained(cached, **common)
        return model, AutoProcessor.from_pretrained(cached, trust_remote_code=False), True
    skip = skip_modules(path, device)
    model = AutoModelForImageTextToText.from_pretrained(
        path, quantization_config=_quant_config(quant, skip), **common)
    processor = AutoProcessor.from_pretrained(path, trust_remote_code=False)
    try:
        _save_atomically(model, processor, cached)
    except (OSError, NotImplementedError, ValueError) as exc:
        # A cache that cannot be written costs speed next time, not this answer.
        logging.getLogger("docvision").warning(f"could not keep a quantized copy in {cached}: {exc}")
    return model, processor, False


class _Streamer:
    """Receives token ids from generate(): notes the first token's time, passes text on as it grows."""

    def __init__(self, tokenizer, on_text: Callable[[str], None] | None, status=None):
        from transformers import TextStreamer

        class Text(TextStreamer):
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                if text and on_text is not None:
                    on_text(text)

        self.text = Text(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.first_token_at: float | None = None
        self.prompt_seen = False
        self.status = status  # a base.Status told of each token written

    def put(self, value) -> None:
        if self.prompt_seen and self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        if self.prompt_seen and self.status is not None:
            self.status.token()
        self.prompt_seen = True
        self.text.put(value)

    def end(self) -> None:
        self.text.end()


def settle(backend: Backend, resolved, device: str, quant: str, dtype: str, prefix_cache_mb: int,
           hub_kernels: bool = False) -> None:
    """What every local backend decides before loading: id, family and tile, device, quantization, dtype,
    the store of reusable prompt caches, whether hub kernels may load; and quiet libraries."""
    backend.model_id = resolved.model_id
    backend.hub_kernels = bool(hub_kernels)
    backend.family = families.detect(resolved.config)
    backend.tile = backend.family.tile
    backend.device = placement.choose_device(device)
    backend.quant = placement.choose_quant(quant, backend.device)
    backend.dtype = placement.choose_dtype(dtype, backend.quant)
    backend.prefix_cache_mb = prefix_cache_mb
    backend.prefixes = prefix.PrefixCache.from_mb(prefix_cache_mb)
    placement.fit_threads()
    _quiet()


class TransformersBackend(Backend):
    """A local image-text-to-text model (AutoProcessor + AutoModelForImageTextToText)."""

    name = "transformers"

    def __init__(self, model: str | None = None, device: str = "auto", quant: str = "auto", dtype: str = "auto",
                 prefix_cache_mb: int = 2048, hub_kernels: bool = False):
        """Load ``model`` (alias, hub id or folder) on ``device``, quantized and typed as asked; keep up to
        ``prefix_cache_mb`` MB of prompt caches for reuse (0: none; docs/prefix.md); let transformers swap in
        kernels from the hub only with ``hub_kernels`` (docs/gpu.md)."""
        started = time.perf_counter()
        resolved = models.resolve(model)
        settle(self, resolved, device, quant, dtype, prefix_cache_mb, hub_kernels)
        import torch

        try:
            self.model, self.processor, self.from_cache = load_model(
                resolved.path, self.model_id, resolved.revision, self.device, self.quant, self.dtype,
                self.hub_kernels)
        except (torch.OutOfMemoryError, MemoryError):
            raise OutOfMemory(f"out of memory loading {self.model_id} on {self.device}: "
                              f"use --quant 4bit, a smaller --model, or --device") from None
        except ImportError as exc:
            raise ModelError(f"cannot load {self.model_id}: {exc}") from None
        self.model.eval()
        # One-token steps as CUDA graph replays: on CUDA, for the families whose step is known to capture.
        rows = decode.GRAPH_TYPES.get(self.family.model_type)
        self.graphs = decode.Graphs(self.model, rows) if self.device == "cuda" and rows else None
        self.load_s = time.perf_counter() - started

    def visual_tokens(self, plan) -> int:
        return self.family.visual_tokens(plan)

    def info(self) -> dict:
        return {"id": self.model_id, "backend": self.name, "device": self.device, "quant": self.quant,
                "dtype": self.dtype, "family": self.family.name, "load_s": round(self.load_s, 3)}

    def image_token_id(self) -> int | None:
        """The id of the image placeholder token whose count is the visual-token cost."""
        found = getattr(self.processor, "image_token_id", None)
        if found is None:
            config = self.model.config
            found = getattr(config, "image_token_id", None) or getattr(config, "image_token_index", None)
        return found

    def prepare(self, views: Sequence[PageView], prompt: str, system: str | None = None):
        """The processor's inputs for ``views`` and ``prompt``, laid out by the family adapter."""
        messages = [{"role": "user", "content": self.family.content(views, prompt)}]
        if system is not None:
            messages.insert(0, {"role": "system", "content": [{"type": "text", "text": system}]})
        try:
            text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        except ValueError as exc:
            raise ModelError(f"{self.model_id} cannot build a chat prompt: {exc}") from None
        if not views:  # text only (combining notes): processors reject an empty image list
            return self.processor(text=[text], return_tensors="pt")
        return self.processor(text=[text], images=self.family.images(views), return_tensors="pt",
                              **self.family.processor_kwargs(views))

    def generate(self, views: Sequence[PageView], prompt: str, *, max_new_tokens: int = 512,
                 on_text: Callable[[str], None] | None = None, system: str | None = None) -> Generation:
        """Greedy answer to ``prompt`` about ``views``; streams text through ``on_text``.

        The part of the prompt an earlier call about the same pages already ran (system turn, pages,
        instruction) is taken from the prefix cache and only the rest is run: the same tokens as from
        scratch, without the vision tower and the pages' prefill (docs/prefix.md).
        """
        import torch

        started = time.perf_counter()
        try:
            inputs = self.prepare(views, prompt, system)
            inputs = {k: (v.to(self.model.device, dtype=getattr(torch, self.dtype)) if v.is_floating_point()
                          else v.to(self.model.device)) for k, v in inputs.items()}
            key = self._prefix_key(views, system)
            run, cache, reused = self._reuse(key, inputs)
            prepared = time.perf_counter()
            status = self.status()
            status.encoding(len(views), self._visual(inputs["input_ids"][0]), reused)
            streamer = _Streamer(self.processor.tokenizer, on_text, status)
            with torch.inference_mode():
                output = self._answer(run, cache, max_new_tokens, streamer)
            self._keep(key, cache, output[0])
        except (torch.OutOfMemoryError, MemoryError):
            self.prefixes.clear()  # the memory is better spent on answers than on reuse
            raise OutOfMemory(f"out of memory answering on {self.device}: {OOM_HINT}") from None
        ended = time.perf_counter()
        ids = inputs["input_ids"][0]
        new = output[0][ids.shape[0]:]
        first = streamer.first_token_at or ended
        generate_s = ended - first
        return Generation(
            text=self.processor.tokenizer.decode(new, skip_special_tokens=True).strip(),
            prompt_tokens=int(ids.shape[0]),
            visual_tokens=self._visual(ids),
            new_tokens=int(new.shape[0]),
            cached_prefix_tokens=reused,
            timings={"prepare_s": round(prepared - started, 3), "prefill_s": round(first - prepared, 3),
                     "first_token_s": round(first - started, 3), "generate_s": round(generate_s, 3),
                     "tokens_per_s": round((new.shape[0] - 1) / generate_s, 2) if generate_s > 0 else None},
        )

    def _visual(self, ids) -> int:
        """Visual tokens among the prompt's ``ids``."""
        image_id = self.image_token_id()
        return int((ids == image_id).sum()) if image_id is not None else 0

    def _answer(self, run: dict, cache, max_new_tokens: int, streamer):
        """generate()'s greedy output ids; where the model allows, the steps after the first token replay a
        captured CUDA graph instead (docs/gpu.md), with the same argmax at every step."""
        if not decode.applies(self.graphs, max_new_tokens, int(run["input_ids"].shape[1])):
            return self.model.generate(**run, cache=cache, max_new_tokens=max_new_tokens, do_sample=False,
                                       streamer=streamer, pad_token_id=self._pad_id())
        return self.graphs.generate(run, decode.cache_or_new(cache, self.model), max_new_tokens, streamer,
                                    self._pad_id())

    def _prefix_key(self, views: Sequence[PageView], system: str | None) -> str | None:
        """The prefix cache's key for a call about ``views``; None when nothing is to be reused (reuse off,
        not for this family, or a text-only call: no pages worth keeping)."""
        if not views or not self.prefixes.enabled or self.family.model_type in NO_REUSE_TYPES:
            return None
        return prefix.digest(views, self.family.processor_kwargs(views), system)

    def _reuse(self, key: str | None, inputs: dict):
        """(generate's inputs, the cache to extend, positions taken from a stored prompt).

        A stored prompt is reused up to the longest token prefix it shares with this one, when that covers
        every image token (then no pixels go in: generate forwards only the uncached tokens, and pixels
        without their image tokens fail with "Image features and image tokens do not match") and leaves
        at least one token to run.
        """
        if key is None:
            return inputs, None, 0
        from transformers.cache_utils import DynamicCache

        ids = inputs["input_ids"][0]
        entry = self.prefixes.get(key)
        length = 0
        if entry is not None:
            length = min(prefix.common_prefix(entry.tokens, ids), int(ids.shape[0]) - 1)
            if length < prefix.images_end(inputs, self.image_token_id()):
                length = 0
        if not length:
            return inputs, DynamicCache(config=self.model.config), 0
        if "rope_deltas" in entry.extra:
            # Qwen-VL's generate places the tokens after a cache with the rope deltas of the model's *last*
            # prefill, whatever pages that was about: put back those of these pages.
            self.model.model.rope_deltas = entry.extra["rope_deltas"]
        text = {k: v for k, v in inputs.items() if k in TEXT_INPUTS}
        return text, prefix.copy_prefix(entry.cache, length), length

    def _keep(self, key: str | None, cache, output) -> None:
        """Store the cache a call left (its prompt and answer, all but the last token) under ``key``."""
        if key is None or not prefix.reusable(cache):
            return
        extra = {}
        deltas = getattr(getattr(self.model, "model", None), "rope_deltas", None)
        if deltas is not None:
            extra["rope_deltas"] = deltas.clone()
        length = cache.get_seq_length()
        self.prefixes.put(key, prefix.Entry(cache=cache, tokens=output[:length].cpu(), extra=extra))

    def _pad_id(self) -> int | None:
        tokenizer = self.processor.tokenizer
        if tokenizer.pad_token_id is not None:
            return tokenizer.pad_token_id
        return tokenizer.eos_token_id

    def close(self) -> None:
        self.prefixes.clear()
        self.graphs = None
        self.model = None
        self.processor = None
