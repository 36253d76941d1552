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
