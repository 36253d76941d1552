"""Finding LibreOffice, keeping track of every process group it runs in, and the per-call conversion.

In: paths of office files, a target such as ``pdf:calc_pdf_Export:{...}``, a profile folder, a timeout.
Out: the paths of the converted files in an output folder (None for a file LibreOffice could not
convert). ``Processes`` is the register of what a converter started, so that ``kill_all`` can stop
everything from any thread, whatever state it is in.

LibreOffice traps handled here: it exits 0 when a conversion fails (so we check that each output exists
and is not empty); two instances sharing a user profile hand their work to each other or block, so every
running LibreOffice gets a profile of its own; and a stuck converter is killed with its whole process
group (soffice is a shell script that starts oosplash, which starts soffice.bin).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

from docvision.errors import ExternalTimeout, ToolMissing

ENV_SOFFICE = "DOCVISION_SOFFICE"
_CANDIDATES = ("soffice", "libreoffice")
_DEBIAN_PATH = "/usr/lib/libreoffice/program/soffice"


def find_soffice(explicit: str | None = None) -> str:
    """The soffice executable: ``explicit``, $DOCVISION_SOFFICE, soffice or libreoffice on PATH, Debian's path.

    Raises ToolMissing (one line saying how to install it) when there is none.
    """
    chosen = explicit or os.environ.get(ENV_SOFFICE)
    if chosen:
        found = shutil.which(chosen) if os.sep not in chosen else (chosen if os.access(chosen, os.X_OK) else None)
        if found:
            return found
        raise ToolMissing(f"LibreOffice not found at {chosen} (from {'the setting' if explicit else ENV_SOFFICE}); "
                          "point it at soffice or install LibreOffice (apt-get install libreoffice-calc-nogui)")
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    if os.access(_DEBIAN_PATH, os.X_OK):
        return _DEBIAN_PATH
    raise ToolMissing("LibreOffice (soffice) is not installed: install it (apt-get install libreoffice-calc-nogui "
                      f"libreoffice-writer-nogui libreoffice-impress-nogui) or set {ENV_SOFFICE}")


class Processes:
    """The process groups one converter started. Safe to use from any thread, and from a signal
    handler on a thread that is inside one of these methods (the lock is re-entrant and only ever
    held around a set operation, never around a wait)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._running: set[subprocess.Popen] = set()
        self.closed = False
        self.started = 0

    def start(self, command: list[str], **popen) -> subprocess.Popen:
        """Start ``command`` in a process group of its own; refused once ``kill_all`` has run."""
        with self._lock:
            if self.closed:
                raise ExternalTimeout("LibreOffice was stopped: the run is ending")
            proc = subprocess.Popen(command, start_new_session=True, **popen)
            self._running.add(proc)
            self.started += 1
        if self.closed:  # kill_all ran from a signal handler while Popen was starting this one
            self.kill(proc)
            raise ExternalTimeout("LibreOffice was stopped: the run is ending")
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        """Kill ``proc``'s whole group (soffice, oosplash, soffice.bin, our worker) and reap it."""
        with self._lock:
            self._running.discard(proc)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a process stuck in the kernel; nothing more we can do
            pass

    def kill_all(self) -> None:
        """Kill everything started so far and refuse new starts."""
        with self._lock:
            self.closed = True
            running = list(self._running)
        for proc in running:
            self.kill(proc)


def _run(processes: Processes, command: list[str], timeout: float, source: str | None) -> int:
    """Run one LibreOffice job in its own process group, killed when the job ends or hangs; its exit code."""
    proc = processes.start(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ExternalTimeout(
            f"LibreOffice did not finish converting in {timeout:g} s and was stopped; the file may be too "
            "large or malformed (--timeout sets the limit)", source=source) from None
    finally:
        # The whole group: a hung soffice.bin (and oosplash) on timeout or interrupt, and otherwise
        # any helper process that outlived the wrapper script.
        processes.kill(proc)


def convert(
    processes: Processes,
    profile: Path,
    inputs: list[Path],
    outdir: Path,
    target: str,
    timeout: float,
    infilter: str | None = None,
    source: str | None = None,
) -> tuple[list[Path | None], bool]:
    """Convert ``inputs`` in one LibreOffice run on ``profile``: each output path (None where none was
    written), and whether LibreOffice exited cleanly (a crashed one may leave its profile locked).

    ``target`` is what ``--convert-to`` takes (e.g. ``pdf:calc_pdf_Export:{...}``); outputs are named
    after the inputs' stems, so callers give inputs distinct stems. One run converts many files for
    the price of one start (about 1.8 s here), which is what batches without the warm converter use.
    """
    executable = find_soffice()
    outdir.mkdir(parents=True, exist_ok=True)
    command = [
        executable, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore", "--nologo",
        "--nodefault", "--nolockcheck", "--convert-to", target, "--outdir", str(outdir),
    ]
    if infilter:
        command.append(f"--infilter={infilter}")
    command += [str(p) for p in inputs]
    healthy = _run(processes, command, timeout, source) == 0
    suffix = "." + target.split(":", 1)[0]
    outputs: list[Path | None] = []
    for path in inputs:
        out = outdir / (path.stem + suffix)
        outputs.append(out if out.is_file() and out.stat().st_size > 0 else None)
    return outputs, healthy
