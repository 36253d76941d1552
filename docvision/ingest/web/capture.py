"""Capture one page in the shared Chromium: navigate, settle, read the visible words, cut full-page segments.

In: a URL (http(s) or file://), the source as the user typed it, IngestOptions. Out: a Document whose
Pages hold their segment as PNG bytes (decoded only when rendered, so a long page costs its compressed
size in memory) and the DOM's visible words in the segment's device pixels.

Segments are screenshots of document regions (``full_page=True`` with a clip), so fixed and sticky
headers appear once, where they sit at the top of the page, instead of in every segment, and
viewport-height sections keep the viewport's height.
"""

from __future__ import annotations

import io
import struct
import time

from docvision.document import Document, IngestOptions, Page, Word, parse_page_range
from docvision.errors import DocvisionError, ExternalTimeout, FetchError

# Capture at most this much of an endless (infinite-scroll) page: 60000 CSS px is a very long article,
# about 15 segments at scale 2, and took ~30 s here; more is rarely worth the model's time.
MAX_CSS_HEIGHT = 60_000
MAX_PLAIN_HEIGHT = 16_384  # CSS px of a document without <body>, captured in one viewport
MAX_WORDS = 200_000
MAX_NAVIGATIONS = 5  # main-frame documents a page may load on its own before it counts as a loop
QUIET_DIALOGS_JS = "window.alert = () => {}; window.confirm = () => false; window.prompt = () => null;"
WATCHDOG_GRACE_S = 5.0  # past the timeout, a page script that still holds the renderer is killed
QUIET_S = 0.25  # no request in flight this long is network idle (Playwright's networkidle waits 500 ms)
MAX_SETTLE_S = 10.0  # settle budget cap; the budget is a quarter of the timeout below that

# Scroll through the page once, a viewport at a time, so lazy images and infinite-scroll blocks load,
# then go back to the top. Bounded by height and by a deadline because some pages grow forever.
SCROLL_JS = """async ([maxHeight, budgetMs]) => {
  const end = Date.now() + budgetMs;
  const step = Math.max(200, window.innerHeight);
  // Two animation frames: enough for IntersectionObserver-driven lazy loaders to see the new position.
  const pause = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  if (document.documentElement.scrollHeight <= window.innerHeight) return;
  for (let y = 0; y < Math.min(document.documentElement.scrollHeight, maxHeight) && Date.now() < end; y += step) {
    window.scrollTo(0, y);
    await pause();
  }
  window.scrollTo(0, 0);
  await pause();
}"""

# After network idle: web fonts, images the scroll-through started, then a height that holds for 100 ms.
SETTLE_JS = """async (budgetMs) => {
  const end = Date.now() + budgetMs;
  const sleep = ms => new Promise(r => setTimeout(r, Math.max(0, ms)));
  if (document.fonts) await Promise.race([document.fonts.ready, sleep(budgetMs)]);
  const images = () => Array.from(document.images || []).every(i => i.complete);
  while (!images() && Date.now() < end) await sleep(50);
  let last = -1;
  while (Date.now() < end) {
    const height = document.documentElement.scrollHeight;
    if (height === last) return images();
    last = height;
    await sleep(100);
  }
  return false;
}"""

MEASURE_JS = """() => {
  window.scrollTo(0, 0);
  const d = document.documentElement, b = document.body, box = d.getBoundingClientRect();
  return {height: Math.max(d.scrollHeight, b ? b.scrollHeight : Math.max(box.bottom, window.innerHeight)),
          width: d.clientWidth || window.innerWidth, title: document.title || '', html: !!b};
}"""

