"""IXCConfig: the checkpoint's config.json (a dict) in, the configuration our native model is built from out.

The official config.json was written for transformers 4.33 and its remote code. Read as is by 5.x it
loses fields: ``max_length`` is popped as a generation parameter, ``rope_scaling`` is rewritten into
``rope_parameters`` with a warning. So the dict is mapped field by field here, onto names 5.x leaves
alone. It has no vision config (the remote code downloads openai/clip-vit-large-patch14-336 by name):
that model's published shape is the default, and a ``vision_config`` dict in config.json wins (tiny test
checkpoints describe a small tower that way).

The Partial LoRA ranks are not in config.json either (the remote code hard-codes them): wqkv r=8,
alpha=16; wo, w1, w2, w3 r=256, alpha=256.
"""

from __future__ import annotations

import dataclasses

from transformers import CLIPVisionConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

# openai/clip-vit-large-patch14-336 as published.
CLIP_L_336 = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
              "patch_size": 14, "image_size": 336, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
              "projection_dim": 768}


class IXCConfig(PreTrainedConfig):
    """InternLM2 decoder + CLIP tower + Partial LoRA of IXC2-4KHD (7B defaults)."""

    model_type = "internlm2"
    sub_configs_defaults = {"vision_config": SubConfigSpec(config_class=CLIPVisionConfig, init_kwargs=CLIP_L_336)}

    vocab_size: int = 92544
    hidden_size: int = 4096
    intermediate_size: int = 14336
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: int = 8
    hidden_act: str = "silu"
    rms_norm_eps: float = 1e-5
    rope_theta: float = 1_000_000.0
    rope_dynamic_factor: float | None = None  # config.json's rope_scaling {"type": "dynamic", "factor": f}
    max_position_embeddings: int = 32768
    context_length: int = 16384  # config.json's max_length: the reference cuts its input embeddings there
    initializer_range: float = 0.02
    pad_token_id: int | None = 2
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2
    tie_word_embeddings: bool = False
    use_cache: bool = True
    plora_qkv_rank: int = 8
    plora_qkv_alpha: float = 16.0
    plora_rank: int = 256
    plora_alpha: float = 256.0
    vision_config: dict | PreTrainedConfig | None = None

    def __post_init__(self, **kwargs):
        if self.vision_config is None:
            self.vision_config = dict(CLIP_L_336)
        super().__post_init__(**kwargs)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def merged_width(self) -> int:
        """Channels of one merged visual token: 2x2 CLIP patches side by side (4 x the tower's width)."""
        return 4 * self.vision_config.hidden_size

    @classmethod
    def from_checkpoint(cls, raw: dict) -> "IXCConfig":
        """Map a config.json dict (the official one, or one this class saved) onto IXCConfig."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in raw.items() if k in names}
        scaling = raw.get("rope_scaling")
        if isinstance(scaling, dict) and str(scaling.get("type", scaling.get("rope_type"))) == "dynamic":
            kwargs["rope_dynamic_factor"] = float(scaling.get("factor", 1.0))
        if raw.get("max_length"):
            kwargs["context_length"] = int(raw["max_length"])
        if isinstance(kwargs.get("vision_config"), dict):
            kwargs["vision_config"] = {**CLIP_L_336, **kwargs["vision_config"]}
        if raw.get("quantization_config"):  # a pre-quantized copy we saved
            kwargs["quantization_config"] = raw["quantization_config"]
        kwargs.pop("model_type", None)
        return cls(**kwargs)


__all__ = ["CLIP_L_336", "IXCConfig"]
