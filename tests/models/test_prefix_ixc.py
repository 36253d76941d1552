"""The native InternLM-XComposer2-4KHD through its prefix cache: ``generate`` reuses the pages' prefix on
its own (keyed by pixels, labels and system text), giving a fresh run's tokens in float32, across questions
and page sets, within the byte budget."""

from __future__ import annotations

import pytest
import torch

from docvision.models import prefix
from docvision.models.ixc.backend import IXCBackend
from tests.models.test_ixc import page_view
from tests.tinyixc import build_tiny_ixc

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def ixc_dir(tmp_path_factory):
    return build_tiny_ixc(tmp_path_factory.mktemp("ixc-4khd"))


def recorded(folder, prefix_cache_mb: int):
    """A float32 IXCBackend whose generate calls keep their token sequences."""
    backend = IXCBackend(model=str(folder), device="cpu", quant="none", dtype="float32",
                         prefix_cache_mb=prefix_cache_mb)
    backend.model.generation_config.eos_token_id = [-1]  # no early stop: compare every token
    runs: list[torch.Tensor] = []
    generate = backend.model.generate
    backend.model.generate = lambda **kwargs: runs.append(generate(**kwargs)) or runs[-1]
    return backend, runs


def test_generate_reuses_the_pages_prefix_and_answers_like_a_fresh_run(ixc_dir):
    fresh, fresh_runs = recorded(ixc_dir, 0)
    reused, reused_runs = recorded(ixc_dir, 64)
    pages_a = [page_view((850, 1100), 2), page_view((1100, 850), 1, label="page 2")]
    pages_b = [page_view((600, 600), 1)]
    plan = [(pages_a, "What is the total?"), (pages_a, "Who is the payee?"), (pages_b, "What is the total?"),
            (pages_a, "When is it due?"), (pages_b, "What is the total?")]
    hits = []
    for views, question in plan:
        expected = fresh.generate(views, question, max_new_tokens=8)
        got = reused.generate(views, question, max_new_tokens=8)
        assert torch.equal(fresh_runs[-1], reused_runs[-1]) and reused_runs[-1].shape[-1] == 8
        assert (got.text, got.prompt_tokens, got.visual_tokens) == (expected.text, expected.prompt_tokens,
                                                                    expected.visual_tokens)
        assert expected.cached_prefix_tokens == 0
        hits.append(got.cached_prefix_tokens)
    prefix_a, prefix_b = reused.prepare(pages_a, "x").prefix_len, reused.prepare(pages_b, "x").prefix_len
    assert hits == [0, prefix_a, 0, prefix_a, prefix_b]
    stored = reused.prefixes.entries()
    assert len(stored) == 2 and reused.prefixes.nbytes == sum(prefix.cache_bytes(e.cache) for e in stored)


def test_other_labels_or_system_text_are_another_prefix(ixc_dir):
    backend, _ = recorded(ixc_dir, 64)
    views = [page_view((850, 1100), 1)]
    assert backend.generate(views, "Total?", max_new_tokens=2).cached_prefix_tokens == 0
    assert backend.generate(views, "Total?", max_new_tokens=2, system="Be brief.").cached_prefix_tokens == 0
    relabelled = [page_view((850, 1100), 1, label="sheet 1")]
    # One page: the label is not in the prompt, but the key still tells them apart (cheap, and safe).
    assert backend.generate(relabelled, "Total?", max_new_tokens=2).cached_prefix_tokens == 0
    assert backend.generate(views, "Due?", max_new_tokens=2, system="Be brief.").cached_prefix_tokens > 0


def test_a_budget_smaller_than_one_prefix_keeps_nothing_and_still_answers(ixc_dir):
    backend, _ = recorded(ixc_dir, 64)
    backend.prefixes = prefix.PrefixCache(budget_bytes=1000)
    views = [page_view((850, 1100), 2)]
    for _ in range(2):
        assert backend.generate(views, "Total?", max_new_tokens=2).cached_prefix_tokens == 0
    assert len(backend.prefixes) == 0 and backend.prefixes.nbytes == 0
