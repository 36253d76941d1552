"""Greedy steps on a static cache (docvision/models/decode.py), here without a graph (CPU): the same tokens and
the same scores at every step as generate() on the tiny float32 Qwen3-VL, from scratch and after a reused
prefix, and the same answers through the backend with and without it."""

from __future__ import annotations

import pytest
import torch

from docvision.models import decode
from docvision.models import transformers as tb
from tests.models.test_prefix import QUESTIONS, two_pages
from tests.models.test_transformers import page_view

pytestmark = pytest.mark.model


class _Quiet:
    def put(self, value) -> None:
        pass

    def end(self) -> None:
        pass


@pytest.fixture()
def backend(tiny_model_dir):
    backend = tb.TransformersBackend(model=str(tiny_model_dir("qwen3_vl")), device="cpu", quant="none",
                                     dtype="float32", prefix_cache_mb=64)
    backend.model.generation_config.eos_token_id = None  # no early stop: compare every step
    yield backend
    backend.close()


def eager(backend, inputs, steps: int):
    """generate()'s sequence and per-step scores for ``inputs``."""
    with torch.inference_mode():
        out = backend.model.generate(**inputs, max_new_tokens=steps, do_sample=False, output_scores=True,
                                     return_dict_in_generate=True, pad_token_id=backend._pad_id())
    return out.sequences, torch.stack(out.scores)[:, 0]


def stepped(backend, inputs, steps: int):
    """The static-cache path's sequence and per-step scores (the first from generate's prefill)."""
    from transformers.cache_utils import DynamicCache

    graphs, seen = decode.Graphs(backend.model), []
    step = decode.GraphDecoder._step

    def recorded(self):
        chosen = step(self)
        seen.append(self.logits[0].clone())
        return chosen

    decode.GraphDecoder._step = recorded
    try:
        with torch.inference_mode():
            first = backend.model.generate(**inputs, max_new_tokens=1, do_sample=False, output_scores=True,
                                           return_dict_in_generate=True, pad_token_id=backend._pad_id())
            sequence = graphs.generate(inputs, DynamicCache(config=backend.model.config), steps, _Quiet(),
                                       backend._pad_id())
    finally:
        decode.GraphDecoder._step = step
    return sequence, torch.stack([first.scores[0][0], *seen[:steps - 1]])


def inputs_for(backend, views, question: str) -> dict:
    return dict(backend.prepare(views, question))


def test_static_steps_choose_and_score_as_generate_does(backend):
    inputs = inputs_for(backend, [page_view(backend.tile, 4)], QUESTIONS[0])
    sequence, scores = eager(backend, inputs, 12)
    mine, my_scores = stepped(backend, inputs, 12)
    assert torch.equal(sequence, mine)
    assert my_scores.shape == scores.shape and torch.allclose(my_scores, scores, atol=1e-4, rtol=1e-4)


def test_the_backend_answers_alike_with_and_without_static_steps(backend, tiny_model_dir):
    """Through generate(): pages A then B then A (reused prefixes, other rope deltas), streamed text too."""
    plain = tb.TransformersBackend(model=str(tiny_model_dir("qwen3_vl")), device="cpu", quant="none",
                                   dtype="float32", prefix_cache_mb=64)
    plain.model.generation_config.eos_token_id = None
    assert plain.graphs is None  # on a CPU the backend leaves generate() alone ...
    backend.graphs = decode.Graphs(backend.model)  # ... so this one is given the static path by hand
    pages_a, pages_b = two_pages(backend.tile), [page_view(backend.tile, 1, size=(600, 600))]
    for views, question in [(pages_a, QUESTIONS[0]), (pages_a, QUESTIONS[1]), (pages_b, QUESTIONS[2]),
                            (pages_a, QUESTIONS[2])]:
        streamed: list[str] = []
        mine = backend.generate(views, question, max_new_tokens=8, on_text=streamed.append)
        theirs = plain.generate(views, question, max_new_tokens=8)
        assert (mine.text, mine.new_tokens, mine.cached_prefix_tokens) == \
            (theirs.text, theirs.new_tokens, theirs.cached_prefix_tokens)
        assert "".join(streamed).strip() == mine.text
    assert backend.graphs.decoder is not None and backend.graphs.decoder.capacity % decode.CAPACITY_STEP == 0
    plain.close()


def test_only_bare_greedy_search_takes_the_static_path():
    from transformers import GenerationConfig

    assert decode.plain_greedy(GenerationConfig(do_sample=False))
    assert not decode.plain_greedy(GenerationConfig(repetition_penalty=1.1))
    assert not decode.plain_greedy(GenerationConfig(no_repeat_ngram_size=3))
    assert decode.capacity_for(1) == decode.CAPACITY_STEP and decode.capacity_for(1025) == 2 * decode.CAPACITY_STEP


@pytest.fixture(scope="module")
def ixc_dir(tmp_path_factory):
    from tests.tinyixc import build_tiny_ixc

    return build_tiny_ixc(tmp_path_factory.mktemp("ixc-decode"))


def test_ixc_static_steps_score_as_generate_and_answer_alike(ixc_dir):
    """IXC2-4KHD generates from embeddings: the steps take one row of positions and the static cache's size
    for the rope's length (models/ixc/model.py); scores match generate(), and answers through the backend."""
    from docvision.models.ixc import IXC_GRAPH_ROWS
    from docvision.models.ixc.backend import IXCBackend
    from tests.models.test_ixc import page_view as ixc_page

    backend = IXCBackend(model=str(ixc_dir), device="cpu", quant="none", dtype="float32", prefix_cache_mb=64)
    plain = IXCBackend(model=str(ixc_dir), device="cpu", quant="none", dtype="float32", prefix_cache_mb=64)
    assert backend.graphs is None  # CPU: generate() unless given the steps by hand
    backend.graphs = decode.Graphs(backend.model, rows=IXC_GRAPH_ROWS)
    for model in (backend.model, plain.model):
        model.generation_config.eos_token_id = None
    request = backend.prepare([ixc_page()], QUESTIONS[0])
    run = dict(inputs_embeds=request.embeds, image_mask=request.image_mask,
               attention_mask=torch.ones(request.embeds.shape[:2], dtype=torch.long))
    seen, step = [], decode.GraphDecoder._step

    def recorded(self):
        chosen = step(self)
        seen.append(self.logits[0].clone())
        return chosen

    with torch.inference_mode():
        out = plain.model.generate(**run, max_new_tokens=10, output_scores=True, return_dict_in_generate=True)
        decode.GraphDecoder._step = recorded
        try:
            mine = backend.graphs.generate(run, decode.cache_or_new(None, backend.model), 10, _Quiet())
        finally:
            decode.GraphDecoder._step = step
    assert torch.equal(out.sequences, mine)
    assert torch.allclose(torch.stack(seen), torch.stack(out.scores[1:])[:, 0], atol=1e-4, rtol=1e-4)
    for question in QUESTIONS:  # the second and third reuse the pages' prefix
        a, b = backend.generate([ixc_page()], question, max_new_tokens=6), plain.generate([ixc_page()], question,
                                                                                          max_new_tokens=6)
        assert (a.text, a.new_tokens) == (b.text, b.new_tokens)
