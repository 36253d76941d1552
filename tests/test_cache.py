"""The render cache: a second look at the same file renders nothing; keys, bounds, atomic writes."""

from __future__ import annotations

import dataclasses

import pytest

from docvision import cache as cache_module, ingest, views
from docvision.document import IngestOptions
from docvision.tiling import plan
from tests.scripted import make_pdf


@pytest.fixture
def counted(monkeypatch):
    """Count documents opened by the real ingestors and pages they render."""
    counts = {"loads": 0, "renders": 0, "pages": 0}
    real_load = ingest.load

    def load(source, options=None, tools=None):
        counts["loads"] += 1
        document = real_load(source, options, tools)
        pages = document.iter_pages

        def counting_pages():
            for page in pages():
                counts["pages"] += 1
                render = page.render

                def counting_render(w, h, render=render):
                    counts["renders"] += 1
                    return render(w, h)

                yield dataclasses.replace(page, render=counting_render)

        document.iter_pages = counting_pages
        return document

    monkeypatch.setattr(cache_module.ingest, "load", load)
    return counts


def _canvases(cache, source, options, hd=4):
    with cache.open(source, options) as document:
        return [(p.label, [w.text for w in p.words], views.canvas(p, plan(p.size, hd)).tobytes())
                for p in document.pages()]


def test_second_open_renders_nothing_and_gives_the_same_pixels(tmp_path, counted):
    source = str(make_pdf(tmp_path / "doc.pdf", ["first page words", "second page words", "third"]))
    options = IngestOptions()
    first = _canvases(cache_module.RenderCache(tmp_path / "c"), source, options)
    assert (counted["loads"], counted["renders"]) == (1, 3)
    again = cache_module.RenderCache(tmp_path / "c")
    second = _canvases(again, source, options)
    assert (counted["loads"], counted["renders"]) == (1, 3)  # no new open, no new render
    assert second == first
    assert again.stats["hits"] == 1 and again.stats["renders"] == 0 and again.stats["reused"] == 3
    # another resolution of a cached document opens the file again only for the pixels it lacks
    _canvases(again, source, options, hd=9)
    assert (counted["loads"], counted["renders"]) == (2, 6)
    assert not list((tmp_path / "c").rglob(".tmp-*"))  # atomic writes leave no temporaries


def test_key_follows_content_and_render_options(tmp_path):
    source = make_pdf(tmp_path / "doc.pdf", ["one"])
    cache = cache_module.RenderCache(tmp_path / "c")
    base = cache.entry(str(source), IngestOptions())
    assert cache.entry(str(source), IngestOptions(timeout=5)) == base  # timeouts change no pixel
    assert cache.entry(str(source), IngestOptions(pages="1")) != base
    assert cache.entry(str(source), IngestOptions(password="s3cret")) != base
    assert cache.entry(str(source), IngestOptions(render_dpi=150)) != base
    copy = tmp_path / "copy.pdf"
    copy.write_bytes(source.read_bytes())
    assert cache.entry(str(copy), IngestOptions()) == base  # same bytes, same entry
    make_pdf(source, ["changed"])
    assert cache.entry(str(source), IngestOptions()) != base
    assert cache.entry("https://example.org/a.pdf", IngestOptions()) is None  # URLs change behind our back


def test_cache_is_bounded_least_recently_used_first(tmp_path):
    sources = [str(make_pdf(tmp_path / f"d{i}.pdf", [f"document number {i}"])) for i in range(3)]
    cache = cache_module.RenderCache(tmp_path / "c", limit=10**9)
    for source in sources:
        _canvases(cache, source, IngestOptions())
    entries = {s: cache.entry(s, IngestOptions()) for s in sources}
    sizes = {s: sum(f.stat().st_size for f in e.iterdir()) for s, e in entries.items()}
    _canvases(cache, sources[0], IngestOptions())  # d0 is now the most recently used
    cache.limit = sizes[sources[0]] + sizes[sources[2]] + 1
    cache.prune()
    assert entries[sources[0]].exists() and not entries[sources[1]].exists()


def test_environment_sets_folder_and_bound(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCVISION_CACHE_DIR", str(tmp_path / "here"))
    monkeypatch.setenv("DOCVISION_CACHE_MAX_BYTES", "12345")
    cache = cache_module.RenderCache()
    assert cache.root == tmp_path / "here" / "renders" and cache.limit == 12345


def test_a_page_never_drawn_is_drawn_without_walking_the_document(tmp_path, counted):
    source = str(make_pdf(tmp_path / "long.pdf", [f"page {i} text" for i in range(1, 41)]))
    cache = cache_module.RenderCache(tmp_path / "c")
    with cache.open(source, IngestOptions()) as document:
        pages = list(document.pages())  # the survey: anchors of all 40 pages, nothing drawn
        views.canvas(pages[0], plan(pages[0].size, 1))
    assert (counted["loads"], counted["renders"], counted["pages"]) == (1, 1, 40)
    with cache.open(source, IngestOptions()) as document:
        page = [p for p in document.pages() if p.number == 35][0]
        views.canvas(page, plan(page.size, 1))
    # the file was opened again at page 35: one page produced, one drawn
    assert (counted["loads"], counted["renders"], counted["pages"]) == (2, 2, 41)
