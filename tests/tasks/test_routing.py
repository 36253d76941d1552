"""Page routing: BM25 over text anchors picks the pages worth showing, textless pages ride along."""

from __future__ import annotations

import pytest

from docvision import ingest
from docvision.tasks import routing
from docvision.document import IngestOptions, Page, Word
from docvision.tasks.pages import routed_chunks, survey
from tests.helpers import json_lines, run_cli
from tests.scripted import FILLER, ScriptedBackend, make_pdf


def _page(number: int, text: str, scanned: bool = False) -> Page:
    words = [Word(t, (10.0 * i, 5.0, 10.0 * i + 8, 15.0)) for i, t in enumerate(text.split())]
    return Page(label=f"page {number}", number=number, size=(850, 1100), render=lambda w, h: None,
                words=words, scanned=scanned)


def test_tokenize_lowercases_splits_and_keeps_numbers():
    assert routing.tokenize("Revenue (Q3-2024): $1,204.5M!") == ["revenue", "q3", "2024", "1", "204", "5m"]
    assert routing.query_terms("What is the total of the invoice?") == ["total", "invoice"]
    assert routing.query_terms("what is it") == ["what", "is", "it"]  # nothing left: keep everything


def test_routing_picks_the_one_page_of_a_12_page_pdf_with_the_term(tmp_path):
    texts = [f"Page {i}. " + FILLER * 3 for i in range(1, 13)]
    texts[8] = "Page 9. " + FILLER + "The axolotl census counted 4312 animals in the northern lakes. " + FILLER
    path = make_pdf(tmp_path / "twelve.pdf", texts)
    with ingest.load(str(path), IngestOptions()) as document:
        pages = survey(document)
        chosen = routing.route("How many axolotl were counted?", pages)
        assert chosen.reason == "matched"
        assert [[p.label for p in chunk] for chunk in chosen.chunks] == [["page 9"]]
        backend = ScriptedBackend()
        [chunk] = list(routed_chunks(document, chosen, 4, backend))
    assert chunk.labels == ["page 9"]
    assert chunk.views[0].image.size == chunk.views[0].plan.canvas_size
    [entry] = chunk.evidence
    assert entry["label"] == "page 9" and entry["score"] > 0
    assert entry["words"] == ["axolotl", "counted"] and entry["page"] == 9 and entry["field"] is None
    x0, y0, x1, y1 = entry["boxes"][0]
    width, height = chunk.views[0].plan.canvas_size
    assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


def test_term_on_one_page_of_two_still_ranks():
    # BM25Okapi's idf is 0 here (one page of two); BM25Plus is not, which is why routing uses it.
    pages = [_page(1, "alpha beta"), _page(2, "gamma delta")]
    assert [p.number for p in routing.route("gamma", pages).pages] == [2]


def test_pages_are_grouped_within_the_budget_most_relevant_first():
    pages = [_page(n, f"widget {'widget ' * (n % 4)} filler text") for n in range(1, 9)]
    budget = routing.Budget(pages=2, evidence_pages=6)
    chosen = routing.route("widget", pages, budget)
    assert all(len(chunk) <= 2 for chunk in chosen.chunks)
    assert len(chosen.pages) <= 6
    best = max(chosen.scores, key=lambda n: (chosen.scores[n], -n))
    assert best in [p.number for p in chosen.chunks[0]]
    # a visual-token budget splits calls too
    priced = routing.route("widget", pages, routing.Budget(pages=4, tokens=2500), cost=lambda p: 1500)
    assert all(len(chunk) == 1 for chunk in priced.chunks)


def test_textless_pages_are_considered_bounded():
    pages = [_page(n, "plain words here") for n in range(1, 7)]
    pages[3] = _page(4, "the pump schematic is shown overleaf")
    scans = [_page(n, "", scanned=True) for n in (5, 9, 12)]
    chosen = routing.route("pump schematic", pages + scans)
    numbers = [p.number for p in chosen.pages]
    assert 4 in numbers and 5 in numbers  # the scan next to the match rides along
    assert len([n for n in numbers if n in (5, 9, 12)]) <= routing.MAX_TEXTLESS


def test_documents_without_text_are_read_in_order_and_no_match_reads_the_start():
    scans = [_page(n, "", scanned=True) for n in range(1, 30)]
    chosen = routing.route("anything", scans, routing.Budget(pages=4, evidence_pages=8))
    assert chosen.reason == "no_text"
    assert [p.number for p in chosen.pages] == list(range(1, 9))
    texts = [_page(n, "lorem ipsum") for n in range(1, 10)]
    fallback = routing.route("zeppelin", texts, routing.Budget(pages=3))
    assert fallback.reason == "no_match" and [p.number for p in fallback.pages] == [1, 2, 3]


@pytest.mark.model
def test_ask_through_the_cli_shows_only_the_page_with_the_term(tmp_path, tiny_model_dir):
    texts = [f"Page {i}. " + FILLER * 3 for i in range(1, 13)]
    texts[8] = "Page 9. " + FILLER + "The axolotl census counted 4312 animals in the northern lakes. " + FILLER
    path = make_pdf(tmp_path / "twelve.pdf", texts)
    proc = run_cli("ask", path, "How many axolotl were counted?", "--model", tiny_model_dir("qwen2_5_vl"),
                   "--hd", "1", "--max-new-tokens", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    [record] = json_lines(proc.stdout)
    assert [e["label"] for e in record["evidence"]] == ["page 9"]
    assert record["resolution"]["pages"] == 1 and record["usage"]["calls"] == 1
    assert record["resolution"]["visual_tokens"] == 144  # counted from the model input: one 336 px tile
    assert record["evidence"][0]["words"][0] == "axolotl" and record["evidence"][0]["boxes"]


def test_plurals_match_singulars_both_ways():
    assert [routing.stem(w) for w in ["turbines", "batteries", "boxes", "status", "glass", "MW", "2024s"]] == \
        ["turbine", "battery", "boxe", "status", "glass", "MW", "2024s"]
    pages = [_page(1, "Staffing and maintenance schedule"), _page(2, "Two turbines delivered 41 MW"),
             _page(3, "Shipping volumes were reviewed")]
    chosen = routing.route("What did the turbine deliver?", pages, routing.Budget(pages=1))
    assert chosen.reason == "matched" and [p.label for p in chosen.pages] == ["page 2"]
    assert chosen.terms == ["turbine", "deliver"]  # the question's own words, for the record
    assert [w.text for w in routing.matching_words(pages[1], chosen.terms)] == ["turbines"]
    assert routing.route("schedules?", pages).pages[0].label == "page 1"
