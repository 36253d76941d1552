"""The one Chromium of this process: find it, launch it for a closed network, reuse it, close it at exit.

In: an optional explicit executable (``IngestOptions.browser`` or DOCVISION_CHROMIUM). Out: a running
Playwright ``Browser`` shared by every web source of the process; each source opens its own isolated
context on it (see ``docvision.ingest.web``). Starting Chromium costs about a second, so a batch of
pages pays it once. Playwright is imported only here, and only when a web page is actually read.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from docvision.errors import ExternalTimeout, ToolMissing

ENV_VAR = "DOCVISION_CHROMIUM"
SYSTEM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
INSTALL_HINT = (
    "install one with `apt-get install chromium` (or `playwright install chromium`), "
    f"or point {ENV_VAR} / --browser at a Chromium executable"
)

# Flags for a machine with no network beyond what the page itself needs: no background updates,
# sync, first-run pings or QUIC probes that would stall or leak on a closed network.
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
)


def launch_flags() -> list[str]:
    """Chromium command-line flags; --no-sandbox only as root, where Chromium refuses to start without it."""
    flags = list(LAUNCH_FLAGS)
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
    """A running Chromium driven by Playwright's sync API; ``close()`` is safe to call twice."""

    def __init__(self, explicit: str | None, timeout: float):
        from playwright.sync_api import Error, sync_playwright

        self.explicit = explicit
        self._playwright = sync_playwright().start()
        try:
            self.executable = find_browser(explicit, self._playwright)
            try:
                self.browser = self._launch(launch_flags(), timeout)
            except Error as exc:
                # Containers without user namespaces refuse Chromium's sandbox even for non-root users.
                if "sandbox" not in str(exc).lower() or "--no-sandbox" in launch_flags():
                    raise
                self.browser = self._launch([*launch_flags(), "--no-sandbox"], timeout)
        except Error as exc:
            self._playwright.stop()
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if "Timeout" in type(exc).__name__ or "Timeout" in first:
                raise ExternalTimeout(
                    f"Chromium ({self.executable}) did not start within {timeout:g} s") from None
            raise ToolMissing(f"Chromium ({self.executable}) failed to start: {first}") from None
        except BaseException:
            self._playwright.stop()
            raise

    def _launch(self, flags: list[str], timeout: float):
        return self._playwright.chromium.launch(
            executable_path=self.executable, headless=True, args=flags, timeout=timeout * 1000,
            # Ctrl-C reaches Python as KeyboardInterrupt; the browser is closed at exit.
            handle_sigint=False, handle_sigterm=False, handle_sighup=False,
        )

    @property
    def alive(self) -> bool:
        return self.browser.is_connected()

    def new_context(self, **kwargs):
        """A fresh, isolated browser context (its own cookies, cache and storage)."""
        return self.browser.new_context(**kwargs)

    def close(self) -> None:
        try:
            if self.browser.is_connected():
                self.browser.close()
        except Exception:  # noqa: BLE001 - closing at exit: the process is going away anyway
            pass
        try:
            self._playwright.stop()
        except Exception:  # noqa: BLE001
            pass


def renderer_pids() -> list[int]:
    """The Chromium renderer processes started by this process (Linux /proc; elsewhere none)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:  # "pid (name) state ppid ..."
                    parents[int(entry)] = int(fh.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    ours, grown = {os.getpid()}, True
    while grown:  # our descendants: the Playwright driver, Chromium and its children
        found = {pid for pid, ppid in parents.items() if ppid in ours} - ours
        ours |= found
        grown = bool(found)
    renderers = []
    for pid in ours - {os.getpid()}:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if b"--type=renderer" in fh.read():
                    renderers.append(pid)
        except OSError:
            continue
    return renderers


class Watchdog:
    """Kill our renderers if a Playwright call outlives ``seconds``.

    Seen here on Playwright 1.65: when a page's script starts an endless loop while
    wait_for_function polls, its timeout never fires, and JSHandle.json_value() has no timeout at
    all; either call then waits for ever. Killing the renderer makes the call fail with "Target
    crashed"; ``fired`` tells the caller why. The next context gets a fresh renderer.
    """

    def __init__(self, seconds: float) -> None:
        import threading

        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        import signal

        self.fired = True
        for pid in renderer_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def __enter__(self) -> "Watchdog":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
