"""What a page may load and reach, decided per source before its browser context opens.

In: the URL to capture (http(s), or file:// for a local page), IngestOptions, and for a local page the
folder a walk found it in. Out: a ``Guard`` with the context options that close the network where it
must be closed, a ``route`` handler that a local page's every request passes through, and the warnings
saying what was refused.

- A web page (http/https) reaches the network as any browser would. Chromium itself refuses file://
  to web pages (subresources, frames, redirects and navigations), so no file on disk is reachable.
- A local page may load regular files inside the folder that holds it and its sub-folders: not a
  hidden one (a name starting with "."), not a folder listing, nothing whose real path (symlinks
  resolved) lies outside. Its main frame may reload itself but not go anywhere else.
- Its stylesheets, fonts, images and scripts may also come from its site (``site.Site``: the folder
  a documentation tree shares them from), when the file is of the kind asked for: a .css stylesheet,
  a font or an image by its bytes, a .js script. These kinds only: none of them shows a file's text
  or hands it to the page's scripts (Chromium gives every file:// URL an origin of its own).
- It gets no network unless ``local_pages_online`` is set, and never with ``offline``: then its
  context goes through a proxy that refuses every connection, which also covers what no request
  handler sees (WebSockets, preconnects, DNS prefetch).
"""

from __future__ import annotations

import asyncio
import os
from urllib.parse import unquote, urlsplit

from docvision.ingest.web.site import KINDS, Site, is_kind, within
from docvision.sources import redact

SHOWN = 3  # refused addresses named in a warning


class Guard:
    """The request policy of one capture; ``route`` is installed on local pages' contexts."""

    def __init__(self, url: str, options, closed_proxy: str, walked: str | None = None) -> None:
        parts = urlsplit(url)
        self.local = parts.scheme == "file"
        self.page_path = os.path.realpath(unquote(parts.path)) if self.local else ""
        self.root = os.path.dirname(self.page_path)
        self.site = Site(self.root, walked, getattr(options, "local_root", None)) if self.local else None
        self.network = not self.local or (bool(getattr(options, "local_pages_online", False))
                                          and not options.offline)
        self.closed_proxy = closed_proxy
        self.refused_files: list[str] = []
        self.refused_site: list[str] = []  # stylesheets, fonts, images, scripts outside the page's site
        self.refused_kinds: list[str] = []  # ... inside it, but not what they were asked for as
        self.refused_network: list[str] = []
        self.refused_navigations: list[str] = []
        # Set when the page tried to leave: a navigation started while the page was still being parsed
        # stops its loading, so DOMContentLoaded and load never come (see capture._navigate).
        self.left = asyncio.Event()

    def context_options(self) -> dict:
        """Extra ``new_context`` options: a proxy that refuses everything when there is no network."""
        if self.network:
            return {}
        # Playwright sends loopback through the proxy too ("<-loopback>"), so 127.0.0.1 is closed as well.
        return {"proxy": {"server": self.closed_proxy}}

    async def route(self, route) -> None:
        """Let a local page's request through, or refuse it and remember it."""
        request = route.request
        verdict = self.verdict(request.url, _is_main_navigation(request), request.resource_type)
        try:
            if verdict is None:
                await route.fallback()
            else:
                verdict.append(request.url)
                if verdict is self.refused_navigations:
                    self.left.set()
                    await route.abort("aborted")  # keeps the page; other codes show an error page
                else:
                    await route.abort("blockedbyclient")
        except Exception:  # noqa: BLE001 - the page or its context may be closing
            pass

    def verdict(self, url: str, main_navigation: bool, kind: str = "other") -> list[str] | None:
        """None when ``url`` may be loaded as a request of ``kind`` (Playwright's resource type);
        else the list a refusal of this sort is remembered in."""
        parts = urlsplit(url)
        if main_navigation:
            same = parts.scheme == "file" and os.path.realpath(unquote(parts.path)) == self.page_path
            return None if same else self.refused_navigations
        if parts.scheme == "file":
            return self._file(os.path.realpath(unquote(parts.path)), kind)
        if parts.scheme in ("http", "https", "ws", "wss"):
            return None if self.network else self.refused_network
        return self.refused_files  # any other scheme that reaches the network stack

    def _file(self, real: str, kind: str) -> list[str] | None:
        if self.inside(real) or not os.path.exists(real):
            return None  # a missing file is Chromium's to answer (not found): nothing was refused
        if kind == "other" and self.site is not None and is_kind(real, "image"):
            kind = "image"  # a favicon: Chromium asks for it as "other"; never drawn, and no script reads it
        if kind not in KINDS or self.site is None:
            return self.refused_files  # documents, frames, objects, media, fetches: the page's tree only
        if self.site.folder_for(real) is None:
            return self.refused_site
        return None if is_kind(real, kind) else self.refused_kinds

    def inside(self, path: str) -> bool:
        """A regular, not hidden file in the page's folder tree (symlinks resolved)."""
        return within(os.path.realpath(path), self.root)

    def warnings(self) -> list[str]:
        """One line per kind of refusal: what was refused and why."""
        out = []
        if self.refused_navigations:
            out.append(f"refused to leave the page for {_names(self.refused_navigations)}: a local page is "
                       "captured as itself")
        if self.refused_files:
            out.append(f"refused {_count(self.refused_files, 'file')} outside the page's folder (or hidden, "
                       f"or a folder listing): {_names(self.refused_files)}")
        if self.refused_site:
            out.append(f"refused {_count(self.refused_site, 'file')} outside the page's site (or hidden, or a "
                       f"folder listing): {_names(self.refused_site)}; its stylesheets, fonts, images and scripts "
                       f"may come from {self.site.describe()} (--local-root DIR says where the site is)")
        if self.refused_kinds:
            verb = "is" if len(set(self.refused_kinds)) == 1 else "are"
            out.append(f"refused {_count(self.refused_kinds, 'file')} that {verb} not the stylesheet (.css), "
                       f"font, image or script (.js) the page asked for: {_names(self.refused_kinds)}")
        if self.refused_network:
            out.append(f"refused {_count(self.refused_network, 'network request')} ({_names(self.refused_network)}):"
                       " a local page gets no network")
        return out


def _is_main_navigation(request) -> bool:
    try:
        return request.is_navigation_request() and request.frame.parent_frame is None
    except Exception:  # noqa: BLE001 - a request without a frame (a worker's) is no navigation
        return False


def _count(urls: list[str], noun: str) -> str:
    n = len(set(urls))
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _names(urls: list[str]) -> str:
    unique = list(dict.fromkeys(urls))
    shown = ", ".join(_short(u) for u in unique[:SHOWN])
    return shown + (f" and {len(unique) - SHOWN} more" if len(unique) > SHOWN else "")


def _short(url: str) -> str:
    """A file URL as its path, a web address without its password, both cut to 100 characters."""
    parts = urlsplit(url)
    text = unquote(parts.path) if parts.scheme == "file" else redact(url)
    return text if len(text) <= 100 else text[:97] + "..."
