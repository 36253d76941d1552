"""IXCForCausalLM: the whole IXC2-4KHD model on transformers' own pieces.

In: token ids or input embeddings, a (batch, seq) image mask, a transformers Cache. Out: logits and the
cache. ``embed_pages`` turns canvas pixels into projected image embeddings. Module names follow the
official checkpoint (``model.*``, ``output``, ``vit.*``, ``vision_proj.*``, ``plora_glb_GN``,
``plora_sub_GN``), except that each decoder projection's base weight sits one level down
(``.base.weight``) -- see decoder.py.

It is a GenerationMixin, so ``model.generate(inputs_embeds=..., image_mask=...)`` works as for any
transformers model: the image mask is applied at the prompt's forward and dropped for generated tokens,
which are text.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.modeling_utils import slice_logits_to_keep

from docvision.models.ixc.config import IXCConfig
from docvision.models.ixc.decoder import IXCDecoder, image_index_of
from docvision.models.ixc.vision import IXCVisionTower, build_projector, layout, merge_2x2


class IXCForCausalLM(PreTrainedModel, GenerationMixin):
    """InternLM2 + PLoRA decoder, CLIP tower, separators and projector of IXC2-4KHD."""

    config_class = IXCConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _no_split_modules = ["IXCDecoderLayer", "CLIPEncoderLayer"]
    _supports_sdpa = True
    # Written by some InternLM2 exports, recomputed here at every forward.
    _keys_to_ignore_on_load_unexpected = [r"rotary_emb\.inv_freq"]

    def __init__(self, config: IXCConfig):
        super().__init__(config)
        self.model = IXCDecoder(config)
        self.output = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.vit = IXCVisionTower(config.vision_config)
        self.vision_proj = build_projector(config.merged_width, config.hidden_size)
        self.plora_glb_GN = nn.Parameter(torch.zeros(1, 1, config.merged_width))
        self.plora_sub_GN = nn.Parameter(torch.zeros(1, 1, 1, config.merged_width))
        self.post_init()

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, IXCForCausalLM):  # the separators are bare parameters
            init.normal_(module.plora_glb_GN, mean=0.0, std=self.config.initializer_range)
            init.normal_(module.plora_sub_GN, mean=0.0, std=self.config.initializer_range)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.tok_embeddings

    def get_output_embeddings(self) -> nn.Linear:
        return self.output

    @property
    def tile(self) -> int:
        return int(self.config.vision_config.image_size)

    def embed_pages(self, pixels: Sequence[torch.Tensor], grids: Sequence[tuple[int, int]]) -> list[torch.Tensor]:
        """Projected image embeddings, one (tokens, hidden) tensor per page, from each page's
        (1 + cols*rows, 3, T, T) pixels (vision.canvas_pixels) and (cols, rows). One ViT pass for all."""
        features = merge_2x2(self.vit(torch.cat(list(pixels))))
        pages, start = [], 0
        for grid in grids:
            count = 1 + grid[0] * grid[1]
            tokens = layout(features[start:start + count], grid, self.plora_glb_GN, self.plora_sub_GN)
            pages.append(self.vision_proj(tokens.to(self.vision_proj[0].weight.dtype)))
            start += count
        return pages

    def forward(self, input_ids: torch.LongTensor | None = None, inputs_embeds: torch.Tensor | None = None,
                image_mask: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                position_ids: torch.LongTensor | None = None, cache=None, past_key_values=None,
                use_cache: bool | None = None, logits_to_keep: int | torch.Tensor = 0,
                **_unused) -> CausalLMOutputWithPast:
        """Logits of the positions kept; ``image_mask`` (batch, seq) marks the image positions of this
        call's inputs, where the Partial LoRA adapters apply."""
        cache = cache if cache is not None else past_key_values
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.model.tok_embeddings(input_ids)
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
        past = cache.get_seq_length() if cache is not None else 0
        length = inputs_embeds.shape[1]
        if isinstance(past, torch.Tensor):
            # A static cache (the CUDA-graph steps, models/decode.py): its length lives on the device, where a
            # graph may not read it. Its size bounds the sequence, and the rope base depends on the length
            # only past max_position_embeddings, which the steps never reach (decode.Graphs.fits).
            total = cache.layers[0].get_max_length()
        else:
            total = past + length
            if position_ids is None:
                position_ids = torch.arange(past, total, device=inputs_embeds.device).unsqueeze(0)
        mask = create_causal_mask(config=self.config, inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                  cache=cache, position_ids=position_ids)
        hidden = self.model(inputs_embeds, position_ids, total, mask, cache, image_index_of(image_mask))
        logits = self.output(slice_logits_to_keep(hidden, logits_to_keep))
        return CausalLMOutputWithPast(logits=logits, cache=cache)

    def prepare_inputs_for_generation(self, input_ids, inputs_embeds=None, image_mask=None, **kwargs):
        """transformers' preparation, plus the image mask cut to the prompt part this step forwards
        (all of it, or what a prefix cache does not cover); generated tokens get none."""
        inputs = super().prepare_inputs_for_generation(input_ids, inputs_embeds=inputs_embeds, **kwargs)
        embeds = inputs.get("inputs_embeds")
        if image_mask is not None and embeds is not None:
            inputs["image_mask"] = image_mask[:, -embeds.shape[1]:]
        return inputs


__all__ = ["IXCForCausalLM"]
