"""Tiny random-weight vision-language models of the real architectures, built offline at test time.

In: a family name ("qwen2_5_vl", "qwen3_vl", "internvl", "idefics3") and a folder. Out: that folder
holding a saved model (config.json + safetensors), a byte-level tokenizer made in code, and the family's
real processor classes configured in code -- loadable with AutoProcessor and
AutoModelForImageTextToText exactly as a user's model is. Nothing is downloaded.

Such a model answers nonsense; it exists to test the wiring (which images, how many visual tokens,
prompt layout, records) in about a second. Every linear width is a multiple of 64 so bitsandbytes NF4
works on CPU; Qwen's mrope_section sums to head_dim / 2.

``build_bench_model`` builds a random-weight model with Qwen3-VL-4B-Instruct's published shape (or a
scaled one) for speed and memory measurements.
"""

from __future__ import annotations

from pathlib import Path

FAMILIES = ("qwen2_5_vl", "qwen3_vl", "internvl", "idefics3")

# A small chat template: the family's image placeholder where each image goes, then the text.
_TEMPLATE = (
    "{% for message in messages %}{{ BOS }}{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}IMAGE{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ EOS }}\n{% endfor %}"
    "{% if add_generation_prompt %}{{ BOS }}assistant\n{% endif %}"
)

_QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>"]
_INTERNVL_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>",
                      "<video>"]
_IDEFICS_SPECIALS = (["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>",
                      "<image>", "<global-img>"]
                     + [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)])

# The text model every family shares: 2 layers, 128 wide, 4 heads of 32 (2 KV heads -> 64-wide k/v).
_TEXT = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, head_dim=32, max_position_embeddings=32768)


def _vocab_size(specials: list[str]) -> int:
    """256 byte symbols + specials, rounded up to a multiple of 64 (lm_head width for NF4)."""
    n = 256 + len(specials)
    return -(-n // 64) * 64


def make_tokenizer(specials: list[str], extra: dict | None = None, pad: str = "<|endoftext|>",
                   eos: str = "<|im_end|>"):
    """A byte-level tokenizer needing no training: the 256 ByteLevel symbols, no merges, + specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: i for i, symbol in enumerate(alphabet)}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token=eos, pad_token=pad, extra_special_tokens=extra or {},
    )
    tokenizer.add_special_tokens({"additional_special_tokens": specials}, replace_extra_special_tokens=False)
    return tokenizer


def _template(bos: str, eos: str, placeholder: str) -> str:
    return (_TEMPLATE.replace("{{ BOS }}", bos).replace("{{ EOS }}", eos)
            .replace("IMAGE", placeholder))


def _ids(tokenizer, *tokens: str) -> list[int]:
    return [tokenizer.convert_tokens_to_ids(t) for t in tokens]


def _qwen(family: str):
    """Config, model class and processor of a tiny Qwen2.5-VL or Qwen3-VL."""
    import transformers as tf

    tokenizer = make_tokenizer(_QWEN_SPECIALS)
    start, end, image, video = _ids(tokenizer, "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                                    "<|video_pad|>")
    vocab = _vocab_size(_QWEN_SPECIALS)
    template = _template("<|im_start|>", "<|im_end|>", "<|vision_start|><|image_pad|><|vision_end|>")
    rope = {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [4, 6, 6]}
    tokens = dict(image_token_id=image, video_token_id=video, vision_start_token_id=start,
                  vision_end_token_id=end)
    text = dict(_TEXT, vocab_size=vocab, rope_parameters=rope, bos_token_id=None, eos_token_id=_ids(tokenizer, "<|im_end|>")[0])
    if family == "qwen2_5_vl":
        vision = dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=2, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=128, window_size=112,
                      fullatt_block_indexes=[1])
        config = tf.Qwen2_5_VLConfig(text_config=text, vision_config=vision, **tokens)
        patch, mean, std = 14, [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
        video_processor = tf.Qwen2VLVideoProcessor(patch_size=patch, image_mean=mean, image_std=std)
        processor_cls, model_cls = tf.Qwen2_5_VLProcessor, tf.Qwen2_5_VLForConditionalGeneration
    else:
        rope["mrope_interleaved"] = True
        vision = dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=2, patch_size=16,
                      spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=128,
                      num_position_embeddings=256, deepstack_visual_indexes=[0])
        config = tf.Qwen3VLConfig(text_config=text, vision_config=vision, **tokens)
        patch, mean, std = 16, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]
        video_processor = tf.Qwen3VLVideoProcessor(patch_size=patch, image_mean=mean, image_std=std)
        processor_cls, model_cls = tf.Qwen3VLProcessor, tf.Qwen3VLForConditionalGeneration
    image_processor = tf.Qwen2VLImageProcessor(
        patch_size=patch, merge_size=2, temporal_patch_size=2, image_mean=mean, image_std=std,
        size={"shortest_edge": 64 * 64, "longest_edge": 1280 * patch * patch * 4},
    )
    processor = processor_cls(image_processor=image_processor, tokenizer=tokenizer,
                              video_processor=video_processor, chat_template=template)
    return config, model_cls, processor


def _internvl():
    """A tiny InternVL in transformers' native ("-hf") format: 448 px tiles, 256 tokens each."""
    import transformers as tf

    extra = {"start_image_token": "<img>", "end_image_token": "</img>",
             "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"}
    tokenizer = make_tokenizer(_INTERNVL_SPECIALS, extra=extra)
    vocab = _vocab_size(_INTERNVL_SPECIALS)
    vision = dict(hidden_size=64, num_hidden_layers=1, num_attention_heads=2, intermediate_size=128,
                  image_size=[448, 448], patch_size=[14, 14])
    text = dict(_TEXT, vocab_size=vocab, model_type="qwen2", eos_token_id=_ids(tokenizer, "<|im_end|>")[0])
    config = tf.InternVLConfig(vision_config=vision, text_config=text,
                               image_token_id=_ids(tokenizer, "<IMG_CONTEXT>")[0], image_seq_length=256,
                               downsample_ratio=0.5)
    image_processor = tf.GotOcr2ImageProcessor(
        crop_to_patches=True, min_patches=1, max_patches=12, size={"height": 448, "width": 448},
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
    )
    video_processor = tf.InternVLVideoProcessor(size={"height": 448, "width": 448})
    processor = tf.InternVLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                     video_processor=video_processor, image_seq_length=256,
                                     chat_template=_template("<|im_start|>", "<|im_end|>", "<IMG_CONTEXT>"))
    return config, tf.InternVLForConditionalGeneration, processor


