"""The run's Chromium: found or explained, launched without its per-window extras, shared by the run,
and running the announced batch ahead of its turn: in the run's order, bounded, each page captured
exactly as it would be alone.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile

import pytest

from docvision import ingest
from docvision.document import IngestOptions
from docvision.errors import ToolMissing
from docvision.ingest.tools import Tools
from docvision.ingest.web import ahead, browser
from tests.helpers import assert_one_error_line, run_cli
from tests.ingest.web_support import Handler, chromium, server  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("chromium")]


def test_no_browser_found_says_how_to_install(monkeypatch):
    monkeypatch.delenv(browser.ENV_VAR, raising=False)
    monkeypatch.setattr(browser, "playwright_managed", lambda playwright=None: None)
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    with pytest.raises(ToolMissing, match="apt-get install chromium.*playwright install chromium"):
        browser.find_browser()


def test_missing_browser_says_how_to_install(server):
    proc = run_cli("render", f"{server}/numbers.html", "--browser", "/nonexistent/chrome", timeout=60)
    assert proc.returncode == 1
    assert_one_error_line(proc, "apt-get install chromium")


def test_one_browser_and_a_fresh_context_per_source(server):
    texts = []
    options = IngestOptions(device_scale_factor=1.0)
    with Tools(options) as tools:
        for _ in range(2):
            with ingest.load(f"{server}/isolation.html", options, tools) as document:
                texts.append(next(document.pages()).text)
        first = tools.browser()
        assert tools.browser() is first and first.alive
    assert not first.alive  # closed with the run's tools
    assert texts == ["fresh", "fresh"]  # the second visit saw no storage from the first


def _chromium_command_line() -> list[str]:
    """The arguments of the Chromium browser process this test process started."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                args = fh.read().decode(errors="replace").split("\0")
            with open(f"/proc/{entry}/stat", "rb") as fh:
                ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if "--remote-debugging-pipe" in args and not any(a.startswith("--type=") for a in args) \
                and _descends_from_us(ppid):
            return args
    pytest.fail("no Chromium browser process of ours found")


def _descends_from_us(pid: int) -> bool:
    while pid > 1:
        if pid == os.getpid():
            return True
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                pid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def test_playwrights_disabled_features_stay_disabled_and_no_omnibox_renderer():
    # Chromium keeps the last --disable-features only: ours must repeat every feature Playwright's had.
    async def targets(chromium):
        context = await chromium.new_context()
        await context.new_page()
        session = await chromium.new_browser_cdp_session()
        found = await session.send("Target.getTargets", {"filter": [{}]})
        await context.close()
        return [t["url"] for t in found["targetInfos"]]

    with Tools(IngestOptions()) as tools:
        running = tools.browser()
        args = _chromium_command_line()
        urls = running.run(targets(running.browser), 60)
    lists = [a.split("=", 1)[1].split(",") for a in args if a.startswith("--disable-features=")]
    assert len(lists) >= 2, args  # Playwright's, then ours
    assert set(lists[0]) <= set(lists[-1]), set(lists[0]) - set(lists[-1])
    assert {"WebUIOmniboxPopup", "WebUIOmniboxAimPopup"} <= set(lists[-1])
    assert not [u for u in urls if "omnibox" in u], urls  # ~1 CPU-s of renderer per context, gone


def _pages(folder, count: int) -> list[str]:
    paths = []
    for i in range(count):
        path = folder / f"p{i}.html"
        path.write_text(f"<!doctype html><title>p{i}</title><body style='font:24px serif'><h1>Page {i}</h1>"
                        + "".join(f"<p>line {j} of page {i} " + "word " * (i + 3) + "</p>" for j in range(40 + 9 * i))
                        + "<div style='animation: spin 1s infinite'>moving</div><input autofocus></body>")
        paths.append(str(path))
    return paths


def _facts(document) -> list:
    """Everything a capture is judged by: labels, sizes, words with boxes, pixels."""
    return [(p.label, p.size, [(w.text, w.box) for w in p.words],
             hashlib.sha256(p.render(*p.size).tobytes()).hexdigest()) for p in document.pages()]


