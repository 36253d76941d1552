"""Reused page encodings (docvision/models/prefix.py and the transformers backend): the LRU and its byte
budget on real caches, and, for every family on tiny float32 models, answers with a reused prefix equal to
answers from scratch -- tokens and every step's scores -- across questions, page sets and back."""

from __future__ import annotations

import pytest
import torch
from PIL import ImageDraw

from docvision.models import prefix
from docvision.models import transformers as tb
from docvision.tasks.multipage import build_prompt
from tests.models.test_transformers import page_view

QUESTIONS = ("What is the total?", "Who is the payee?", "When is it due?")


def cache_of(length: int, layers: int = 2, width: int = 16):
    """A real DynamicCache holding ``length`` positions of float32 keys and values."""
    from transformers.cache_utils import DynamicCache

    return DynamicCache(ddp_cache_data=[(torch.randn(1, 2, length, width), torch.randn(1, 2, length, width))
                                        for _ in range(layers)])


def test_lru_keeps_within_its_budget_and_drops_the_least_recently_used():
    one = 2 * 2 * (1 * 2 * 100 * 16) * 4  # layers * (keys, values) * elements * float32
    assert prefix.cache_bytes(cache_of(100)) == one
    store = prefix.PrefixCache(budget_bytes=2 * one + 10)
    for key in "abc":
        assert store.put(key, prefix.Entry(cache=cache_of(100)))
        assert store.nbytes <= store.budget
    assert store.get("a") is None and len(store) == 2  # a was the oldest
    assert store.get("b") is not None  # now b is the most recently used ...
    store.put("d", prefix.Entry(cache=cache_of(100)))
    assert store.get("c") is None and store.get("b") is not None and store.get("d") is not None  # ... so c went
    store.put("d", prefix.Entry(cache=cache_of(50)))  # replacing an entry gives its bytes back
    assert store.nbytes == one + one // 2
    assert not store.put("e", prefix.Entry(cache=cache_of(300)))  # larger than the whole budget: not kept
    assert store.get("e") is None and store.nbytes == one + one // 2


def test_zero_budget_keeps_nothing():
    store = prefix.PrefixCache.from_mb(0)
    assert not store.enabled and not store.put("a", prefix.Entry(cache=cache_of(4))) and len(store) == 0


def test_cache_bytes_counts_a_cropped_cache_by_what_it_still_holds():
    cache = cache_of(100)
    cache.crop(-60)  # views of the old storage: the memory is not given back
    assert cache.get_seq_length() == 40 and prefix.cache_bytes(cache) == prefix.cache_bytes(cache_of(100))
    copied = prefix.copy_prefix(cache, 30)
    assert copied.get_seq_length() == 30 and prefix.cache_bytes(copied) == prefix.cache_bytes(cache_of(30))
    assert cache.get_seq_length() == 40  # the source is left as it was
    assert torch.equal(copied.layers[1].keys, cache.layers[1].keys[..., :30, :])


def test_digest_tells_pages_apart_by_their_pixels_and_options():
    one, same = page_view(336, 1), page_view(336, 1)
    assert prefix.digest([one], None) == prefix.digest([same], None)
    ImageDraw.Draw(same.image).point((5, 5), fill="black")  # one pixel differs
    assert prefix.digest([one], None) != prefix.digest([same], None)
    assert prefix.digest([one], None) != prefix.digest([one], "a system text")
    assert prefix.digest([one], {"max_patches": 1}) != prefix.digest([one], {"max_patches": 2})


def test_common_prefix():
    a, b = torch.tensor([1, 2, 3, 4]), torch.tensor([1, 2, 9, 4, 5])
    assert prefix.common_prefix(a, b) == 2 and prefix.common_prefix(a, a) == 4
    assert prefix.common_prefix(a, torch.tensor([], dtype=torch.long)) == 0


class Recorded:
    """A float32 backend whose generate calls record every sequence and every step's scores."""

    def __init__(self, folder, prefix_cache_mb: int):
        self.backend = tb.TransformersBackend(model=str(folder), device="cpu", quant="none", dtype="float32",
                                              prefix_cache_mb=prefix_cache_mb)
        self.backend.model.generation_config.eos_token_id = None  # no early stop: compare every step
        self.runs: list[tuple[torch.Tensor, torch.Tensor]] = []
        generate = self.backend.model.generate

        def recorded(**kwargs):
            out = generate(**kwargs, output_scores=True, return_dict_in_generate=True)
            self.runs.append((out.sequences, torch.stack(out.scores)))
            return out.sequences

        self.backend.model.generate = recorded

    def ask(self, views, question: str):
        generation = self.backend.generate(views, build_prompt(question, [v.label for v in views]),
                                           max_new_tokens=6)
        return generation, self.runs[-1]


def two_pages(tile: int):
    first, second = page_view(tile, 2), page_view(tile, 4, size=(1100, 850))
    second.label = "page 2"
    return [first, second]


