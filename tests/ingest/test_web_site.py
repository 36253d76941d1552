"""A local documentation site renders with its styles: stylesheets, fonts, images and scripts shared from
the site's own folders (``../static/style.css`` from pages in sub-folders), and nothing more.

The site is generated here, as rustdoc, Sphinx and mdBook lay theirs out. A style-dependent colour,
position, font and image are read back from the capture, so a page drawn without its site fails the
test whatever Chromium build or fallback fonts the machine has. What the site may not give (a file of
the wrong kind, one outside it, hidden, a folder listing, anything a frame or a script could read)
is held in tests/ingest/test_web_local.py; the decisions themselves, without a browser, at the end.
"""

from __future__ import annotations

import io
import os

import pytest

from docvision import ingest
from docvision.document import IngestOptions
from docvision.errors import UsageError
from docvision.ingest.web import site as web_site
from docvision.ingest.web.guard import Guard
from tests.helpers import json_lines, run_cli
from tests.ingest.web_support import chromium, in_thread  # noqa: F401

BANNER = (20, 120, 220)  # the stylesheet's colour for .banner
LOGO = (200, 30, 30)  # the site's logo.png
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"  # fonts-dejavu-core, in .ci/run

STYLE = """@font-face { font-family: SiteMono; src: url(../fonts/x.woff2) format("woff2"); }
body { margin: 0; font: 24px sans-serif; }
.banner { position: absolute; left: 640px; top: 260px; width: 420px; height: 160px;
          background: rgb(20, 120, 220); color: #fff; font: 32px sans-serif; }
.mono { position: absolute; left: 40px; top: 40px; margin: 0; font: 40px SiteMono, serif; }
.logo { position: absolute; left: 100px; top: 500px; width: 120px; height: 80px; }
#js { position: absolute; left: 40px; top: 700px; margin: 0; }
"""
APP_JS = "document.getElementById('js').textContent = 'SCRIPT RAN 5150';"
# Pages in sub-folders, as a documentation generator writes them: guide/ one level down, api/ five
# (the most the site reaches up to on its own), and one six down that needs the walk or --local-root.
PAGES = {"guide/index.html": 1, "api/m1/m2/m3/m4/page.html": 5, "api/m1/m2/m3/m4/m5/deep.html": 6}


