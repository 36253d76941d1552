"""Capture one page in the run's Chromium: navigate, settle, read the visible words, cut full-page segments.

In: the running ``Browser``, a URL (http(s) or file://), the source as the user typed it, IngestOptions.
Out: a ``Shot`` (segments as PNG bytes, the DOM's visible words in CSS pixels, warnings, metadata)
whose ``document()`` is the Document: Pages hold their segment's PNG (decoded only when drawn, so a
long page costs its compressed size in memory) and its words in the segment's device pixels.

Runs on the browser's event loop (Playwright's async API), so several pages settle at once. Segments
are screenshots of document regions (``full_page=True`` with a clip), so fixed and sticky headers
appear once, where they sit at the top of the page, and viewport-height sections keep the viewport's
height. A page is bounded in time and pixels: what did not fit is said in a warning.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

from docvision.document import IngestOptions
from docvision.errors import DocvisionError, ExternalTimeout, FetchError
import docvision.ingest.web.scripts as scripts
from docvision.ingest.web.extent import MAX_SEGMENT_PIXELS, content_box, device_scale
from docvision.ingest.web.guard import Guard
from docvision.sources import redact

# Capture at most this much of an endless (infinite-scroll) page: 60000 CSS px is a very long article,
# about 15 segments at scale 2, and took ~30 s here; more is rarely worth the model's time.
MAX_CSS_HEIGHT = 60_000
MAX_PIXELS = 320_000_000  # device pixels per page: 1280 x 60000 CSS px at scale 2, at most
MAX_PLAIN_HEIGHT = 16_384  # CSS px of a document without <body>, captured in one viewport
MAX_WORDS = 200_000
MAX_NAVIGATIONS = 5  # main-frame documents a page may load on its own before it counts as a loop
QUIET_S = 0.25  # no request in flight this long is network idle (Playwright's networkidle waits 500 ms)
MAX_SETTLE_S = 10.0  # settle and word-finding budgets are a quarter of the timeout, at most this
LEFT_GRACE_S = 1.0  # a local page that tried to leave gets this long to finish loading all the same
CLOSE_S = 10.0  # closing a context; one whose page script spins still closes in well under a second


@dataclass
class Shot:
    """A captured page: PNG segments (CSS top, bytes) and words, before they become a Document."""

    source: str
    title: str
    width: int
    height: int
    step: int  # CSS px per segment
    words: list
    pngs: list[tuple[int, bytes]]
    warnings: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    scale: float = 2.0  # device px per CSS px the page was drawn at (--scale, or less: device_scale)

    def document(self, options: IngestOptions, tools=None):
        """The Document of this capture (``tools`` unused: the page is captured already)."""
        from docvision.ingest.web.segments import document

        return document(self, options)


def settle_budget(timeout: float) -> float:
    return min(MAX_SETTLE_S, max(1.0, timeout / 4))


def total_budget(timeout: float) -> float:
    """The last bound on a whole capture: load, settle, words and drawing, with room to spare."""
    return 3 * timeout + MAX_SETTLE_S + 30


async def capture(browser, url: str, source: str, options: IngestOptions) -> Shot:
    """Open ``url`` in a fresh context of the run's browser and capture it as a Shot."""
    guard = Guard(url, options, browser.closed_proxy, browser.folders.get(source))
    budget = total_budget(options.timeout)
    shown = redact(source)
    opened: list = []  # the context, once there, closed here whatever happened
    try:
        return await asyncio.wait_for(_capture(browser, url, source, options, guard, opened), budget)
    except DocvisionError as exc:
        exc.source = exc.source or shown
        raise
    except asyncio.TimeoutError:
        raise ExternalTimeout(f"the page did not finish within {budget:g} s (it kept the browser busy)",
                              source=shown) from None
    except Exception as exc:  # noqa: BLE001 - Playwright's errors, said in one line
        raise _browser_error(exc, source, options.timeout) from None
    finally:
        for context in opened:
            await _close_quietly(context)


