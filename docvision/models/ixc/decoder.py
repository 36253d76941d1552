"""The InternLM2 decoder of IXC2-4KHD with Partial LoRA (PLoRA) on image positions.

In: input embeddings (text and projected image tokens interleaved), the flat indices of the image
positions among them, a transformers Cache. Out: final hidden states.

Partial LoRA: every projection (wqkv, wo, w1, w2, w3) is base(x) + scale * B(A(x)), the second term added
only at image positions. The adapters cannot be merged into the base weights for that reason. The base is
a child ``nn.Linear`` (checkpoint name ``wqkv.weight`` -> ``wqkv.base.weight``) so that bitsandbytes,
which only converts modules whose type is exactly nn.Linear, can put it in NF4; the adapters are children
too, kept in bf16 by name.

``wqkv`` is packed per KV head: for each of the KV groups, its query heads, then one key head, then one
value head. Rotary embeddings are computed from the positions at every forward (no buffers): buffers that
are not in the checkpoint are exactly what came out as uninitialised memory when the remote code was
built on the meta device by transformers 5.x.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from docvision.models.ixc.config import IXCConfig


class IXCRMSNorm(nn.Module):
    """RMSNorm computed in float32, cast back to the input dtype before the weight (as InternLM2 does)."""

    def __init__(self, width: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class PLoRALinear(nn.Module):
    """base(x), plus scale * Plora_B(Plora_A(x)) at the image positions only."""

    def __init__(self, fan_in: int, fan_out: int, rank: int, alpha: float):
        super().__init__()
        self.base = nn.Linear(fan_in, fan_out, bias=False)
        self.Plora_A = nn.Linear(fan_in, rank, bias=False)
        self.Plora_B = nn.Linear(rank, fan_out, bias=False)
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor, image_index: torch.Tensor | None = None) -> torch.Tensor:
        out = self.base(x)
        if image_index is None:
            return out
        width = x.shape[-1]
        picked = x.reshape(-1, width).index_select(0, image_index).to(self.Plora_A.weight.dtype)
        delta = self.Plora_B(self.Plora_A(picked)) * self.scale
        flat = out.reshape(-1, out.shape[-1]).index_add(0, image_index, delta.to(out.dtype))
        return flat.view(out.shape)


def rotary(config: IXCConfig, positions: torch.Tensor, total: int, dtype: torch.dtype):
    """cos, sin of shape (batch, seq, head_dim) for ``positions`` in a sequence ``total`` long so far.

    Dynamic NTK as in the InternLM2 code: past max_position_embeddings the base grows with the length.
    The 4KHD reference cuts its input at 16k of a 32k window, so this normally stays plain RoPE.
    """
    dim = config.head_dim
    base = config.rope_theta
    factor, limit = config.rope_dynamic_factor, config.max_position_embeddings
    if factor and total > limit:
        base = base * ((factor * total / limit) - (factor - 1)) ** (dim / (dim - 2))
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device) / dim))
    freqs = positions.float()[..., None] * inv_freq
    angles = torch.cat((freqs, freqs), dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _apply_rotary(q, k, cos, sin):
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # broadcast over heads
    return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin


class IXCAttention(nn.Module):
    """Grouped-query attention through transformers' SDPA function; the KV cache is a transformers Cache."""

    def __init__(self, config: IXCConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.head_dim = config.head_dim
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.num_key_value_groups = self.num_heads // self.num_kv_heads  # read by sdpa_attention_forward
        self.scaling = self.head_dim ** -0.5
        self.is_causal = True
        packed = (self.num_heads + 2 * self.num_kv_heads) * self.head_dim
        self.wqkv = PLoRALinear(config.hidden_size, packed, config.plora_qkv_rank, config.plora_qkv_alpha)
        self.wo = PLoRALinear(self.num_heads * self.head_dim, config.hidden_size, config.plora_rank,
                              config.plora_alpha)

    def forward(self, x, rope, mask, cache, image_index):
        batch, length, _ = x.shape
        groups = self.num_key_value_groups
        qkv = self.wqkv(x, image_index).view(batch, length, self.num_kv_heads, groups + 2, self.head_dim)
        query = qkv[..., :groups, :].reshape(batch, length, self.num_heads, self.head_dim).transpose(1, 2)
        key = qkv[..., -2, :].transpose(1, 2)
        value = qkv[..., -1, :].transpose(1, 2)
        query, key = _apply_rotary(query, key, *rope)
        if cache is not None:
            key, value = cache.update(key, value, self.layer_idx)
        out, _ = sdpa_attention_forward(self, query, key, value, mask, scaling=self.scaling)
        return self.wo(out.reshape(batch, length, -1), image_index)


class IXCFeedForward(nn.Module):
    def __init__(self, config: IXCConfig):
        super().__init__()
        width, inner, rank, alpha = config.hidden_size, config.intermediate_size, config.plora_rank, config.plora_alpha
        self.w1 = PLoRALinear(width, inner, rank, alpha)
        self.w3 = PLoRALinear(width, inner, rank, alpha)
        self.w2 = PLoRALinear(inner, width, rank, alpha)
        self.act = ACT2FN[config.hidden_act]

    def forward(self, x, image_index):
        return self.w2(self.act(self.w1(x, image_index)) * self.w3(x, image_index), image_index)


class IXCDecoderLayer(nn.Module):
    def __init__(self, config: IXCConfig, layer_idx: int):
        super().__init__()
        self.attention = IXCAttention(config, layer_idx)
        self.feed_forward = IXCFeedForward(config)
        self.attention_norm = IXCRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.ffn_norm = IXCRMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, x, rope, mask, cache, image_index):
        x = x + self.attention(self.attention_norm(x), rope, mask, cache, image_index)
        return x + self.feed_forward(self.ffn_norm(x), image_index)


class IXCDecoder(nn.Module):
    """Embeddings, the layers and the final norm (``model.*`` in the checkpoint)."""

    def __init__(self, config: IXCConfig):
        super().__init__()
        self.config = config
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.layers = nn.ModuleList(IXCDecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = IXCRMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, embeds: torch.Tensor, positions: torch.Tensor, total: int, mask, cache,
                image_index) -> torch.Tensor:
        """``total``: the sequence length so far, cache included (it picks the dynamic-NTK base)."""
        rope = rotary(self.config, positions, total, embeds.dtype)
        x = embeds
        for layer in self.layers:
            x = layer(x, rope, mask, cache, image_index)
        return self.norm(x)


def image_index_of(image_mask: torch.Tensor | None) -> torch.Tensor | None:
    """Flat indices of the image positions of a (batch, seq) bool mask; None when there are none.

    Computed once per forward (one device sync) instead of once per projection.
    """
    if image_mask is None:
        return None
    index = image_mask.reshape(-1).nonzero().squeeze(1)
    return index if index.numel() else None


__all__ = ["IXCDecoder", "IXCRMSNorm", "PLoRALinear", "image_index_of", "rotary"]
