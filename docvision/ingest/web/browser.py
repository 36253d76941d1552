"""The run's Chromium: find it, launch it for a closed network, drive it from a thread of its own.

In: an optional explicit executable (``IngestOptions.browser`` or DOCVISION_CHROMIUM). Out: a running
``Browser``. Playwright's async API runs on a private event-loop thread, so several pages are captured
at once from one driver (the sync API allows one call in flight per thread, and binds the browser to
the thread that started it); any thread hands it work with ``run`` or ``submit``. ``take`` gives one
web source's capture, started ahead of its turn when the batch announced it (``ahead``). Starting
Chromium costs about a second, so a batch pays it once. Playwright is imported only in here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import socket
import threading
from pathlib import Path

from docvision.errors import ExternalTimeout, ToolMissing

ENV_VAR = "DOCVISION_CHROMIUM"
SYSTEM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
INSTALL_HINT = (
    "install one with `apt-get install chromium` (or `playwright install chromium`), "
    f"or point {ENV_VAR} / --browser at a Chromium executable"
)

# Flags for a machine with no network beyond what the page itself needs: no background updates,
# sync, first-run pings or QUIC probes that would stall or leak on a closed network, and no WebRTC
# UDP, which no proxy setting would stop (pages of local files must reach nothing).
LAUNCH_FLAGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-quic",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
)
# Every browser context opens a window, and Chromium 156 builds a WebUI omnibox popup for each: a
# renderer of its own that cost ~1 CPU-s per context, where the captured page's renderer cost 0.06
# (2.2 -> 0.94 CPU-s per captured page here). Chromium keeps only the last --disable-features, so
# Playwright's own list (1.65) is repeated; tests/ingest/test_web_browser.py checks it still is.
PLAYWRIGHT_DISABLED_FEATURES = (
    "AimEnabled", "AvoidCorsURLLoaderRestartOnRedirect", "AvoidUnnecessaryBeforeUnloadCheckSync",
    "DestroyProfileOnBrowserClose", "HttpsFirstBalancedModeAutoEnable", "HttpsUpgrades", "LensOverlay",
    "MediaRouter", "NetworkTimeServiceQuerying", "OptimizationHints", "PaintHolding", "PreconnectToSearch",
    "TcpPortRandomizationWin", "ThirdPartyStoragePartitioning", "msEdgeUpdateLaunchServicesPreferredVersion",
    "msForceBrowserSignIn",
)
DISABLED_FEATURES = (*PLAYWRIGHT_DISABLED_FEATURES, "WebUIOmniboxPopup", "WebUIOmniboxAimPopup")
CLOSE_S = 15.0  # closing the browser and the driver; past this the process is left to end them


def launch_flags() -> list[str]:
    """Chromium command-line flags; --no-sandbox only as root, where Chromium refuses to start without it."""
    flags = [*LAUNCH_FLAGS, "--disable-features=" + ",".join(DISABLED_FEATURES)]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags.append("--no-sandbox")
    return flags


def playwright_managed(playwright=None) -> str | None:
    """The browser `playwright install chromium` put in place, if it did (None otherwise)."""
    try:
        if playwright is not None:
            path = playwright.chromium.executable_path
        else:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p:
                path = p.chromium.executable_path
    except Exception:  # noqa: BLE001 - no driver or no browser registry: just not installed
        return None
    return path if path and Path(path).is_file() else None


def find_browser(explicit: str | None = None, playwright=None) -> str:
    """The Chromium executable to use: explicit setting, then Playwright's own, then a system one.

    ``playwright`` is a started Playwright, to ask for its managed browser without starting a
    second driver; without it one is started briefly.
    """
    wanted = explicit or os.environ.get(ENV_VAR)
    if wanted:
        path = shutil.which(wanted) or (wanted if Path(wanted).is_file() else None)
        if path is None:
            raise ToolMissing(f"browser {wanted!r} not found; {INSTALL_HINT}")
        return path
    managed = playwright_managed(playwright)
    if managed:
        return managed
    for name in SYSTEM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise ToolMissing(f"no Chromium found; {INSTALL_HINT}")


class Browser:
    """A running Chromium on its own event-loop thread; ``close()`` is safe to call twice."""

    def __init__(self, explicit: str | None, timeout: float):
        from docvision.ingest.web.ahead import Ahead

        self.explicit = explicit
        self.executable = explicit or "chromium"
        self.browser = None  # Playwright's async Browser, used only on the loop thread
        self.folders: dict[str, str] = {}  # source -> the folder whose walk found it (Tools.expect)
        self._playwright = None
        self._closed = False
        # A port that is bound and never listens: a proxy there refuses every connection at once,
        # which is how a context is kept off the network (see guard.py). Held for the browser's life.
        self._dead_end = socket.socket()
        self._dead_end.bind(("127.0.0.1", 0))
        self.closed_proxy = f"http://127.0.0.1:{self._dead_end.getsockname()[1]}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="docvision-browser", daemon=True)
        self._thread.start()
        try:
            self.run(self._start(explicit, timeout), timeout + 30)
        except BaseException:
            self.close()
            raise
        self.ahead = Ahead(self)

    async def _start(self, explicit: str | None, timeout: float) -> None:
        from playwright.async_api import Error, async_playwright

        self._playwright = await async_playwright().start()
        self.executable = find_browser(explicit, self._playwright)
        try:
            try:
                self.browser = await self._launch(launch_flags(), timeout)
            except Error as exc:
                # Containers without user namespaces refuse Chromium's sandbox even for non-root users.
                if "sandbox" not in str(exc).lower() or "--no-sandbox" in launch_flags():
                    raise
                self.browser = await self._launch([*launch_flags(), "--no-sandbox"], timeout)
        except Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if "Timeout" in type(exc).__name__ or "Timeout" in first:
                raise ExternalTimeout(
                    f"Chromium ({self.executable}) did not start within {timeout:g} s") from None
            raise ToolMissing(f"Chromium ({self.executable}) failed to start: {first}") from None

    async def _launch(self, flags: list[str], timeout: float):
        return await self._playwright.chromium.launch(
            executable_path=self.executable, headless=True, args=flags, timeout=timeout * 1000,
            # Ctrl-C reaches Python as KeyboardInterrupt; the run closes the browser.
            handle_sigint=False, handle_sigterm=False, handle_sighup=False,
        )

    def submit(self, coro) -> concurrent.futures.Future:
        """Start ``coro`` on the browser's loop; its result (or error) comes through the future."""
        if self._closed:
            coro.close()
            raise ToolMissing("the browser was closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def run(self, coro, timeout: float):
        """Run ``coro`` on the browser's loop and wait for it, ``timeout`` seconds at most."""
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise ExternalTimeout(f"the browser did not answer within {timeout:g} s") from None

    @property
    def alive(self) -> bool:
        return (not self._closed and self._thread.is_alive() and self.browser is not None
                and self.browser.is_connected())

    def expect(self, sources: list[str]) -> None:
        """Announce the batch's web sources, in order, so their captures can start ahead of their turn."""
        self.ahead.expect(sources)

    def take(self, source: str, options):
        """The source's capture (``capture.Shot``) or download (``fetch.Download``), waited for here."""
        return self.ahead.take(source, options)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        ahead = getattr(self, "ahead", None)
        if ahead is not None:
            ahead.close()
        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(CLOSE_S)
            except Exception:  # noqa: BLE001 - closing: the process ends the driver if this fails
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()
        self._dead_end.close()

    async def _stop(self) -> None:
        try:
            if self.browser is not None and self.browser.is_connected():
                await self.browser.close()
        finally:
            if self._playwright is not None:
                await self._playwright.stop()
