"""The native InternLM-XComposer2-4KHD on a tiny random checkpoint saved like the official one, loaded
through the path a user's download takes: no remote code, every weight found, generation, visual tokens
against the 4KHD formula, where the image tokens sit, Partial LoRA on image positions only, and the
reuse of a prompt prefix's cache."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image, ImageDraw

from docvision.errors import ModelError
from docvision.models.base import PageView
from docvision.models.ixc import chat, vision
from docvision.models.ixc.backend import IXCBackend
from docvision.models.ixc.decoder import PLoRALinear
from docvision.tiling import ixc_tokens, plan
from tests.tinyixc import MARKER, build_tiny_ixc

pytestmark = pytest.mark.model


def page_view(size=(850, 1100), hd=4, label="page 1", tile=336) -> PageView:
    page = Image.new("RGB", size, "white")
    ImageDraw.Draw(page).text((40, 40), "Total due: 1,234.50", fill="black")
    page_plan = plan(size, hd, tile)
    board = Image.new("RGB", page_plan.canvas_size, "white")
    board.paste(page.resize(page_plan.content_size), page_plan.content_box[:2])
    return PageView(label, board, page_plan)


@pytest.fixture(scope="module")
def ixc_dir(tmp_path_factory):
    return build_tiny_ixc(tmp_path_factory.mktemp("ixc-4khd"))


@pytest.fixture(scope="module")
def backend(ixc_dir):
    return IXCBackend(model=str(ixc_dir), device="cpu", quant="auto")


def checkpoint_tensor(folder, name):
    from safetensors import safe_open

    shard = json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"][name]
    with safe_open(str(folder / shard), "pt") as handle:
        return handle.get_tensor(name)


def test_loads_the_official_layout_without_running_its_code(ixc_dir, backend):
    from docvision.models import LocalSettings, load_backend

    assert not (ixc_dir / MARKER).exists()
    assert backend.info()["family"] == "ixc" and backend.info()["quant"] == "none"
    assert backend.info()["dtype"] == "bfloat16" and backend.tile == 336
    model = backend.model
    for ours, theirs in [(model.model.layers[1].feed_forward.w2.base.weight, "model.layers.1.feed_forward.w2.weight"),
                         (model.model.layers[0].attention.wqkv.Plora_B.weight,
                          "model.layers.0.attention.wqkv.Plora_B.weight"),
                         (model.vit.vision_tower.embeddings.class_embedding,
                          "vit.vision_tower.vision_model.embeddings.class_embedding"),
                         (model.plora_sub_GN, "plora_sub_GN"), (model.output.weight, "output.weight")]:
        assert torch.equal(ours, checkpoint_tensor(ixc_dir, theirs)), theirs
    routed = load_backend(LocalSettings(model=str(ixc_dir), device="cpu", quant="none"))
    assert type(routed) is IXCBackend
    assert not (ixc_dir / MARKER).exists()


def test_generation_runs_streams_and_counts(backend):
    pieces: list[str] = []
    view = page_view()
    generation = backend.generate([view], "What is the total?", max_new_tokens=6, on_text=pieces.append)
    assert generation.visual_tokens == backend.visual_tokens(view.plan) == ixc_tokens(view.plan.grid)
    assert generation.prompt_tokens > generation.visual_tokens and 1 <= generation.new_tokens <= 6
    assert "".join(pieces).strip() == generation.text
    assert generation.timings["prefill_s"] > 0 and "tokens_per_s" in generation.timings
    again = backend.generate([view], "What is the total?", max_new_tokens=6)
    assert again.text == generation.text  # greedy, and no uninitialised buffer anywhere


def test_a_call_with_on_status_says_it_encodes_then_counts_tokens(backend):
    view = page_view()
    said: list[str] = []
    backend.on_status = said.append
    try:
        backend.generate([view], "What is the total?", max_new_tokens=4)
    finally:
        backend.on_status = None
    # (with "(N prompt tokens reused)" after it when an earlier test asked about the same page)
    assert said[0].startswith(f"encoding {ixc_tokens(view.plan.grid):,} visual tokens of 1 page")
    assert said[1] == "writing: 1 token"


@pytest.mark.parametrize("size,hd", [((3840, 1600), 9), ((816, 5133), 9), ((2550, 3300), 25), ((1000, 1000), 55)])
def test_visual_tokens_from_the_model_input_equal_the_formula(backend, size, hd):
    """Landscape, portrait, HD-9/25/55: the image positions of the real embedding sequence."""
    view = page_view(size, hd)
    with torch.inference_mode():
        request = backend.prepare([view], "Q?")
    cols, rows = view.plan.grid
    assert request.visual_tokens == (cols * rows + 1) * 144 + 1 + (rows + 1) * 12 == view.plan.tokens


def test_several_pages_in_one_call(backend):
    views = [page_view((850, 1100), 4, "page 1"), page_view((1100, 850), 2, "page 2")]
    generation = backend.generate(views, "Which page has the total?", max_new_tokens=3)
    assert generation.visual_tokens == sum(ixc_tokens(v.plan.grid) for v in views)


def test_image_tokens_sit_where_imagehere_was(backend):
    views = [page_view((850, 1100), 1, "page 1"), page_view((1100, 850), 2, "page 2")]
    with torch.inference_mode():
        request = backend.prepare(views, "Compare them.")
        pixels = [vision.canvas_pixels(v.image, 336) for v in views]
        images = backend.model.embed_pages([p for p, _ in pixels], [g for _, g in pixels])
        pieces = [chat.encode(backend.tokenizer, t) for t in chat.pieces([v.label for v in views], "Compare them.")]
        embed = backend.model.get_input_embeddings()
        start = 0
        for index, ids in enumerate(pieces):
            text = request.embeds[0, start:start + len(ids)]
            assert torch.equal(text, embed(torch.tensor(ids))) and not request.image_mask[0, start:start + len(ids)].any()
            start += len(ids)
            if index < len(images):
                span = slice(start, start + images[index].shape[0])
                assert torch.equal(request.embeds[0, span], images[index]) and request.image_mask[0, span].all()
                start = span.stop
    assert start == request.length and request.prefix_len == request.length - len(pieces[-1])


def test_plora_adapters_fire_on_image_positions_only(backend):
    """Counted during a real forward: the adapters see exactly the image positions, never the text."""
    view = page_view((850, 1100), 1)
    seen: list[int] = []
    adapter = backend.model.model.layers[0].feed_forward.w1.Plora_A
    hook = adapter.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    try:
        backend.generate([view], "Q?", max_new_tokens=2)
    finally:
        hook.remove()
    assert seen == [ixc_tokens(view.plan.grid)]  # the prompt's image rows once; generated tokens never
    layer = PLoRALinear(64, 64, 8, 16.0)
    torch.nn.init.normal_(layer.Plora_B.weight)
    x = torch.randn(1, 6, 64)
    with torch.no_grad():
        out = layer(x, torch.tensor([2, 3]))
        base = layer.base(x)
    changed = (out != base).any(-1)[0].tolist()
    assert changed == [False, False, True, True, False, False]


def test_stops_at_the_end_of_turn_piece(backend):
    """A model that wants to say [UNUSED_TOKEN_145] first ends there, with an empty answer."""
    original = backend.model.output
    end = backend.tokenizer.convert_tokens_to_ids(chat.END)
    biased = torch.nn.Linear(original.in_features, original.out_features, dtype=original.weight.dtype)
    with torch.no_grad():
        biased.weight.copy_(original.weight)
        biased.bias.zero_()
        biased.bias[end] = 1e4
    backend.model.output = biased
    try:
        pieces: list[str] = []
        generation = backend.generate([page_view()], "Q?", max_new_tokens=8, on_text=pieces.append)
    finally:
        backend.model.output = original
    assert generation.new_tokens == 1 and generation.text == "" and "".join(pieces) == ""


def test_prefix_cache_reuse_equals_a_run_from_scratch(ixc_dir):
    """float32: the pages' cache, reused for two questions, gives the fresh run's tokens one for one."""
    exact = IXCBackend(model=str(ixc_dir), device="cpu", quant="none", dtype="float32")
    exact.model.generation_config.eos_token_id = [-1]  # no early stop: compare all 12 tokens
    produced: list[torch.Tensor] = []
    generate = exact.model.generate
    exact.model.generate = lambda **kwargs: produced.append(generate(**kwargs)) or produced[-1]
    views = [page_view((850, 1100), 2)]
    prefix_len = exact.prepare(views, "x").prefix_len
    _, prefix = exact.answer(views, "What is the total?", max_new_tokens=12, keep_prefix=True)
    assert prefix.get_seq_length() == prefix_len
    for question in ("What is the total?", "Who is the payee?"):
        fresh = exact.generate(views, question, max_new_tokens=12)
        reused, handed_back = exact.answer(views, question, max_new_tokens=12, prefix_cache=prefix)
        assert torch.equal(produced[-1], produced[-2]) and produced[-1].shape[-1] == 12
        assert (reused.text, reused.visual_tokens) == (fresh.text, fresh.visual_tokens) and handed_back is prefix
        assert prefix.get_seq_length() == prefix_len  # the cache handed in is not changed by its use
    assert torch.equal(produced[0], produced[1])  # the run that made the prefix answered like a fresh one
    with pytest.raises(ModelError, match="belongs to other pages"):
        exact.answer([page_view((850, 1100), 4)], "What is the total?", max_new_tokens=2, prefix_cache=prefix)


def test_docvision_ask_runs_the_native_model(ixc_dir, tmp_path):
    """What a user types (`docvision ask poster.png ... --model FOLDER`), with the record's token counts."""
    from tests.helpers import json_lines, run_cli

    poster = tmp_path / "poster.png"
    image = Image.new("RGB", (600, 1800), "white")
    ImageDraw.Draw(image).text((40, 40), "SPRING FAIR 2024", fill="black")
    image.save(poster)
    proc = run_cli("ask", poster, "What is the title?", "--model", ixc_dir, "--hd", "4", "--max-new-tokens", "3",
                   "--device", "cpu", "--json")
    assert proc.returncode == 0, proc.stderr
    record = json_lines(proc.stdout)[0]
    assert record["status"] == "ok" and record["model"]["family"] == "ixc"
    expected = plan((600, 1800), 4).tokens
    assert record["resolution"]["visual_tokens"] == expected  # counted from the embeddings the model received
    assert not (ixc_dir / MARKER).exists()


