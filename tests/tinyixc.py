"""A tiny random-weight InternLM-XComposer2-4KHD checkpoint folder, saved the way the official one is.

In: a folder (and sizes). Out: that folder holding what ``internlm/internlm-xcomposer2-4khd-7b`` ships,
shrunk: config.json (model_type internlm2, architectures InternLMXComposer2ForCausalLM, an auto_map to the
remote files, max_length, dynamic rope_scaling, and a small ``vision_config``), weights under the real
tensor names (``wqkv.weight``, ``wqkv.Plora_A.weight``, ``vit.vision_tower.vision_model.*``, ``output.weight``,
``plora_glb_GN``...) in two safetensors or .bin shards with an index, a SentencePiece ``tokenizer.model``
trained here (the two chat pieces as user symbols) with the remote tokenizer's config, and the remote code
files -- which write a marker file if anything ever imports them.

Widths stay multiples of 64 (NF4 on CPU); the CLIP tower keeps 336 px tiles of 14 px patches, so a tile is
still 12 x 12 merged tokens; the adapters keep their real ranks (8 on wqkv, 256 elsewhere).
``bench_shape`` gives the real widths with fewer layers, for the memory benchmark.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

REMOTE_FILES = ("configuration_internlm_xcomposer2.py", "modeling_internlm_xcomposer2.py",
                "modeling_internlm2.py", "build_mlp.py", "ixc_utils.py", "tokenization_internlm_xcomposer2.py")
MARKER = "REMOTE_CODE_RAN"

TINY = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2)
TINY_VISION = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                   image_size=336, patch_size=14)


def bench_shape(layers: int) -> tuple[dict, dict | None]:
    """The 7B's decoder widths with ``layers`` layers, and the real CLIP (no vision_config: the default)."""
    return dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=layers, num_attention_heads=32,
                num_key_value_heads=8, vocab_size=92544), None


def official_config(text: dict, vision: dict | None, vocab_size: int) -> dict:
    """config.json as the 4KHD checkpoint writes it, with ``text`` widths (and a vision_config if given)."""
    config = {
        "architectures": ["InternLMXComposer2ForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_internlm_xcomposer2.InternLMXcomposer2Config",
            "AutoModel": "modeling_internlm_xcomposer2.InternLMXComposer2ForCausalLM",
            "AutoModelForCausalLM": "modeling_internlm_xcomposer2.InternLMXComposer2ForCausalLM",
        },
        "bias": False, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2, "hidden_act": "silu",
        "initializer_range": 0.02, "max_length": 16384, "max_position_embeddings": 32768,
        "model_type": "internlm2", "rms_norm_eps": 1e-05, "rope_scaling": {"factor": 2.0, "type": "dynamic"},
        "rope_theta": 1000000, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.33.2", "use_cache": True, "vocab_size": vocab_size, **text,
    }
    if vision:
        config["vision_config"] = dict(vision)
    return config


def official_names(state: dict) -> dict:
    """Our module names -> the checkpoint's: base weights one level up, CLIP under ``vision_model``."""
    out = {}
    for name, tensor in state.items():
        name = name.replace(".base.weight", ".weight")
        if name.startswith("vit.vision_tower.") and not name.startswith("vit.vision_tower.vision_model."):
            name = "vit.vision_tower.vision_model." + name[len("vit.vision_tower."):]
        out[name] = tensor
    return out


