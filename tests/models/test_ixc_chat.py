"""InternLM-XComposer2-4KHD without weights: the chat format, the tokenizer setup against SentencePiece
itself (what the reference tokenizer calls), stop tokens, and recognising the checkpoint by its config."""

from __future__ import annotations

import json

import pytest

from docvision.models.ixc import chat, is_ixc
from docvision.tiling import plan
from tests.tinyixc import official_config, train_tokenizer

OFFICIAL = official_config({"hidden_size": 4096}, None, 92544)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ixc-tokenizer")
    train_tokenizer(folder)
    return folder


def test_pieces_follow_the_published_format():
    one = chat.pieces(["page 1"], "What is the total?")
    assert one == [f"[UNUSED_TOKEN_146]system\n{chat.META_INSTRUCTION}[UNUSED_TOKEN_145]\n[UNUSED_TOKEN_146]user\n",
                   "What is the total?[UNUSED_TOKEN_145]\n[UNUSED_TOKEN_146]assistant\n"]
    two = chat.pieces(["page 1", "page 2"], "Compare.", system="Be brief.")
    assert two == ["[UNUSED_TOKEN_146]system\nBe brief.[UNUSED_TOKEN_145]\n[UNUSED_TOKEN_146]user\npage 1: ",
                   "\npage 2: ", "\nCompare.[UNUSED_TOKEN_145]\n[UNUSED_TOKEN_146]assistant\n"]
    assert chat.pieces([], "Hi", system="") == ["[UNUSED_TOKEN_146]user\nHi[UNUSED_TOKEN_145]\n[UNUSED_TOKEN_146]assistant\n"]
    # A question quoting the placeholder cannot open a third image slot.
    assert len(chat.pieces(["p"], "what does <ImageHere> mean?")) == 2
    assert "InternLM-XComposer" in chat.META_INSTRUCTION


def test_tokenizer_encodes_each_piece_like_sentencepiece_with_one_bos(tokenizer_dir):
    """The reference tokenises every piece with sp_model.encode and one BOS, no prefix space."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=str(tokenizer_dir / "tokenizer.model"))
    tokenizer = chat.load_tokenizer(tokenizer_dir)
    samples = chat.pieces(["page 1", "page 2"], " What is the total due? 1,234.50 中文") + [
        "the", " the", "answer\n\n  table", "[UNUSED_TOKEN_146]user\n"]
    for piece in samples:
        assert chat.encode(tokenizer, piece) == [processor.bos_id()] + processor.encode(piece), piece
    # The two chat markers are whole pieces, and no piece starts with a space marker.
    begin = chat.encode(tokenizer, "[UNUSED_TOKEN_146]user\n")
    assert begin[1] == processor.piece_to_id("[UNUSED_TOKEN_146]")
    assert not tokenizer.convert_ids_to_tokens(chat.encode(tokenizer, "user"))[1].startswith("▁")


def test_default_llama_settings_would_not_match(tokenizer_dir):
    """Why load_tokenizer passes its options: transformers' defaults add a prefix space."""
    import sentencepiece as spm
    from transformers import LlamaTokenizer

    processor = spm.SentencePieceProcessor(model_file=str(tokenizer_dir / "tokenizer.model"))
    default = LlamaTokenizer.from_pretrained(tokenizer_dir)
    piece = "user answer"
    assert default(piece)["input_ids"] != [processor.bos_id()] + processor.encode(piece)


def test_stops_at_the_end_of_turn_piece(tokenizer_dir):
    tokenizer = chat.load_tokenizer(tokenizer_dir)
    end = tokenizer.convert_tokens_to_ids("[UNUSED_TOKEN_145]")
    assert chat.stop_ids(tokenizer) == [tokenizer.eos_token_id, end] and end != tokenizer.unk_token_id
    ids = chat.encode(tokenizer, "the total[UNUSED_TOKEN_145]\n[UNUSED_TOKEN_146]user\nmore")[1:]
    decoded = tokenizer.decode(ids, skip_special_tokens=True)
    assert "[UNUSED_TOKEN_145]" in decoded  # an ordinary piece: decoding keeps it...
    assert chat.cut(decoded) == "the total"  # ...so the answer is cut there


def test_checkpoint_recognised_by_config_not_name():
    assert is_ixc(OFFICIAL)
    assert is_ixc({"model_type": "internlm2", "architectures": ["InternLMXComposer2ForCausalLM"]})
    chat_model = {"model_type": "internlm2", "architectures": ["InternLM2ForCausalLM"],
                  "auto_map": {"AutoModelForCausalLM": "modeling_internlm2.InternLM2ForCausalLM"}}
    assert not is_ixc(chat_model) and not is_ixc({"model_type": "qwen3_vl"})


def test_family_tile_and_visual_tokens_are_the_4khd_formula():
    from docvision.models import families

    family = families.detect(OFFICIAL)
    assert isinstance(family, families.IXCFamily) and family.name == "ixc" and family.tile == 336
    table = {((1000, 1000), 55): 7297, ((2550, 3300), 25): 3097, ((3840, 1600), 9): 1333, ((816, 5133), 9): 1093}
    for (size, hd), tokens in table.items():
        assert family.visual_tokens(plan(size, hd, family.tile)) == tokens


def test_registry_accepts_the_checkpoint_and_lists_the_alias(tmp_path):
    from docvision.models import registry

    (tmp_path / "config.json").write_text(json.dumps(OFFICIAL))
    assert registry.resolve(str(tmp_path)).config["architectures"] == ["InternLMXComposer2ForCausalLM"]
    model_id, note = registry.ALIASES["ixc-4khd"]
    assert model_id == "internlm/internlm-xcomposer2-4khd-7b"
    assert "research" in note and "commercial use after application" in note and "bf16" in note and "NF4" in note


def test_served_model_name_gives_the_family():
    from docvision.models.openai import family_of

    for served in ("internlm/internlm-xcomposer2-4khd-7b", "internlm-xcomposer2-4khd-7b", "ixc-4khd"):
        assert family_of(served).name == "ixc", served
    assert family_of("internlm/internlm-xcomposer2-vl-7b").name != "ixc"


def test_download_takes_bin_shards_only_when_there_are_no_safetensors(monkeypatch):
    import huggingface_hub

    from docvision.models import registry

    listing = ["config.json", "pytorch_model-00001-of-00002.bin", "pytorch_model.bin.index.json"]
    monkeypatch.setattr(huggingface_hub, "list_repo_files", lambda model_id: listing)
    assert "pytorch_model*.bin" in registry._download_patterns("internlm/internlm-xcomposer2-4khd-7b")
    listing.append("model.safetensors")
    assert "pytorch_model*.bin" not in registry._download_patterns("Qwen/Qwen3-VL-4B-Instruct")