def _first_difference(alone: list, batch: list) -> str:
    """Where two lists of _facts first differ: document, segment, and which fact."""
    for number, (one, two) in enumerate(zip(alone, batch)):
        for (label, size, words, pixels), (label2, size2, words2, pixels2) in zip(one, two):
            if (label, size) != (label2, size2):
                return f"document {number} {label}: {size} alone, {label2} {size2} in the batch"
            if words != words2:
                index = next((i for i, (a, b) in enumerate(zip(words, words2)) if a != b),
                             min(len(words), len(words2)))
                return (f"document {number} {label}: {len(words)} words alone, {len(words2)} in the batch; "
                        f"word {index}: {words[index:index + 2]} alone, {words2[index:index + 2]} in the batch")
            if pixels != pixels2:
                return f"document {number} {label}: same words, other pixels"
    return "same facts"


def test_an_announced_batch_comes_out_in_order_and_as_each_page_alone(tmp_path):
    sources = _pages(tmp_path, 7)
    options = IngestOptions(device_scale_factor=1.5, segment_height=2048)
    with Tools(options) as tools:
        alone = []
        for source in sources:
            with ingest.load(source, options, tools) as document:
                alone.append(_facts(document))
    with Tools(options) as tools:
        tools.expect(sources)
        batch, held = [], []
        for source in sources:
            with ingest.load(source, options, tools) as document:
                held.append(len(tools.browser().ahead.held))
                batch.append(_facts(document))
    assert [len(f) for f in alone] == [len(f) for f in batch], _first_difference(alone, batch)
    assert batch == alone, _first_difference(alone, batch)
    assert max(held) == ahead.WINDOW - 1 and held[-1] == 0  # the window ran ahead, and no further


def test_out_of_order_unannounced_and_other_options_are_captured_on_the_spot(tmp_path):
    sources = _pages(tmp_path, 5)
    (tmp_path / "other").mkdir()
    extra = _pages(tmp_path / "other", 1)
    options = IngestOptions(device_scale_factor=1.0)
    with Tools(options) as tools:
        tools.expect(sources)
        order = [sources[3], sources[0], extra[0], sources[4]]
        titles = []
        for source in order:
            with ingest.load(source, options, tools) as document:
                titles.append(document.metadata["title"])
        with ingest.load(sources[1], options, tools) as document:
            narrow = next(document.pages()).size[0]
        with ingest.load(sources[1], IngestOptions(device_scale_factor=2.0), tools) as document:
            wide = next(document.pages()).size[0]
    assert titles == ["p3", "p0", "p0", "p4"] and abs(wide - 2 * narrow) <= 2, (narrow, wide)


def test_every_url_of_a_batch_is_fetched_once_each_way(server):
    # The header probe and the browser, one GET each: nothing captured twice, nothing skipped.
    sources = [f"{server}/numbers.html?n={i}" for i in range(6)]
    Handler.hits.pop("/numbers.html", None)
    options = IngestOptions(device_scale_factor=1.0)
    with Tools(options) as tools:
        tools.expect(sources)
        for source in sources:
            with ingest.load(source, options, tools) as document:
                assert "Quarterly" in next(document.pages()).text
    assert Handler.hits["/numbers.html"] == 2 * len(sources)


def test_a_download_run_ahead_and_never_opened_is_removed(server, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    options = IngestOptions(device_scale_factor=1.0, render_dpi=72)
    with Tools(options) as tools:
        tools.expect([f"{server}/numbers.html", f"{server}/doc.pdf", f"{server}/poster.png"])
        with ingest.load(f"{server}/numbers.html", options, tools) as document:
            assert document.kind == "web"
        with ingest.load(f"{server}/poster.png", options, tools) as document:  # the PDF passed by
            assert document.kind == "image" and any(tmp_path.iterdir())
    assert not [p for p in tmp_path.iterdir() if re.match(r"docvision-download-", p.name)]