def test_text_decoder_matches_transformers_llama(ixc_dir):
    """Without image positions InternLM2 is Llama: unpack wqkv per KV group into q/k/v, rename the rest,
    and transformers' own LlamaForCausalLM must give the same logits (packing, GQA, rotary, norms)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from docvision.models.ixc.load import _from_pretrained

    ours = _from_pretrained(ixc_dir, "float32", "cpu")
    c = ours.config
    llama = LlamaForCausalLM(LlamaConfig(
        vocab_size=c.vocab_size, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
        num_hidden_layers=c.num_hidden_layers, num_attention_heads=c.num_attention_heads,
        num_key_value_heads=c.num_key_value_heads, rms_norm_eps=c.rms_norm_eps, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": c.rope_theta}, max_position_embeddings=4096)).eval()
    groups, dim = c.num_attention_heads // c.num_key_value_heads, c.head_dim
    state = {"model.embed_tokens.weight": ours.model.tok_embeddings.weight, "model.norm.weight": ours.model.norm.weight,
             "lm_head.weight": ours.output.weight}
    for i, layer in enumerate(ours.model.layers):
        packed = layer.attention.wqkv.base.weight.view(c.num_key_value_heads, groups + 2, dim, -1)
        names = {"self_attn.q_proj": packed[:, :groups].reshape(-1, c.hidden_size),
                 "self_attn.k_proj": packed[:, groups].reshape(-1, c.hidden_size),
                 "self_attn.v_proj": packed[:, groups + 1].reshape(-1, c.hidden_size),
                 "self_attn.o_proj": layer.attention.wo.base.weight, "mlp.gate_proj": layer.feed_forward.w1.base.weight,
                 "mlp.up_proj": layer.feed_forward.w3.base.weight, "mlp.down_proj": layer.feed_forward.w2.base.weight}
        state.update({f"model.layers.{i}.{k}.weight": v for k, v in names.items()})
        state[f"model.layers.{i}.input_layernorm.weight"] = layer.attention_norm.weight
        state[f"model.layers.{i}.post_attention_layernorm.weight"] = layer.ffn_norm.weight
    llama.load_state_dict(state)
    ids = torch.randint(3, c.vocab_size, (1, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = llama(input_ids=ids).logits
        got = ours(input_ids=ids, use_cache=False).logits
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4), float((got - expected).abs().max())


def test_layout_places_merged_patches_and_separators():
    """Patches labelled by (image, row, col): the 2x2 merge order and the separator positions of 4KHD."""
    cols, rows, side, width = 2, 1, 24, 1
    labels = torch.tensor([[[image * 10000 + r * 100 + c] for r in range(side) for c in range(side)]
                           for image in range(1 + cols * rows)], dtype=torch.float32)  # (3, 576, 1)
    sub, glb = torch.full((1, 1, 1, 4), -1.0), torch.full((1, 1, 4), -2.0)
    tokens = vision.layout(vision.merge_2x2(labels), (cols, rows), glb, sub)
    assert tokens.shape == (ixc_tokens((cols, rows)), 4 * width)
    assert tokens[0].tolist() == [0, 1, 100, 101]  # global view, first 2x2 block, row by row
    assert tokens[1].tolist() == [2, 3, 102, 103]
    assert tokens[12].tolist() == [-1] * 4 and tokens[13].tolist() == [200, 201, 300, 301]  # row separator
    assert tokens[156].tolist() == [-2] * 4  # after 12 global rows of 13: the global separator
    local = tokens[157:].reshape(12 * rows, 12 * cols + 1, 4)
    assert local[0, 0].tolist() == [10000, 10001, 10100, 10101]  # tile 1 (row-major), top-left
    assert local[0, 12].tolist() == [20000, 20001, 20100, 20101]  # the same canvas row continues in tile 2
    assert local[1, 0].tolist() == [10200, 10201, 10300, 10301] and local[0, 24].tolist() == [-1] * 4