async def _capture(browser, url: str, source: str, options: IngestOptions, guard: Guard, opened: list) -> Shot:
    width = int(options.viewport_width)
    scale, bounded = device_scale(width, options.device_scale_factor)
    context = await browser.browser.new_context(
        viewport={"width": width, "height": _viewport_height(width)},
        device_scale_factor=scale,
        accept_downloads=False, service_workers="block", **guard.context_options(),
    )
    opened.append(context)
    context.set_default_timeout(options.timeout * 1000)
    await context.add_init_script(scripts.QUIET_DIALOGS_JS)
    loop = _NavigationCap(guard)
    if guard.local:
        await context.route("**/*", loop.route)
    page = await context.new_page()
    page.on("dialog", _dismiss)
    loop.watch(page)
    network = _NetworkQuiet(page)
    response = await _navigate(page, url, source, options.timeout, guard)
    warnings = await _settle(page, options.timeout, network, guard)
    shot = await _shoot(page, options, warnings, scale)
    shot.warnings[:0] = bounded + loop.warnings() + guard.warnings()
    shot.source = source
    shot.metadata = {"url": redact(source) if source.startswith(("http://", "https://")) else url,
                     "final_url": redact(page.url), "title": shot.title,
                     "status": response.status if response is not None else None,
                     "css_size": [shot.width, shot.height], "segments": len(shot.pngs)}
    return shot


class _NavigationCap:
    """Stop a page that keeps navigating itself (meta refresh 0, location.reload() in a timer).

    After ``MAX_NAVIGATIONS`` main-frame documents, further main-frame navigations are aborted, so the
    last document stays and is captured as a person would have seen it, with a warning. A web page's
    requests pass through Python only from then on (that would slow ordinary pages); a local page's
    always do, for its guard.
    """

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.page = None
        self.count = 0
        self.stopped = False

    def watch(self, page) -> None:
        self.page = page
        # Documents, not URL changes: framenavigated also fires on history.pushState and #hash
        # updates, which single-page apps and scroll-spies make many times without reloading.
        page.on("domcontentloaded", self._on_document)

    def _on_document(self, _page) -> None:
        self.count += 1
        if self.count >= MAX_NAVIGATIONS and not self.stopped:
            self.stopped = True
            if not self.guard.local:  # a local page's route is in place already
                asyncio.ensure_future(self._route_page())

    async def _route_page(self) -> None:
        try:
            await self.page.route("**/*", self.route)
        except Exception:  # noqa: BLE001 - the page may be closing
            pass

    async def route(self, route) -> None:
        request = route.request
        try:
            if self.stopped and request.is_navigation_request() and request.frame == self.page.main_frame:
                await route.abort("aborted")
            elif self.guard.local:
                await self.guard.route(route)
            else:
                await route.fallback()
        except Exception:  # noqa: BLE001 - the page may be closing
            pass

    def warnings(self) -> list[str]:
        if not self.stopped:
            return []
        return [f"the page kept reloading or redirecting itself (a refresh loop); captured it after "
                f"{MAX_NAVIGATIONS} loads"]


def _viewport_height(width: int) -> int:
    # Only the first screen depends on it (100vh heroes, what sits above the fold): a 16:9 screen.
    return max(600, min(1200, round(width * 9 / 16)))


async def _dismiss(dialog) -> None:
    try:
        await dialog.dismiss()
    except Exception:  # noqa: BLE001 - the page may already be gone
        pass


async def _close_quietly(context) -> None:
    try:
        await asyncio.wait_for(context.close(), CLOSE_S)
    except BaseException:  # noqa: BLE001 - a crashed page's context may not close cleanly
        pass


async def _navigate(page, url: str, source: str, timeout: float, guard: Guard):
    """Go to the page and wait for DOMContentLoaded; an HTTP error status is a failure.

    A local page that tried to leave while being parsed never reaches DOMContentLoaded (the refused
    navigation stopped its loading): what was parsed by then is captured, after LEFT_GRACE_S.
    """
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    shown = redact(source)
    going = asyncio.ensure_future(page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000))
    left = asyncio.ensure_future(guard.left.wait())
    try:
        await asyncio.wait({going, left}, return_when=asyncio.FIRST_COMPLETED)
        if not going.done():
            await asyncio.wait({going}, timeout=LEFT_GRACE_S)
        response = going.result() if going.done() else None
    except PlaywrightTimeout:
        raise ExternalTimeout(
            f"the page did not load within {timeout:g} s (raise --timeout if it is just slow)",
            source=shown) from None
    except Exception as exc:  # noqa: BLE001 - net::ERR_* and friends
        from docvision.ingest.web.fetch import network_error

        raise network_error(exc, source) from None
    finally:
        left.cancel()
        if not going.done():
            going.cancel()
            going.add_done_callback(lambda task: task.cancelled() or task.exception())  # never "unretrieved"
    # Playwright does not raise on HTTP errors: a 404 page would otherwise be captured as content.
    if response is not None and response.status >= 400:
        raise FetchError(f"HTTP {response.status} {response.status_text}".strip(), source=shown)
    return response


