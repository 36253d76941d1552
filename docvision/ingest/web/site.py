"""A local page's site, and whether a file is what the page asked for it as.

In: the real path of a local page, the folder a walk found it in (if any), ``--local-root``; then, per
request, a file's real path and the kind of request (stylesheet, font, image, script). Out: whether
that file may come from the page's site, and whether its bytes (or, for code, its name) are of that kind.

The site is where a documentation tree keeps what its pages share: rustdoc's ``static.files/``, Sphinx's
``_static/`` at the root of the build, mdBook's ``css/`` and ``FontAwesome/``, reached by ``../`` from
pages in sub-folders. It is:
- ``--local-root DIR`` when DIR holds the page (said outright, it is the whole rule: it can also narrow);
- else the nearest folder above the page that holds the file, at most ``MAX_UP`` folders up, or the
  folder named on the command line whose walk found the page, when that is wider;
- never the filesystem root, a folder right under it (``/home``, ``/usr``, ``/tmp``), a home folder or a
  folder above one, whichever rule named it.
docs/web.md says why these kinds and no others, and what a page can still see through them.
"""

from __future__ import annotations

import functools
import os
import pwd

from docvision.errors import UsageError
from docvision.ingest.checks import sniff

# Folders above the page's own a site may start. rustdoc pages reach static.files/ with one ../ per
# module level (four from crate/a/b/c/struct.X.html), Sphinx's and mdBook's with one per sub-folder;
# the deepest of the 25 real pages in docs/web.md needed 3.
MAX_UP = 5
KINDS = ("stylesheet", "font", "image", "script")
SCRIPT_SUFFIXES = (".js", ".mjs")
_FONT_MAGIC = (b"wOF2", b"wOFF", b"\x00\x01\x00\x00", b"OTTO", b"true", b"ttcf")
_ICON_MAGIC = (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00")  # .ico and .cur, which sniff() does not know
SVG_HEAD = 4096  # bytes of an .svg file in which its <svg> element must begin


@functools.lru_cache(maxsize=1)
def homes() -> frozenset[str]:
    """The home folders of this machine's people (and root's, and $HOME), as real paths."""
    found = {os.path.expanduser("~"), "/root"}
    try:
        found |= {entry.pw_dir for entry in pwd.getpwall() if 1000 <= entry.pw_uid < 65534}
    except OSError:  # no user database: $HOME and root's are still known
        pass
    return frozenset(os.path.realpath(home) for home in found if home and home != "/")


def bounded(folder: str, home_folders: frozenset[str]) -> bool:
    """True when ``folder`` may be a site: not /, not right under it, not a home folder or above one."""
    parts = [part for part in folder.split(os.sep) if part]
    if len(parts) < 2:
        return False
    return not any(home == folder or home.startswith(folder + os.sep) for home in home_folders)


def check_root(root: str | None) -> None:
    """Refuse a ``--local-root`` that is no folder, or that no site may be (a UsageError, said once)."""
    if root is None:
        return
    real = os.path.realpath(os.path.expanduser(root))
    if not os.path.isdir(real):
        raise UsageError(f"--local-root {root}: not a folder")
    if not bounded(real, homes()):
        raise UsageError(f"--local-root {root}: a site may not be the filesystem root, a folder right under it "
                         "or a home folder as a whole; name the folder the pages and their styles share")


class Site:
    """Where one local page's stylesheets, fonts, images and scripts may come from."""

    def __init__(self, page_folder: str, walked: str | None, explicit: str | None) -> None:
        self.page_folder = page_folder
        self.homes = homes()
        # The CLI refuses a --local-root no site may be (check_root); a library caller's is ignored.
        self.explicit = _bounded_holding(explicit, page_folder, self.homes)
        self.walked = _bounded_holding(walked, page_folder, self.homes)

    def folder_for(self, real: str) -> str | None:
        """The site folder that holds the file ``real``, or None when the page's site does not."""
        if self.explicit is not None:
            return self.explicit if within(real, self.explicit) else None
        if self.walked is not None and within(real, self.walked):
            return self.walked
        common = os.path.commonpath([self.page_folder, real])
        up = os.path.relpath(self.page_folder, common).split(os.sep)
        if up != ["."] and len(up) > MAX_UP:
            return None
        return common if bounded(common, self.homes) and within(real, common) else None

    def describe(self) -> str:
        """The site in words, for a warning."""
        if self.explicit is not None:
            return self.explicit
        reach = f"the folders up to {MAX_UP} above the page, below any home folder"
        return f"{self.walked} or {reach}" if self.walked else reach


def within(real: str, root: str) -> bool:
    """A regular file under ``root`` with no hidden part (a name starting with ".") below it."""
    try:
        relative = os.path.relpath(real, root)
    except ValueError:
        return False
    if relative.startswith(os.pardir) or os.path.isabs(relative) or relative == ".":
        return False
    return not any(part.startswith(".") for part in relative.split(os.sep)) and os.path.isfile(real)


def is_kind(real: str, kind: str) -> bool:
    """True when the file is what a request of ``kind`` asks for: by its bytes, or by its name for code.

    Chromium gives a file:// stylesheet or script its type by the file's name, and decodes images and
    fonts by their bytes; this holds the same line itself, so a .txt or .html file outside the page's
    tree never reaches a CSS parser or an image decoder, whatever Chromium's own checks become.
    """
    name = real.lower()
    if kind == "stylesheet":
        return name.endswith(".css")
    if kind == "script":
        return name.endswith(SCRIPT_SUFFIXES)
    try:
        with open(real, "rb") as fh:
            head = fh.read(SVG_HEAD)
    except OSError:
        return False
    if kind == "font":
        return head.startswith(_FONT_MAGIC)
    if name.endswith(".svg"):
        return b"<svg" in head.lower()
    return sniff(head) in ("image", "heif") or head.startswith(_ICON_MAGIC)


def _bounded_holding(folder: str | None, page_folder: str, home_folders: frozenset[str]) -> str | None:
    """``folder`` as a real path, when it holds the page and may be a site; else None."""
    if not folder:
        return None
    real = os.path.realpath(os.path.expanduser(folder))
    inside = page_folder == real or page_folder.startswith(real.rstrip(os.sep) + os.sep)
    return real if inside and bounded(real, home_folders) else None