# Every visible word of every text node, with its box in document CSS pixels.
WORDS_JS = """(maxWords) => {
  const skip = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'TEXTAREA']);
  const root = document.body || document.documentElement;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {acceptNode(node) {
    const el = node.parentElement;
    if (!el || skip.has(el.tagName) || !/\\S/.test(node.nodeValue)) return NodeFilter.FILTER_REJECT;
    if (el.checkVisibility && !el.checkVisibility({opacityProperty: true, visibilityProperty: true}))
      return NodeFilter.FILTER_REJECT;
    return NodeFilter.FILTER_ACCEPT;
  }});
  const out = [], range = document.createRange(), sx = window.scrollX, sy = window.scrollY;
  const re = /\\S+/g;
  let node;
  while ((node = walker.nextNode()) && out.length < maxWords) {
    const text = node.nodeValue;
    re.lastIndex = 0;
    let m;
    while ((m = re.exec(text)) && out.length < maxWords) {
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const r = range.getBoundingClientRect();
      if (r.width > 0 && r.height > 0)
        out.push([m[0], r.left + sx, r.top + sy, r.right + sx, r.bottom + sy]);
    }
  }
  return out;
}"""


def capture(url: str, source: str, options: IngestOptions, tools) -> Document:
    """Open ``url`` in a fresh context of the run's browser and turn it into a Document of segments."""
    from docvision.ingest.web import browser

    chromium = tools.browser()
    width = int(options.viewport_width)
    context = None
    # The last bound on the whole capture, for any Playwright call whose own timeout fails to fire.
    budget = 3 * options.timeout + MAX_SETTLE_S + 30
    with browser.Watchdog(budget) as watchdog:
        try:
            context = chromium.new_context(
                viewport={"width": width, "height": _viewport_height(width)},
                device_scale_factor=options.device_scale_factor,
                accept_downloads=False, service_workers="block",
            )
            context.set_default_timeout(options.timeout * 1000)
            # Dialogs answered inside the page: one round trip to Python per alert() took ~60 ms, so a
            # page raising a thousand of them never loaded. The handler stays for beforeunload prompts.
            context.add_init_script(QUIET_DIALOGS_JS)
            page = context.new_page()
            page.on("dialog", _dismiss)
            loop = _NavigationCap(page)
            network = _NetworkQuiet(page)
            response = _navigate(page, url, source, options.timeout)
            warnings = _settle(page, options.timeout, network)
            warnings[:0] = loop.warnings()
            shot = _shoot(page, options, warnings)
            metadata = {"url": source if source.startswith(("http://", "https://")) else url,
                        "final_url": page.url, "title": shot["title"],
                        "status": response.status if response is not None else None,
                        "css_size": [shot["width"], shot["height"]], "segments": len(shot["pngs"])}
        except DocvisionError as exc:
            exc.source = exc.source or source
            raise
        except Exception as exc:  # noqa: BLE001 - Playwright's errors, said in one line
            from docvision.ingest.web.fetch import browser_error

            if watchdog.fired:
                raise ExternalTimeout(f"the page did not finish within {budget:g} s (it kept the browser busy)",
                                      source=source) from None
            raise browser_error(exc, source, options.timeout) from None
        finally:
            if context is not None:
                _close_quietly(context)
    return _document(source, shot, options, warnings, metadata)


class _NavigationCap:
    """Stop a page that keeps navigating itself (meta refresh 0, location.reload() in a timer).

    After ``MAX_NAVIGATIONS`` main-frame documents, further main-frame navigations are aborted, so the
    last document stays and is captured as a person would have seen it, with a warning. Requests are
    intercepted only from then on: routing every request through Python would slow ordinary pages.
    """

    def __init__(self, page) -> None:
        self.page = page
        self.count = 0
        self.stopped = False
        # Documents, not URL changes: framenavigated also fires on history.pushState and #hash
        # updates, which single-page apps and scroll-spies make many times without reloading.
        page.on("domcontentloaded", self._on_document)

    def _on_document(self, _page) -> None:
        self.count += 1
        if self.count >= MAX_NAVIGATIONS and not self.stopped:
            self.stopped = True
            try:
                self.page.route("**/*", self._route)
            except Exception:  # noqa: BLE001 - the page may be closing
                pass

    def _route(self, route) -> None:
        request = route.request
        try:
            if request.is_navigation_request() and request.frame == self.page.main_frame:
                route.abort("aborted")
            else:
                route.fallback()
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