async def _settle(page, timeout: float, network: "_NetworkQuiet", guard: Guard) -> list[str]:
    """Wait for load, lazy content, network idle, fonts, images and a stable height, within a budget."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    warnings: list[str] = []
    try:
        # A slow image or script may hold the load event back; it gets half the timeout. A page
        # whose loading a refused navigation stopped will not fire it at all.
        wait_s = LEFT_GRACE_S if guard.left.is_set() else timeout / 2
        await page.wait_for_load_state("load", timeout=wait_s * 1000)
    except PlaywrightTimeout:
        if not guard.left.is_set():
            warnings.append(f"the page's load event did not fire within {timeout / 2:g} s (a resource hung);"
                            " captured what had arrived")
    budget = settle_budget(timeout)
    end = time.monotonic() + budget
    left_ms = lambda: max(1.0, (end - time.monotonic()) * 1000)  # noqa: E731
    # Scroll first, so the lazy loads the scroll starts are waited for by the network-idle signal.
    await _evaluate(page, scripts.SCROLL_JS, [MAX_CSS_HEIGHT, left_ms() / 2], timeout)
    settled = await network.wait(left_ms())
    settled = await _evaluate(page, scripts.SETTLE_JS, left_ms(), timeout) and settled
    if not settled:
        warnings.append(f"the page kept changing (network activity or growing content) for {budget:g} s;"
                        " captured it as it was then")
    return warnings


async def _evaluate(page, script: str, arg, timeout: float):
    """Run a JS function in the page and return its value, within ``timeout`` seconds.

    The bound is kept here, not by Playwright: a page whose script never yields hung its
    wait_for_function for good. The caller then closes the context, which ends even a spinning page.
    It is tried again after the page navigated itself (a script or meta refresh replacing the
    document mid-settle), until the navigation cap stops a page that keeps doing so.
    """
    for attempt in range(MAX_NAVIGATIONS + 1):
        try:
            return await asyncio.wait_for(page.evaluate(script, arg), timeout)
        except asyncio.TimeoutError:
            raise ExternalTimeout(f"the page stopped responding for {timeout:g} s (a script kept it busy)") from None
        except Exception as exc:  # noqa: BLE001 - Playwright raises its generic Error here
            gone = "context was destroyed" in str(exc) or "navigat" in str(exc)
            if attempt == MAX_NAVIGATIONS or not gone:
                raise
            await page.wait_for_load_state("load")
    return None


class _NetworkQuiet:
    """Requests in flight, followed through the page's events, to see network idle sooner.

    Playwright's "networkidle" always waits 500 ms after the last request, which was a third of the
    time of capturing a simple local page; ``QUIET_S`` with nothing in flight is as telling.
    """

    def __init__(self, page) -> None:
        self.inflight: set = set()
        self.last = time.monotonic()
        page.on("request", self._start)
        page.on("requestfinished", self._end)
        page.on("requestfailed", self._end)

    def _start(self, request) -> None:
        # A redirect hop may end without its own "requestfinished": its successor ends it.
        self.inflight.discard(request.redirected_from)
        self.inflight.add(request)
        self.last = time.monotonic()

    def _end(self, request) -> None:
        self.inflight.discard(request)
        self.last = time.monotonic()

    async def wait(self, ms: float) -> bool:
        """True once nothing has been in flight for ``QUIET_S``; False when ``ms`` ran out first."""
        end = time.monotonic() + ms / 1000
        while time.monotonic() < end:
            if not self.inflight and time.monotonic() - self.last >= QUIET_S:
                return True
            await asyncio.sleep(0.025)
        return False


async def _shoot(page, options: IngestOptions, warnings: list[str], scale: float) -> Shot:
    """Words and segment screenshots (PNG bytes) of the page's content, top to bottom, within budgets."""
    info = await _evaluate(page, scripts.MEASURE_JS, None, options.timeout)
    width = max(1, min(int(info["width"]) or options.viewport_width, options.viewport_width))
    height = max(1, int(info["height"]))
    if info["html"]:
        extent = await _evaluate(page, scripts.EXTENT_JS, settle_budget(options.timeout) * 500, options.timeout)
        width, height = content_box(extent, width, height)
    full = height
    limit = min(MAX_CSS_HEIGHT, max(1, int(MAX_PIXELS / (width * scale * scale))))
    if height > limit:
        warnings.append(f"the page is {height} px tall; captured the first {limit} px")
        height = limit
    full_page = info["html"]
    if not full_page:
        # Playwright's full-page screenshot hangs on documents without a <body> (SVG, XML): show the
        # whole document in one tall viewport instead.
        height = min(height, MAX_PLAIN_HEIGHT)
        await page.set_viewport_size({"width": width, "height": height})
    found = json.loads(await _evaluate(page, scripts.WORDS_JS,
                                       [MAX_WORDS, height, settle_budget(options.timeout) * 1000], options.timeout))
    rows = min(options.segment_height, MAX_SEGMENT_PIXELS // max(1, round(width * scale)))
    step = max(1, int(rows // scale))  # CSS px per segment
    pngs = await _segments(page, width, height, step, full_page, options)
    drawn = min(height, len(pngs) * step)
    if found["cut"]:
        warnings.append(_words_cut(found, len(found["words"]), drawn, options.timeout))
    if drawn < height:
        warnings.append(f"drawing the page took over {draw_budget(options.timeout):g} s: captured its first "
                        f"{len(pngs)} of {-(-height // step)} segments (the top {drawn} of {full} px); "
                        "raise --timeout for the rest")
    return Shot(source="", title=info["title"], width=width, height=drawn, step=step, words=found["words"],
                pngs=pngs, warnings=warnings, scale=scale)


def draw_budget(timeout: float) -> float:
    """Seconds a page's segments may take to draw, the first one always taken."""
    return max(10.0, timeout / 2)


async def _segments(page, width: int, height: int, step: int, full_page: bool, options) -> list:
    # A 2 MB single-paragraph page took 4-7 s per segment (each screenshot lays the whole page out
    # again at its full height): the segments stop at the draw budget.
    end = time.monotonic() + draw_budget(options.timeout)
    pngs = []
    for top in range(0, height, step):
        if pngs and time.monotonic() > end:
            break
        clip = {"x": 0, "y": top, "width": width, "height": min(step, height - top)}
        # A segment may take as long as the drawing budget: the first is always taken.
        limit = max(options.timeout, draw_budget(options.timeout))
        pngs.append((top, await page.screenshot(clip=clip, full_page=full_page, type="png",
                                                animations="disabled", caret="hide", timeout=limit * 1000)))
    return pngs


def _words_cut(found: dict, count: int, drawn: int, timeout: float) -> str:
    if found["cut"] == "words":
        return f"the page has over {MAX_WORDS} words: the text anchors stop there (the picture is whole)"
    return (f"finding the page's words took over {settle_budget(timeout):g} s: the text anchors cover "
            f"{count} words down to {int(found['reached'])} of {drawn} px (the picture is whole)")


def _browser_error(exc: Exception, source: str, timeout: float) -> DocvisionError:
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    from docvision.ingest.web.fetch import scrub

    shown = redact(source)
    if isinstance(exc, PlaywrightTimeout):
        return ExternalTimeout(f"the browser did not finish within {timeout:g} s", source=shown)
    text = scrub((str(exc).strip().splitlines() or [type(exc).__name__])[0], source)
    if "closed" in text.lower() or "crash" in text.lower():
        return FetchError(f"the browser page crashed or closed: {text}", source=shown)
    return FetchError(f"the browser failed: {text}", source=shown)
