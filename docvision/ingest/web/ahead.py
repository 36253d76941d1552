"""Web sources captured ahead of their turn: the next pages load and settle while the run uses this one.

In: the batch's sources in input order (``expect``), then, one at a time, the source the run opens now
(``take``). Out: that source's capture (``capture.Shot``) or download (``fetch.Download``), or its one
error. Each ``take`` starts the next expected web sources, so at most WINDOW captures are held at once
(in flight, or finished and not yet taken): a held capture costs its PNGs and, while in flight, a
renderer. The run still gets every source in its own order, captured exactly as it would have been
alone; a source taken out of order, never announced, or with other options is captured on the spot,
and captures the run has passed by are dropped.

Why overlap: a page spends most of its capture waiting (network idle, fonts, a height that holds, two
animation frames per scroll step), little of it computing, so WINDOW pages in flight in one browser
share the machine's cores. Measured in tests/benchmarks/bench_web.py.
"""

from __future__ import annotations

import concurrent.futures
import threading
from pathlib import Path

from docvision.errors import ExternalTimeout, FetchError
from docvision.ingest.checks import EXTENSIONS, check_file, is_url, sniff
from docvision.sources import redact

WINDOW = 4  # captures held at once, the one being taken included


class Ahead:
    """The run's web captures, started in batch order within a bounded window."""

    def __init__(self, browser, window: int | None = None) -> None:
        self.browser = browser
        self.window = max(1, window or WINDOW)
        self.expected: list[str] = []
        self.position = 0  # expected[:position] were started or passed by
        self.held: dict[str, _Job] = {}
        self.downloads: list = []  # every Download made, to remove those never opened
        self.lock = threading.Lock()

    def expect(self, sources: list[str]) -> None:
        """Announce sources in the order the run will open them; those that are not web are ignored."""
        with self.lock:
            known = set(self.expected)
            for source in sources:
                if source not in known and is_web(source):
                    known.add(source)
                    self.expected.append(source)

    def take(self, source: str, options):
        """The source's Shot or Download, waited for here; starts the next captures first."""
        with self.lock:
            job = self.held.pop(source, None)
            if job is not None and job.options != options:
                job.discard()
                job = None
            index = self._index(source)
            if index is not None:
                for passed in [s for s, held in self.held.items() if held.index < index]:
                    self.held.pop(passed).discard()
                self.position = max(self.position, index + 1)
            if job is None:
                job = _Job(self, source, options, index)
            while len(self.held) < self.window - 1 and self.position < len(self.expected):
                upcoming = self.expected[self.position]
                if upcoming not in self.held:
                    self.held[upcoming] = _Job(self, upcoming, options, self.position)
                self.position += 1
        return job.result()

    def _index(self, source: str) -> int | None:
        try:
            return self.expected.index(source)
        except ValueError:
            return None

    def close(self) -> None:
        """Cancel what is in flight and remove downloads nobody opened."""
        with self.lock:
            jobs, self.held = list(self.held.values()), {}
        for job in jobs:
            job.discard()
        for download in self.downloads:
            if not download.opened:
                download.discard()


def is_web(source: str) -> bool:
    return is_url(source) or EXTENSIONS.get(Path(source).suffix.lower()) == "web"


def target(source: str, options) -> str:
    """The URL to open for a web source, after the checks that need no browser."""
    if is_url(source):
        if options.offline:
            raise FetchError("not fetched: no network for any source (offline); render a saved copy of "
                             "the page instead", source=redact(source))
        return source
    path = check_file(source)
    with open(path, "rb") as fh:
        found = sniff(fh.read(64))
    if found in ("pdf", "image", "zip"):
        from docvision.errors import DamagedSource

        what = {"pdf": "a PDF", "image": "an image", "zip": "a zip archive (office file?)"}[found]
        raise DamagedSource(f"not an HTML page: it is {what}; give it the right extension", source=source)
    return path.resolve().as_uri()


class _Job:
    """One source's capture on the browser's loop."""

    def __init__(self, ahead: Ahead, source: str, options, index: int | None) -> None:
        self.source, self.options, self.index = source, options, index
        self.future = ahead.browser.submit(_open(ahead, source, options))

    def result(self):
        from docvision.ingest.web.capture import total_budget

        # The capture bounds itself; this only guards against a browser loop that stopped answering.
        limit = total_budget(self.options.timeout) + self.options.timeout + 30
        try:
            return self.future.result(limit)
        except concurrent.futures.TimeoutError:
            self.future.cancel()
            raise ExternalTimeout(f"the browser did not answer within {limit:g} s",
                                  source=redact(self.source)) from None

    def discard(self) -> None:
        self.future.cancel()


async def _open(ahead: Ahead, source: str, options):
    from docvision.ingest.web.capture import capture
    from docvision.ingest.web.fetch import probe

    url = target(source, options)
    if is_url(source):
        download = await probe(source, options)
        if download is not None:
            ahead.downloads.append(download)
            return download
    return await capture(ahead.browser, url, source, options)