def _dismiss(dialog) -> None:
    try:
        dialog.dismiss()
    except Exception:  # noqa: BLE001 - the page may already be gone
        pass


def _close_quietly(context) -> None:
    try:
        context.close()
    except Exception:  # noqa: BLE001 - a crashed page's context may not close cleanly
        pass


def _navigate(page, url: str, source: str, timeout: float):
    """Go to the page and wait for DOMContentLoaded; an HTTP error status is a failure."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        response = page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
    except PlaywrightTimeout:
        raise ExternalTimeout(
            f"the page did not load within {timeout:g} s (raise --timeout if it is just slow)",
            source=source) from None
    except Exception as exc:  # noqa: BLE001 - net::ERR_* and friends
        from docvision.ingest.web.fetch import network_error

        raise network_error(exc, source) from None
    # Playwright does not raise on HTTP errors: a 404 page would otherwise be captured as content.
    if response is not None and response.status >= 400:
        raise FetchError(f"HTTP {response.status} {response.status_text}".strip(), source=source)
    return response


def _settle(page, timeout: float, network: "_NetworkQuiet") -> list[str]:
    """Wait for load, lazy content, network idle, fonts, images and a stable height, within a budget."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    warnings: list[str] = []
    try:
        # A slow image or script may hold the load event back; it gets half the timeout.
        page.wait_for_load_state("load", timeout=timeout * 500)
    except PlaywrightTimeout:
        warnings.append(f"the page's load event did not fire within {timeout / 2:g} s (a resource hung);"
                        " captured what had arrived")
    budget = min(MAX_SETTLE_S, max(1.0, timeout / 4))
    end = time.monotonic() + budget
    left_ms = lambda: max(1.0, (end - time.monotonic()) * 1000)  # noqa: E731
    # Scroll first: Chromium's network-idle signal fires once, 500 ms after the last request, so the
    # lazy loads the scroll starts are waited for by the same signal.
    _evaluate(page, SCROLL_JS, [MAX_CSS_HEIGHT, left_ms() / 2], timeout)
    settled = network.wait(left_ms())
    settled = _evaluate(page, SETTLE_JS, left_ms(), timeout) and settled
    if not settled:
        warnings.append(f"the page kept changing (network activity or growing content) for {budget:g} s;"
                        " captured it as it was then")
    return warnings


