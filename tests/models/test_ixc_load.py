"""Loading InternLM-XComposer2-4KHD checkpoints: 4-bit NF4 of exactly the decoder's base projections (on
CPU with bitsandbytes), the pre-quantized cache, .bin shards, and one clear line for folders that are not
a usable 4KHD checkpoint."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from docvision.errors import ModelError, UsageError
from docvision.models.ixc import chat
from docvision.models.ixc.backend import IXCBackend
from tests.models.test_ixc import page_view
from tests.tinyixc import MARKER, build_tiny_ixc

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def ixc_dir(tmp_path_factory):
    return build_tiny_ixc(tmp_path_factory.mktemp("ixc-4khd"))


def test_4bit_quantizes_every_decoder_base_projection_and_nothing_else(ixc_dir, tmp_path, monkeypatch):
    import bitsandbytes as bnb

    monkeypatch.setenv("DOCVISION_CACHE_DIR", str(tmp_path))
    backend = IXCBackend(model=str(ixc_dir), device="cpu", quant="4bit")
    assert backend.info()["quant"] == "4bit" and not backend.from_cache
    model = backend.model
    quantized = {name for name, module in model.named_modules() if isinstance(module, bnb.nn.Linear4bit)}
    bases = {f"model.layers.{i}.{part}.base" for i in range(model.config.num_hidden_layers)
             for part in ("attention.wqkv", "attention.wo", "feed_forward.w1", "feed_forward.w2", "feed_forward.w3")}
    assert quantized == bases
    assert all(model.get_submodule(name).weight.quant_state.quant_type == "nf4" for name in bases)
    for name, param in model.named_parameters():
        if not any(name.startswith(base + ".") for base in bases):
            assert param.dtype == torch.bfloat16, name  # adapters, tower, projector, embeddings, output, GN
    answer = backend.generate([page_view()], "What is the total?", max_new_tokens=4)
    assert answer.visual_tokens == page_view().plan.tokens

    again = IXCBackend(model=str(ixc_dir), device="cpu", quant="4bit")
    assert again.from_cache
    assert {n for n, m in again.model.named_modules() if isinstance(m, bnb.nn.Linear4bit)} == bases
    assert again.generate([page_view()], "What is the total?", max_new_tokens=4).text == answer.text
    piece = chat.pieces(["page 1"], " What is the total due?")[0]
    assert chat.encode(again.tokenizer, piece) == chat.encode(backend.tokenizer, piece)  # the cached tokenizer
    assert not (ixc_dir / MARKER).exists()


def test_bin_shards_load_like_safetensors(ixc_dir, tmp_path_factory):
    """Same seed, .bin shards: the same weights, the same answer."""
    bin_dir = build_tiny_ixc(tmp_path_factory.mktemp("ixc-bin"), fmt="bin")
    assert (bin_dir / "pytorch_model.bin.index.json").is_file() and not list(bin_dir.glob("*.safetensors"))
    from_bin = IXCBackend(model=str(bin_dir), device="cpu", quant="none")
    from_st = IXCBackend(model=str(ixc_dir), device="cpu", quant="none")
    for (name, ours), (_, theirs) in zip(from_bin.model.state_dict().items(), from_st.model.state_dict().items()):
        assert torch.equal(ours, theirs), name
    view = page_view()
    assert from_bin.generate([view], "Q?", max_new_tokens=3).text == from_st.generate([view], "Q?", max_new_tokens=3).text


def _copy_without(source, tmp_path, *drop: str):
    """A copy of the checkpoint whose index no longer lists ``drop`` (and whose shards lack them)."""
    from safetensors.torch import load_file, save_file

    target = tmp_path / "copy"
    shutil.copytree(source, target)
    index = json.loads((target / "model.safetensors.index.json").read_text())
    for shard in set(index["weight_map"].values()):
        tensors = {k: v for k, v in load_file(str(target / shard)).items() if k not in drop}
        save_file(tensors, str(target / shard), metadata={"format": "pt"})
    index["weight_map"] = {k: v for k, v in index["weight_map"].items() if k not in drop}
    (target / "model.safetensors.index.json").write_text(json.dumps(index))
    return target


def test_bad_folders_fail_in_one_line(ixc_dir, tmp_path):
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    shutil.copy(ixc_dir / "config.json", no_weights / "config.json")
    with pytest.raises(ModelError, match="has no weights"):
        IXCBackend(model=str(no_weights), device="cpu", quant="none")
    not_4khd = _copy_without(ixc_dir, tmp_path, "plora_glb_GN", "plora_sub_GN")
    with pytest.raises(ModelError, match="without the 4KHD vision parts"):
        IXCBackend(model=str(not_4khd), device="cpu", quant="none")
    (tmp_path / "copy").rename(tmp_path / "old")
    incomplete = _copy_without(ixc_dir, tmp_path, "model.layers.1.feed_forward.w2.Plora_A.weight")
    with pytest.raises(ModelError, match="weights missing or of the wrong shape: 1 ") as caught:
        IXCBackend(model=str(incomplete), device="cpu", quant="none")
    assert "\n" not in str(caught.value)
    with pytest.raises(UsageError, match="--quant none"):
        IXCBackend(model=str(ixc_dir), device="cpu", quant="4bit", dtype="float16")


def test_prompt_longer_than_the_model_reads_is_refused(ixc_dir, tmp_path):
    """The reference silently cuts the input (the question with it) at max_length; we say so."""
    short = tmp_path / "short"
    shutil.copytree(ixc_dir, short)
    config = json.loads((short / "config.json").read_text())
    config["max_length"] = 1000
    (short / "config.json").write_text(json.dumps(config))
    backend = IXCBackend(model=str(short), device="cpu", quant="none")
    backend.generate([page_view((850, 1100), 1)], "Q?", max_new_tokens=1)  # 157 + 144 + text: fits
    with pytest.raises(ModelError, match="lower --hd"):
        backend.generate([page_view((850, 1100), 9)], "Q?", max_new_tokens=1)
