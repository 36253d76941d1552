"""What a local .html file may reach: its own folder tree, the stylesheets, fonts, images and scripts
of its site (tests/ingest/test_web_site.py), and nothing else on the disk; no navigation away, and no
network unless asked for (never with offline).

A canary file outside the page's folder must appear neither in the anchors nor (tesseract) in the
pictures, whatever trick the page plays: framed, fetched, or asked for as a stylesheet or an image it
is not; a file inside the folder, framed the same way, does appear, and a real stylesheet of the site
does colour the page, so the checks can fail. A loopback server counts every connection a page makes.
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


RED = (200, 0, 0)
# Text that would colour the page and show the canary, were it taken for a stylesheet.
EVIL_CSS = (f"body {{ background: rgb{RED}; }} p::after {{ content: '{CANARY}'; display: block; font: 40px sans-serif;"
            " background: #fff; color: #000; }")


@pytest.fixture
def site(tmp_path):
    """tmp/secret/ (outside the pages' folder, inside their site) with canary.txt, a canary as HTML and
    as a passwd-like file, CSS text in a .txt and in a real .css; tmp/site/ (the pages' folder) with
    sub/inside.txt, a hidden file, and a symlink pointing out of the folder."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "canary.txt").write_text(CANARY)
    (secret / LISTED).write_text("x")
    (secret / "canary.html").write_text(f"<!doctype html><p style='font:40px sans-serif'>{CANARY}</p>")
    (secret / "passwd").write_text(f"root:x:0:0:{CANARY}:/root:/bin/bash\n")
    (secret / "evil.txt").write_text(EVIL_CSS)
    (secret / "evil.css").write_text(EVIL_CSS)
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


def _seen(source: str, **options) -> tuple[str, str, list[str]]:
    """The anchors, what tesseract reads on the HD-25 canvases, and the warnings of a capture."""
    anchors, pictures, warnings, _ = _shown(source, **options)
    return anchors, pictures, warnings


def _shown(source: str, **options):
    """As ``_seen``, and the colour of the page's background (its bottom right corner)."""
    document = in_thread(lambda: ingest.load(source, IngestOptions(timeout=10, device_scale_factor=1, **options)),
                         90)
    with document:
        pages = list(document.pages())
        anchors = " ".join(p.text for p in pages)
        pictures = " ".join(ocr(views.canvas(p, plan(p.size, 25)), psm=3) for p in pages)
        corner = pages[0].render(*pages[0].size).getpixel((pages[0].size[0] - 5, pages[0].size[1] - 5))
        return anchors, pictures, list(document.warnings), corner


def test_a_file_of_the_pages_own_folder_is_shown(site):
    folder, _ = site
    anchors, pictures, warnings = _seen(_page(folder, "control.html", _frame("sub/inside.txt")))
    assert "INSIDE 4242" in pictures and "page control" in anchors
    assert warnings == []


@pytest.mark.parametrize("trick", ["absolute_frame", "relative_frame", "symlink_frame", "hidden_frame",
                                   "listing_frame", "own_listing_frame", "object", "embed", "frame_of_a_site_file"])
def test_files_outside_the_folder_are_refused_and_said(site, trick):
    folder, secret = site
    body = {
        "absolute_frame": _frame((secret / "canary.txt").as_uri()),
        "relative_frame": _frame("../secret/canary.txt"),
        "symlink_frame": _frame("link.txt"),
        "hidden_frame": _frame(".hidden.txt"),
        "listing_frame": _frame(secret.as_uri() + "/"),
        "own_listing_frame": _frame("./"),
        "object": '<object data="../secret/canary.txt" style="width:900px;height:120px"></object>',
        "embed": '<embed src="../secret/canary.html" style="width:900px;height:120px">',
        "frame_of_a_site_file": _frame("../secret/evil.css"),  # its site gives styles, not documents
    }[trick]
    anchors, pictures, warnings = _seen(_page(folder, f"{trick}.html", body))
    assert CANARY not in anchors and "8642" not in pictures and LISTED not in pictures, pictures
    assert f"page {trick}" in anchors
    assert any(w.startswith("refused") and "outside the page's folder" in w for w in warnings), warnings


def _sheet(href: str) -> str:
    return f'<link rel="stylesheet" href="{href}">'


@pytest.mark.parametrize("trick", ["css_text_in_a_txt", "html_as_stylesheet", "passwd_as_stylesheet",
                                   "passwd_as_image", "html_as_image", "text_as_script", "font_of_text"])
def test_a_file_asked_for_as_what_it_is_not_shows_nothing(site, trick):
    folder, secret = site
    body = {
        "css_text_in_a_txt": _sheet("../secret/evil.txt"),
        "html_as_stylesheet": _sheet("../secret/canary.html"),
        "passwd_as_stylesheet": _sheet((secret / "passwd").as_uri()),
        "passwd_as_image": '<img src="../secret/passwd" style="width:900px;height:200px">',
        "html_as_image": '<img src="../secret/canary.html" alt="">',
        "text_as_script": '<script src="../secret/canary.txt"></script>',
        "font_of_text": "<style>@font-face{font-family:F;src:url(../secret/canary.txt)} p{font-family:F}</style>",
    }[trick]
    anchors, pictures, warnings, corner = _shown(_page(folder, f"{trick}.html", body))
    assert CANARY not in anchors and "8642" not in pictures and corner != RED, (pictures, corner)
    assert f"page {trick}" in anchors
    assert any("not the stylesheet (.css), font, image or script (.js) the page asked for" in w
               for w in warnings), warnings


def test_a_real_stylesheet_of_the_site_does_apply(site):
    # The control of the test above: the same rules in a .css file of the site colour the page.
    folder, _ = site
    _, pictures, warnings, corner = _shown(_page(folder, "styled.html", _sheet("../secret/evil.css")))
    assert corner == RED and "8642" in pictures and warnings == []


def test_symlinks_and_hidden_files_out_of_the_site_are_refused(site):
    folder, secret = site
    (folder / "static").mkdir()
    os.symlink(secret / "evil.css", folder / "static" / "link.css")
    (folder / "static" / ".theme.css").write_text(EVIL_CSS)
    body = _sheet("static/link.css") + _sheet("../secret/evil.css")
    anchors, pictures, warnings, corner = _shown(_page(folder, "linked.html", body), local_root=str(folder))
    assert corner != RED and "8642" not in pictures, (pictures, corner)
    assert any(f"{secret / 'evil.css'}" in w and "outside the page's site" in w for w in warnings), warnings
    nested = folder / "api"
    nested.mkdir()
    _, pictures, warnings, corner = _shown(_page(nested, "hidden.html", _sheet("../static/.theme.css")))
    assert corner != RED and "8642" not in pictures and any("outside the page's site" in w for w in warnings)


READER_JS = """const say = t => { const p = document.createElement('p'); p.textContent = t; document.body.append(p); };
say('READER RAN 2929');
fetch('TARGET').then(r => r.text()).then(say, () => say('fetch refused'));
const x = new XMLHttpRequest();
x.onload = () => say(x.responseText); x.onerror = () => say('xhr refused');
try { x.open('GET', 'TARGET'); x.send(); } catch (e) { say('xhr refused'); }
"""


@pytest.mark.parametrize("where", ["inline", "site_script"])
def test_a_script_reads_no_file_outside_the_pages_folder(site, where):
    folder, secret = site
    target = (secret / "canary.txt").as_uri()
    reader = READER_JS.replace("TARGET", target)
    (secret / "reader.js").write_text(reader)
    script = "<script src='../secret/reader.js'></script>" if where == "site_script" else f"<script>{reader}</script>"
    anchors, pictures, _ = _seen(_page(folder, f"{where}.html", script))
    assert "READER RAN 2929" in anchors  # the script ran (from the site, for site_script) ...
    assert CANARY not in anchors and "8642" not in pictures, pictures  # ... and read nothing


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