def _woff2() -> bytes:
    """A real WOFF2 font: DejaVu Sans Mono, cut to the letters the page uses."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(FONT)
    options = subset.Options()
    options.flavor = "woff2"
    options.drop_tables += ["FFTM"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="iM ")
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def _png(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def _page(up: int) -> str:
    root = "../" * up
    return (f'<!doctype html><html><head><title>Module page</title>'
            f'<link rel="stylesheet" href="{root}static/style.css"><script src="{root}js/app.js" defer></script>'
            '</head><body><div class="banner">BANNER 7070</div>'
            '<p class="mono"><span>iiiiiiii</span> <span>MMMMMMMM</span></p>'
            f'<img class="logo" src="{root}img/logo.png" alt=""><p id="js">no script</p></body></html>')


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    """docs/ with static/style.css, fonts/x.woff2, img/logo.png, js/app.js and the PAGES."""
    root = tmp_path_factory.mktemp("site") / "docs"
    for name, data in {"static/style.css": STYLE.encode(), "fonts/x.woff2": _woff2(),
                       "img/logo.png": _png((120, 80), LOGO), "js/app.js": APP_JS.encode(),
                       **{page: _page(up).encode() for page, up in PAGES.items()}}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def _load(source, **options):
    document = in_thread(lambda: ingest.load(str(source), IngestOptions(timeout=15, device_scale_factor=1,
                                                                        **options)), 120)
    with document:
        [page] = list(document.pages())
        return page, page.render(*page.size), list(document.warnings)


def _word(page, text: str):
    return next(w.box for w in page.words if w.text == text)


def _banner_at(image, xy: tuple[int, int]) -> bool:
    """Whether the styled banner is drawn at ``xy``; unstyled, it is a line at the top left and the
    capture (the page's content) may end before ``xy``."""
    return xy[0] < image.width and xy[1] < image.height and image.getpixel(xy) == BANNER


def assert_styled(page, image) -> None:
    """The stylesheet placed and coloured the banner, the font and the logo arrived, the script ran."""
    x0, y0, _, _ = _word(page, "BANNER")
    assert x0 >= 640 and y0 >= 260, (x0, y0)  # unstyled, it would sit at the top left
    assert image.getpixel((1040, 400)) == BANNER
    assert image.getpixel((160, 540)) == LOGO
    narrow, wide = _word(page, "iiiiiiii"), _word(page, "MMMMMMMM")
    # Monospaced: both words equally wide. The fallback (serif) draws "i" at a third of "M".
    assert (narrow[2] - narrow[0]) / (wide[2] - wide[0]) > 0.9, (narrow, wide)
    assert "5150" in page.text and "no script" not in page.text


@pytest.mark.browser
@pytest.mark.usefixtures("chromium")
@pytest.mark.parametrize("name", ["guide/index.html", "api/m1/m2/m3/m4/page.html"])
def test_a_page_of_a_documentation_site_renders_with_its_styles(docs, name):
    page, image, warnings = _load(docs / name)
    assert_styled(page, image)
    assert warnings == []  # everything it asked for loaded: nothing to say


@pytest.mark.browser
@pytest.mark.usefixtures("chromium")
def test_a_site_reaches_only_so_far_up_on_its_own_and_local_root_says_where_it_is(docs):
    page, image, warnings = _load(docs / "api/m1/m2/m3/m4/m5/deep.html")
    assert not _banner_at(image, (1040, 400)) and "no script" in page.text
    [warning] = warnings  # the stylesheet, the script and the logo (the font was never asked for)
    assert "refused 3 files outside the page's site" in warning and "style.css" in warning, warning

    page, image, warnings = _load(docs / "api/m1/m2/m3/m4/m5/deep.html", local_root=str(docs))
    assert_styled(page, image)
    assert warnings == []

    # Said outright, the site can also be narrower than the one found.
    page, image, warnings = _load(docs / "guide/index.html", local_root=str(docs / "guide"))
    assert not _banner_at(image, (1040, 400))
    assert any("outside the page's site" in w and str(docs / "guide") in w for w in warnings), warnings


@pytest.mark.browser
@pytest.mark.usefixtures("chromium")
def test_the_folder_walked_is_the_site_of_the_pages_found_in_it(docs):
    proc = run_cli("render", docs, "--recursive", "--json", "--scale", "1", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    records = {os.path.relpath(r["source"], docs): r for r in json_lines(proc.stdout)}
    records.pop("img/logo.png")  # an image is a source of its own
    assert set(records) == set(PAGES)
    assert all(r["warnings"] == [] for r in records.values()), records  # deep.html too: the walk's folder

    proc = run_cli("render", docs / "guide/index.html", "--local-root", docs / "guide", "--json", "--no-cache")
    [record] = json_lines(proc.stdout)
    assert proc.returncode == 0 and any("outside the page's site" in w for w in record["warnings"]), record


@pytest.mark.parametrize("root", ["/", "/usr", "~"])
def test_local_root_may_not_be_the_root_a_top_folder_or_a_home(root):
    with pytest.raises(UsageError, match="may not be the filesystem root"):
        web_site.check_root(root)


def test_local_root_must_be_a_folder(tmp_path):
    with pytest.raises(UsageError, match="not a folder"):
        web_site.check_root(str(tmp_path / "missing"))


# -- the decisions, without a browser -------------------------------------------------------------------

@pytest.fixture
def tree(tmp_path, monkeypatch):
    """home/anna (a home folder), with docs/api/page.html, docs/static/ and files of every kind."""
    home = tmp_path / "home" / "anna"
    monkeypatch.setattr(web_site, "homes", lambda: frozenset({str(home)}))
    files = {"docs/api/page.html": b"<p>page</p>", "docs/static/style.css": b"p{}", "docs/static/notes.txt": b"x",
             "docs/static/app.js": b"1", "docs/img/logo.png": _png((2, 2), LOGO), "docs/img/fake.png": b"root:x:0",
             "docs/img/icon.svg": b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
             "docs/fonts/x.woff2": b"wOF2" + b"\0" * 60, "docs/fonts/fake.woff2": b"<html>",
             "docs/.git/hidden.css": b"p{}", "secret.png": _png((2, 2), LOGO), "docs/api/own.txt": b"mine"}
    for name, data in files.items():
        path = home / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    os.symlink(home / "secret.png", home / "docs/img/link.png")
    return home


def _verdict(tree, name: str, kind: str, **options) -> str:
    guard = Guard((tree / "docs/api/page.html").as_uri(), IngestOptions(**options), "http://127.0.0.1:9")
    found = guard.verdict((tree / name).as_uri(), False, kind)
    return {id(guard.refused_files): "page's folder", id(guard.refused_site): "site",
            id(guard.refused_kinds): "kind"}.get(id(found), "loaded")


@pytest.mark.parametrize("name, kind, expected", [
    ("docs/static/style.css", "stylesheet", "loaded"),
    ("docs/static/app.js", "script", "loaded"),
    ("docs/img/logo.png", "image", "loaded"),
    ("docs/img/icon.svg", "image", "loaded"),
    ("docs/img/icon.svg", "other", "loaded"),  # <link rel=icon>: an image Chromium asks for as "other"
    ("docs/static/style.css", "other", "page's folder"),
    ("docs/fonts/x.woff2", "font", "loaded"),
    ("docs/api/own.txt", "document", "loaded"),  # the page's own tree, as before
    ("docs/static/style.css", "document", "page's folder"),  # a frame or object: never from the site
    ("docs/static/style.css", "fetch", "page's folder"),
    ("docs/static/app.js", "xhr", "page's folder"),
    ("docs/img/logo.png", "media", "page's folder"),
    ("docs/static/notes.txt", "stylesheet", "kind"),
    ("docs/static/notes.txt", "script", "kind"),
    ("docs/img/fake.png", "image", "kind"),
    ("docs/static/style.css", "image", "kind"),
    ("docs/fonts/fake.woff2", "font", "kind"),
    ("docs/.git/hidden.css", "stylesheet", "site"),
    ("docs/img", "image", "site"),  # a folder listing
    ("docs/img/link.png", "image", "site"),  # a symlink resolved to the home folder itself
    ("secret.png", "image", "site"),  # the home folder as a whole is no site
])
def test_what_a_local_page_may_load_by_kind(tree, name, kind, expected):
    assert _verdict(tree, name, kind) == expected


def test_a_local_root_no_site_may_be_is_ignored_when_it_gets_past_the_cli(tree):
    assert _verdict(tree, "secret.png", "image", local_root=str(tree)) == "site"  # the home folder


def test_local_root_is_the_whole_rule_for_the_pages_it_holds(tree):
    assert _verdict(tree, "docs/static/style.css", "stylesheet", local_root=str(tree / "docs/api")) == "site"
    # A page outside --local-root keeps the site it would have had.
    assert _verdict(tree, "docs/static/style.css", "stylesheet", local_root=str(tree / "docs/static")) == "loaded"


def test_a_site_reaches_at_most_max_up_folders_above_the_page(tmp_path):
    deep = tmp_path / "site" / os.path.join(*["d"] * web_site.MAX_UP)
    deep.mkdir(parents=True)
    (tmp_path / "site" / "style.css").write_text("p{}")
    too_deep = deep / "d"
    too_deep.mkdir()
    for folder, expected in ((deep, None), (too_deep, "site")):
        guard = Guard((folder / "page.html").as_uri(), IngestOptions(), "http://127.0.0.1:9")
        found = guard.verdict((tmp_path / "site" / "style.css").as_uri(), False, "stylesheet")
        assert (found is guard.refused_site if expected else found is None), folder
        walked = Guard((folder / "page.html").as_uri(), IngestOptions(), "http://127.0.0.1:9", str(tmp_path / "site"))
        assert walked.verdict((tmp_path / "site" / "style.css").as_uri(), False, "stylesheet") is None