def _idefics3():
    """A tiny Idefics3 shaped like SmolVLM: 512 px tiles of 16 px patches, pixel shuffle 4 -> 64 tokens."""
    import transformers as tf

    tokenizer = make_tokenizer(_IDEFICS_SPECIALS, eos="<end_of_utterance>")
    vocab = _vocab_size(_IDEFICS_SPECIALS)
    vision = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=2,
                  image_size=512, patch_size=16)
    text = dict(_TEXT, vocab_size=vocab, model_type="llama",
                eos_token_id=_ids(tokenizer, "<end_of_utterance>")[0])
    config = tf.Idefics3Config(vision_config=vision, text_config=text, scale_factor=4,
                               image_token_id=_ids(tokenizer, "<image>")[0])
    image_processor = tf.Idefics3ImageProcessor(
        do_image_splitting=True, size={"longest_edge": 4 * 512}, max_image_size={"longest_edge": 512},
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    )
    processor = tf.Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=64,
                                     chat_template=_template("<|im_start|>", "<end_of_utterance>", "<image>"))
    return config, tf.Idefics3ForConditionalGeneration, processor


def build_tiny_model(family: str, path: Path, seed: int = 0) -> Path:
    """Build a tiny random-weight ``family`` model and save model, tokenizer and processor to ``path``."""
    import torch

    if family in ("qwen2_5_vl", "qwen3_vl"):
        config, model_cls, processor = _qwen(family)
    elif family == "internvl":
        config, model_cls, processor = _internvl()
    elif family == "idefics3":
        config, model_cls, processor = _idefics3()
    else:
        raise ValueError(f"unknown tiny family {family!r}: one of {', '.join(FAMILIES)}")
    torch.manual_seed(seed)
    model = model_cls(config).to(torch.bfloat16).eval()
    model.generation_config.eos_token_id = config.get_text_config().eos_token_id
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


# Qwen3-VL-4B-Instruct as published (DESIGN.md section 3).
QWEN3_VL_4B_TEXT = dict(hidden_size=2560, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8,
                        head_dim=128, intermediate_size=9728, vocab_size=151936, max_position_embeddings=262144,
                        rope_parameters={"rope_type": "default", "rope_theta": 5_000_000.0,
                                         "mrope_section": [24, 20, 20], "mrope_interleaved": True})
QWEN3_VL_4B_VISION = dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, patch_size=16,
                          spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=2560,
                          num_position_embeddings=2304, deepstack_visual_indexes=[5, 11, 17])


def bench_config(scale: str = "4b"):
    """Qwen3-VL config: "4b" is the published 4B shape; "small" keeps its widths with fewer layers (~0.4 B)."""
    import transformers as tf

    text, vision = dict(QWEN3_VL_4B_TEXT), dict(QWEN3_VL_4B_VISION)
    if scale == "small":
        # Same widths (so kernels and quantization behave as on the real model), fewer layers and a
        # smaller vocabulary: about 0.4 B parameters.
        text.update(hidden_size=1024, num_attention_heads=16, num_key_value_heads=8, head_dim=64,
                    intermediate_size=4096, num_hidden_layers=12, vocab_size=32768,
                    rope_parameters=dict(text["rope_parameters"], mrope_section=[12, 10, 10]))
        vision.update(depth=8, out_hidden_size=1024, deepstack_visual_indexes=[1, 3, 5])
    elif scale != "4b":
        raise ValueError(f"unknown scale {scale!r}: 4b or small")
    return tf.Qwen3VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=True)


def build_bench_model(path: Path, scale: str = "small", seed: int = 0) -> Path:
    """Save a random-weight Qwen3-VL of ``scale`` (bf16) with a tiny-model processor to ``path``."""
    import torch
    import transformers as tf

    _, _, processor = _qwen("qwen3_vl")
    config = bench_config(scale)
    tokens = processor.tokenizer
    config.image_token_id, config.video_token_id, config.vision_start_token_id, config.vision_end_token_id = _ids(
        tokens, "<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")
    torch.manual_seed(seed)
    with torch.device("cpu"):
        model = tf.Qwen3VLForConditionalGeneration(config).to(torch.bfloat16).eval()
    model.generation_config.eos_token_id = tokens.convert_tokens_to_ids("<|im_end|>")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