def _evaluate(page, script: str, arg, timeout: float):
    """Run a JS function in the page and return its value, within ``timeout`` seconds.

    page.evaluate has no timeout, and a page whose script never yields would hang it for good, so
    this goes through wait_for_function (the wrapper makes every result truthy). It is tried once
    more after the page navigated itself (a script or meta refresh replacing the document mid-settle).
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    from docvision.ingest.web.browser import Watchdog

    wrapped = f"async (arg) => ({{value: await ({script})(arg)}})"
    busy = ExternalTimeout(f"the page stopped responding for {timeout:g} s (a script kept it busy)")
    for attempt in (1, 2):
        try:
            # Playwright's own timeout does not fire when the page's script stops the renderer
            # mid-poll, and json_value() has none: the watchdog bounds both (seen hanging here).
            with Watchdog(timeout + WATCHDOG_GRACE_S) as watchdog:
                try:
                    handle = page.wait_for_function(wrapped, arg=arg, timeout=timeout * 1000)
                    return handle.json_value()["value"]
                except Exception:  # noqa: BLE001 - "Target crashed" once the watchdog fired
                    if watchdog.fired:
                        raise busy from None
                    raise
        except PlaywrightTimeout:
            raise busy from None
        except Exception as exc:  # noqa: BLE001 - Playwright raises its generic Error here
            if isinstance(exc, ExternalTimeout):
                raise
            gone = "context was destroyed" in str(exc) or "navigat" in str(exc)
            if attempt == 2 or not gone:
                raise
            page.wait_for_load_state("load")
    return None


class _NetworkQuiet:
    """Requests in flight, followed through the page's events, to see network idle sooner.

    Playwright's "networkidle" always waits 500 ms after the last request, which was a third of the
    time of capturing a simple local page; ``QUIET_S`` with nothing in flight is as telling.
    """

    def __init__(self, page) -> None:
        self.page = page
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

    def wait(self, ms: float) -> bool:
        """True once nothing has been in flight for ``QUIET_S``; False when ``ms`` ran out first."""
        end = time.monotonic() + ms / 1000
        while time.monotonic() < end:
            if not self.inflight and time.monotonic() - self.last >= QUIET_S:
                return True
            self.page.wait_for_timeout(50)  # lets Playwright deliver the request events meanwhile
        return False


def _shoot(page, options: IngestOptions, warnings: list[str]) -> dict:
    """Words and segment screenshots (PNG bytes) of the whole page, top to bottom."""
    info = _evaluate(page, MEASURE_JS, None, options.timeout)
    width = max(1, min(int(info["width"]) or options.viewport_width, options.viewport_width))
    height = max(1, int(info["height"]))
    if height > MAX_CSS_HEIGHT:
        warnings.append(f"the page is {height} px tall; captured the first {MAX_CSS_HEIGHT} px")
        height = MAX_CSS_HEIGHT
    full_page = info["html"]
    if not full_page:
        # Playwright's full-page screenshot hangs on documents without a <body> (SVG, XML): show the
        # whole document in one tall viewport instead.
        height = min(height, MAX_PLAIN_HEIGHT)
        page.set_viewport_size({"width": width, "height": height})
    words = _evaluate(page, WORDS_JS, MAX_WORDS, options.timeout)
    scale = options.device_scale_factor
    step = max(1, int(options.segment_height // scale))  # CSS px per segment
    pngs = []
    for top in range(0, height, step):
        clip = {"x": 0, "y": top, "width": width, "height": min(step, height - top)}
        pngs.append((top, page.screenshot(clip=clip, full_page=full_page, type="png", animations="disabled",
                                          caret="hide", timeout=options.timeout * 1000)))
    return {"title": info["title"], "width": width, "height": height, "step": step, "words": words,
            "pngs": pngs}


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, without decoding it."""
    return struct.unpack(">II", data[16:24])


def _document(source: str, shot: dict, options: IngestOptions, warnings: list[str], metadata: dict) -> Document:
    scale = options.device_scale_factor
    segments = shot["pngs"]
    count = len(segments)
    per_segment: list[list[Word]] = [[] for _ in segments]
    for text, x0, y0, x1, y1 in shot["words"]:
        centre = (y0 + y1) / 2
        if centre < 0 or centre >= shot["height"] or x0 >= shot["width"] or x1 <= 0:
            continue
        index = min(count - 1, int(centre // shot["step"]))
        size = _png_size(segments[index][1])
        oy = segments[index][0] * scale
        box = (max(0.0, x0 * scale), max(0.0, y0 * scale - oy),
               min(float(size[0]), x1 * scale), min(float(size[1]), y1 * scale - oy))
        per_segment[index].append(Word(text, box))
    chosen = parse_page_range(options.pages, count, source)

    def iter_pages():
        for index in chosen:
            data = segments[index][1]
            yield Page(label=f"segment {index + 1}/{count}", number=index + 1, size=_png_size(data),
                       render=_renderer(data), words=per_segment[index])

    return Document(source=source, kind="web", page_count=count, iter_pages=iter_pages,
                    warnings=warnings, metadata=metadata)


def _renderer(data: bytes):
    def render(width: int, height: int):
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            rgb = image.convert("RGB")
        if rgb.size != (width, height):
            rgb = rgb.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
        return rgb

    return render
