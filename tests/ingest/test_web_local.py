"""What a local .html file may reach: its own folder tree and nothing else on the disk, no navigation
away, and no network unless asked for (never with offline).

A canary file outside the page's folder must appear neither in the anchors nor (tesseract) in the
pictures, whatever trick the page plays; a file inside the folder, framed the same way, does appear,
so the checks can fail. A loopback server counts every connection a page makes.
"""

from __future__ import annotations

import os

import pytest

from docvision import ingest, views
from docvision.document import IngestOptions
from docvision.tiling import plan
from tests.ingest.web_support import Handler, chromium, in_thread, ocr, server  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("chromium")]
CANARY = "CANARY 8642 SECRET"
LISTED = "CANARYLISTED5531"  # a file name only a folder listing would show
INSIDE = "INSIDE 4242 ALLOWED"


@pytest.fixture
def site(tmp_path):
    """tmp/secret/canary.txt (outside), tmp/site/ (the pages' folder) with sub/inside.txt, a hidden
    file, and a symlink pointing out of the folder."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "canary.txt").write_text(CANARY)
    (secret / LISTED).write_text("x")
    folder = tmp_path / "site"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "inside.txt").write_text(INSIDE)
    (folder / ".hidden.txt").write_text(CANARY)
    os.symlink(secret / "canary.txt", folder / "link.txt")
    return folder, secret


def _page(folder, name: str, body: str) -> str:
    path = folder / name
    path.write_text(f"<!doctype html><html><head><title>{name}</title></head><body style='font:28px sans-serif'>"
                    f"<p>page {name.split('.')[0]}</p>{body}</body></html>")
    return str(path)


def _frame(src: str) -> str:
    return f'<iframe src="{src}" style="width:900px;height:120px;border:0"></iframe>'


def _seen(source: str) -> tuple[str, str, list[str]]:
    """The anchors, what tesseract reads on the HD-25 canvases, and the warnings of a capture."""
    document = in_thread(lambda: ingest.load(source, IngestOptions(timeout=10, device_scale_factor=1)), 90)
    with document:
        pages = list(document.pages())
        anchors = " ".join(p.text for p in pages)
        pictures = " ".join(ocr(views.canvas(p, plan(p.size, 25)), psm=3) for p in pages)
        return anchors, pictures, list(document.warnings)


def test_a_file_of_the_pages_own_folder_is_shown(site):
    folder, _ = site
    anchors, pictures, warnings = _seen(_page(folder, "control.html", _frame("sub/inside.txt")))
    assert "INSIDE 4242" in pictures and "page control" in anchors
    assert warnings == []


@pytest.mark.parametrize("trick", ["absolute_frame", "relative_frame", "symlink_frame", "hidden_frame",
                                   "listing_frame", "own_listing_frame", "image_and_script"])
def test_files_outside_the_folder_are_refused_and_said(site, trick):
    folder, secret = site
    body = {
        "absolute_frame": _frame((secret / "canary.txt").as_uri()),
        "relative_frame": _frame("../secret/canary.txt"),
        "symlink_frame": _frame("link.txt"),
        "hidden_frame": _frame(".hidden.txt"),
        "listing_frame": _frame(secret.as_uri() + "/"),
        "own_listing_frame": _frame("./"),
        "image_and_script": f'<img src="{(secret / "canary.txt").as_uri()}"><script src="../secret/canary.txt">'
                            "</script>",
    }[trick]
    anchors, pictures, warnings = _seen(_page(folder, f"{trick}.html", body))
    assert CANARY not in anchors and "8642" not in pictures and LISTED not in pictures, pictures
    assert f"page {trick}" in anchors
    assert any(w.startswith("refused") and "outside the page's folder" in w for w in warnings), warnings


@pytest.mark.parametrize("trick", ["meta_refresh", "script_location", "link_to_the_listing"])
def test_navigating_away_to_a_file_is_refused_and_said(site, trick):
    folder, secret = site
    canary = (secret / "canary.txt").as_uri()
    body = {
        "meta_refresh": f'<meta http-equiv="refresh" content="0;url={canary}">',
        "script_location": f'<script>location = "{canary}";</script>',
        "link_to_the_listing": f'<script>setTimeout(() => location.href = "{secret.as_uri()}/", 10)</script>',
    }[trick]
    anchors, pictures, warnings = _seen(_page(folder, f"{trick}.html", body))
    assert CANARY not in anchors and "8642" not in pictures and LISTED not in pictures, pictures
    assert f"page {trick}" in anchors  # the page itself is what was captured
    assert any("refused to leave the page" in w for w in warnings), warnings


def _tracker(folder, server: str) -> str:
    base = server.replace("http://", "")
    return _page(folder, "tracker.html", f"""
        <img src="{server}/pixel.png?img"><link rel="stylesheet" href="{server}/pixel.png?css">
        <link rel="preconnect" href="{server}/"><link rel="dns-prefetch" href="{server}/">
        <script>fetch("{server}/pixel.png?fetch").catch(() => {{}});
        try {{ new WebSocket("ws://{base}/socket"); }} catch (e) {{}}
        navigator.sendBeacon && navigator.sendBeacon("{server}/pixel.png?beacon", "x");</script>""")


@pytest.mark.parametrize("options", [{}, {"offline": True}, {"offline": True, "local_pages_online": True}],
                         ids=["default", "offline", "offline_wins"])
def test_a_local_page_reaches_no_network(site, server, options):
    folder, _ = site
    source = _tracker(folder, server)
    before = Handler.connections, dict(Handler.hits)
    document = in_thread(lambda: ingest.load(source, IngestOptions(timeout=10, device_scale_factor=1, **options)), 90)
    with document:
        assert "page tracker" in next(document.pages()).text
        assert any("a local page gets no network" in w for w in document.warnings), document.warnings
    assert (Handler.connections, Handler.hits) == before  # not one connection, let alone a request


def test_a_local_page_may_be_let_online(site, server):
    folder, _ = site
    source = _tracker(folder, server)
    before = Handler.hits.get("/pixel.png", 0)
    options = IngestOptions(timeout=10, device_scale_factor=1, local_pages_online=True)
    with in_thread(lambda: ingest.load(source, options), 90) as document:
        assert not any("network" in w for w in document.warnings), document.warnings
    assert Handler.hits.get("/pixel.png", 0) > before  # the control: the tracking pixel does arrive then


def test_a_web_page_reaches_no_file_either(site, server):
    # Chromium's own rule for web pages, which local pages are now held to as well.
    _, secret = site
    canary = (secret / "canary.txt").as_uri()
    Handler.routes["/grabber.html"] = ("text/html", (
        f"<p>page grabber</p>{_frame(canary)}{_frame(secret.as_uri() + '/')}<img src='{canary}'>"
        f"<script>setTimeout(() => location = '{canary}', 50)</script>").encode())
    anchors, pictures, _ = _seen(f"{server}/grabber.html")
    assert "page grabber" in anchors
    assert CANARY not in anchors and "8642" not in pictures and LISTED not in pictures, pictures