def train_tokenizer(folder: Path, vocab_size: int = 320) -> None:
    """A SentencePiece BPE model like InternLM2's: byte fallback, no dummy prefix, <unk> <s> </s> at
    0 1 2, and [UNUSED_TOKEN_145] / [UNUSED_TOKEN_146] as whole pieces; plus the remote tokenizer config."""
    import sentencepiece as spm

    rng = random.Random(0)
    words = ("the total due invoice page chart revenue poster answer question what which model wins year "
             "sales date number amount table figure report summary system user assistant").split()
    lines = [" ".join(rng.choice(words) for _ in range(12)) + " 0123456789 .,;:!?()\n" for _ in range(400)]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size, model_type="bpe",
        byte_fallback=True, add_dummy_prefix=False, user_defined_symbols=["[UNUSED_TOKEN_145]", "[UNUSED_TOKEN_146]"],
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, character_coverage=1.0, split_digits=True,
        remove_extra_whitespaces=False, normalization_rule_name="identity", minloglevel=2)
    (folder / "tokenizer.model").write_bytes(model.getvalue())
    remote = "tokenization_internlm_xcomposer2.InternLMXComposer2Tokenizer"
    _write_json(folder / "tokenizer_config.json", {
        "auto_map": {"AutoTokenizer": [remote, None]}, "tokenizer_class": "InternLMXComposer2Tokenizer",
        "bos_token": "<s>", "eos_token": "</s>", "pad_token": "</s>", "unk_token": "<unk>",
        "clean_up_tokenization_spaces": False, "model_max_length": 1000000000000000019884624838656})
    _write_json(folder / "special_tokens_map.json",
                {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "</s>", "unk_token": "<unk>"})


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def _write_remote_code(folder: Path) -> None:
    """The remote files, each of which leaves a marker behind if it is ever imported."""
    for name in REMOTE_FILES:
        (folder / name).write_text(
            "from pathlib import Path\n"
            f"Path(__file__).with_name({MARKER!r}).write_text(__name__)\n"
            "raise RuntimeError('remote code of the checkpoint was executed')\n", encoding="utf-8")


def save_shards(state: dict, folder: Path, fmt: str = "safetensors", shards: int = 2) -> None:
    """Write ``state`` as ``shards`` files with an index, named as transformers 4.33 named them."""
    import torch

    names = sorted(state)
    size = -(-len(names) // shards)
    groups = [names[i:i + size] for i in range(0, len(names), size)]
    weight_map, total = {}, 0
    for number, group in enumerate(groups, start=1):
        stem = "model" if fmt == "safetensors" else "pytorch_model"
        suffix = "safetensors" if fmt == "safetensors" else "bin"
        file = f"{stem}-{number:05d}-of-{len(groups):05d}.{suffix}"
        part = {n: state[n].contiguous() for n in group}
        if fmt == "safetensors":
            from safetensors.torch import save_file

            save_file(part, str(folder / file), metadata={"format": "pt"})
        else:
            torch.save(part, folder / file)
        weight_map.update({n: file for n in group})
        total += sum(t.numel() * t.element_size() for t in part.values())
    index = "model.safetensors.index.json" if fmt == "safetensors" else "pytorch_model.bin.index.json"
    _write_json(folder / index, {"metadata": {"total_size": total}, "weight_map": weight_map})


def build_tiny_ixc(folder: Path, fmt: str = "safetensors", text: dict | None = None,
                   vision: dict | None = TINY_VISION, seed: int = 0) -> Path:
    """Build and save a random-weight IXC2-4KHD checkpoint folder (bf16 weights, as published)."""
    import torch

    from docvision.models.ixc.config import IXCConfig
    from docvision.models.ixc.model import IXCForCausalLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = dict(TINY if text is None else text)
    vocab_size = int(text.pop("vocab_size", 320))
    if vocab_size <= 1000:
        train_tokenizer(folder, vocab_size)
    config = official_config(text, vision, vocab_size)
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # built as published: a 7B-wide layer is 0.5 GB, not 1 GB
    try:
        model = IXCForCausalLM(IXCConfig.from_checkpoint(config))
    finally:
        torch.set_default_dtype(previous)
    with torch.no_grad():  # random separators and adapters, so that a test can see them act
        for name, param in model.named_parameters():
            if "Plora_B" in name or "_GN" in name:
                param.normal_(0.0, 0.02 if "Plora_B" in name else 1.0)
    state = official_names(model.state_dict())
    del model
    _write_json(folder / "config.json", config)
    _write_json(folder / "generation_config.json", {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2,
                                                    "max_length": 4480, "transformers_version": "4.33.2"})
    save_shards(state, folder, fmt)
    _write_remote_code(folder)
    return folder


__all__ = ["MARKER", "REMOTE_FILES", "bench_shape", "build_tiny_ixc", "official_config", "official_names",
           "save_shards", "train_tokenizer"]