@pytest.mark.model
@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl", "internvl", "idefics3"])
def test_reused_prefix_answers_like_a_run_from_scratch(tiny_model_dir, family):
    """Questions about pages A, then B, then A again (Qwen places tokens with per-pages rope deltas that a
    stale value would shift: the scores, not only the tokens, must match)."""
    fresh = Recorded(tiny_model_dir(family), prefix_cache_mb=0)
    reused = Recorded(tiny_model_dir(family), prefix_cache_mb=64)
    pages_a, pages_b = two_pages(fresh.backend.tile), [page_view(fresh.backend.tile, 1, size=(600, 600))]
    plan = [(pages_a, QUESTIONS[0]), (pages_a, QUESTIONS[1]), (pages_b, QUESTIONS[0]), (pages_a, QUESTIONS[2]),
            (pages_b, QUESTIONS[1]), (pages_a, QUESTIONS[2])]
    hits = []
    for views, question in plan:
        expected, (tokens, scores) = fresh.ask(views, question)
        got, (tokens_again, scores_again) = reused.ask(views, question)
        assert torch.equal(tokens, tokens_again) and tokens.shape[-1] == expected.prompt_tokens + 6
        assert torch.allclose(scores, scores_again, atol=1e-4, rtol=0), (family, question)
        assert (got.text, got.prompt_tokens, got.visual_tokens) == (expected.text, expected.prompt_tokens,
                                                                    expected.visual_tokens)
        assert expected.cached_prefix_tokens == 0
        hits.append(got.cached_prefix_tokens)
    # First sight of A and of B: nothing to reuse. After that, all the images and the instruction before
    # the question; the same question again reuses all but the prompt's last token.
    assert hits[0] == hits[2] == 0
    for index in (1, 3, 4):
        views, question = plan[index]
        ids = prompt_ids(reused, views, question)
        image_at = torch.nonzero(ids == reused.backend.image_token_id())
        assert int(image_at[-1, 0]) + 1 < hits[index] < ids.shape[0] - len(question)
    assert hits[5] == prompt_ids(reused, *plan[5]).shape[0] - 1
    assert len(reused.backend.prefixes) == 2 and len(fresh.backend.prefixes) == 0


def prompt_ids(recorded: Recorded, views, question: str) -> torch.Tensor:
    return recorded.backend.prepare(views, build_prompt(question, [v.label for v in views]))["input_ids"][0]


@pytest.mark.model
def test_the_cache_stays_under_its_byte_budget(tiny_model_dir):
    """1 MB holds two one-page prompts of the tiny Qwen2.5-VL (~0.37 MB each), not three: the oldest goes, and
    a page whose entry went is encoded again (and answered the same)."""
    recorded = Recorded(tiny_model_dir("qwen2_5_vl"), prefix_cache_mb=1)
    backend = recorded.backend
    pages = [[page_view(backend.tile, 1, size=(600 + 50 * i, 600))] for i in range(3)]
    first, _ = recorded.ask(pages[0], QUESTIONS[0])
    for views in pages[1:]:
        recorded.ask(views, QUESTIONS[0])
        assert backend.prefixes.nbytes <= backend.prefixes.budget == 1024 * 1024
        assert len(backend.prefixes) == 2
    assert recorded.ask(pages[2], QUESTIONS[1])[0].cached_prefix_tokens > 0
    again, _ = recorded.ask(pages[0], QUESTIONS[0])
    assert again.cached_prefix_tokens == 0 and again.text == first.text  # evicted, so encoded afresh
    assert backend.prefixes.nbytes <= backend.prefixes.budget


@pytest.mark.model
def test_a_text_only_call_and_a_zero_budget_reuse_nothing(tiny_model_dir):
    backend = tb.TransformersBackend(model=str(tiny_model_dir("internvl")), device="cpu", quant="none",
                                     prefix_cache_mb=0)
    view = page_view(backend.tile, 1)
    for _ in range(2):
        assert backend.generate([view], "What is the total?", max_new_tokens=2).cached_prefix_tokens == 0
    assert len(backend.prefixes) == 0
    backend = tb.TransformersBackend(model=str(tiny_model_dir("internvl")), device="cpu", quant="none")
    for _ in range(2):
        assert backend.generate([], "Combine: 41 MW, 44 MW.", max_new_tokens=2).cached_prefix_tokens == 0
    assert len(backend.prefixes) == 0
    timings = backend.generate([view], "Total?", max_new_tokens=2).timings
    assert timings["first_token_s"] >= timings["prefill_s"] > 0 and timings["prepare_s"] > 0


@pytest.mark.model
def test_records_of_later_questions_about_a_pdf_say_what_was_reused(tiny_model_dir, tmp_path):
    """Through the run engine over a real PDF: the pages are drawn again for the second question, to the
    same pixels, so their encoding is reused; the record's usage says how many tokens, the answer is the
    one a model without reuse gives."""
    from docvision.tasks.ask import AskTask
    from tests.helpers import run_task
    from tests.scripted import FILLER, make_pdf

    pdf = make_pdf(tmp_path / "report.pdf", [f"Invoice total: {100 + i} EUR. " + FILLER for i in range(2)])
    folder = tiny_model_dir("qwen2_5_vl")
    reused = tb.TransformersBackend(model=str(folder), device="cpu", quant="none", dtype="float32")
    fresh = tb.TransformersBackend(model=str(folder), device="cpu", quant="none", dtype="float32",
                                   prefix_cache_mb=0)
    records = {}
    for name, backend in (("reused", reused), ("fresh", fresh)):
        records[name] = [run_task([pdf], AskTask(question, hd=2, max_new_tokens=4, show_selected=True), backend,
                                  cache_dir=tmp_path / name)[0][0] for question in QUESTIONS[:2]]
    first, second = records["reused"]
    assert first["status"] == second["status"] == "ok" and first["resolution"]["pages"] == 2
    assert first["usage"]["cached_prefix_tokens"] == 0
    assert first["resolution"]["visual_tokens"] < second["usage"]["cached_prefix_tokens"] < second["usage"][
        "prompt_tokens"]
    assert [r["answer"] for r in records["fresh"]] == [first["answer"], second["answer"]]
    assert all(r["usage"]["cached_prefix_tokens"] == 0 for r in records["fresh"])
    assert second["timings"]["first_token_s"] > 0
