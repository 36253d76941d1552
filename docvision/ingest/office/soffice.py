"""Finding and running LibreOffice headless to turn office files into PDF.

In: paths of office files, a target such as ``pdf:calc_pdf_Export:{...}``, a timeout. Out: the paths of
the converted files in an output folder (None for a file LibreOffice could not convert).

LibreOffice traps handled here: it exits 0 when a conversion fails (so we check that each output exists
and is not empty); two instances sharing a user profile hand their work to each other or block, so every
running conversion gets a profile of its own; and a stuck converter is killed with its whole process
group (soffice is a shell script that starts oosplash, which starts soffice.bin).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

from docvision.errors import ExternalTimeout, ToolMissing

ENV_SOFFICE = "DOCVISION_SOFFICE"
_CANDIDATES = ("soffice", "libreoffice")
_DEBIAN_PATH = "/usr/lib/libreoffice/program/soffice"

# Profiles are reused one job at a time: a fresh profile costs about 0.3 s of the ~1.8 s a conversion
# takes here, and exclusive use keeps concurrent jobs apart just as a new profile per job would.
_profiles_lock = threading.Lock()
_free_profiles: list[Path] = []
_profile_root: Path | None = None


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


def _acquire_profile() -> Path:
    global _profile_root
    with _profiles_lock:
        if _free_profiles:
            return _free_profiles.pop()
        if _profile_root is None:
            _profile_root = Path(tempfile.mkdtemp(prefix="docvision-lo-"))
            atexit.register(shutil.rmtree, _profile_root, True)
        return Path(tempfile.mkdtemp(prefix="profile-", dir=_profile_root))


def _release_profile(profile: Path, healthy: bool) -> None:
    if not healthy:  # a killed instance may leave a lock file or a half-written profile behind
        shutil.rmtree(profile, ignore_errors=True)
        return
    with _profiles_lock:
        _free_profiles.append(profile)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _run(command: list[str], timeout: float, source: str | None) -> int:
    """Run one LibreOffice job in its own process group, killed when the job ends or hangs; its exit code."""
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ExternalTimeout(
            f"LibreOffice did not finish converting in {timeout:g} s and was stopped; the file may be too "
            "large or malformed (--timeout sets the limit)", source=source) from None
    finally:
        # The whole group: a hung soffice.bin (and oosplash) on timeout or interrupt, and otherwise
        # any helper process that outlived the wrapper script.
        _kill_group(proc)


def convert(
    inputs: list[Path],
    outdir: Path,
    target: str,
    timeout: float,
    infilter: str | None = None,
    soffice: str | None = None,
    source: str | None = None,
) -> list[Path | None]:
    """Convert ``inputs`` in one LibreOffice run; return each output path, or None where none was written.

    ``target`` is what ``--convert-to`` takes (e.g. ``pdf:calc_pdf_Export:{...}``); outputs are named
    after the inputs' stems, so callers give inputs distinct stems. One run converts many files for
    the price of one start (about 1.8 s here), which is what batches should use.
    """
    executable = find_soffice(soffice)
    outdir.mkdir(parents=True, exist_ok=True)
    profile = _acquire_profile()
    command = [
        executable, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore", "--nologo",
        "--nodefault", "--nolockcheck", "--convert-to", target, "--outdir", str(outdir),
    ]
    if infilter:
        command.append(f"--infilter={infilter}")
    command += [str(p) for p in inputs]
    healthy = False
    try:
        # A crashed LibreOffice (non-zero exit) may leave its profile locked: that profile is dropped.
        healthy = _run(command, timeout, source) == 0
    finally:
        _release_profile(profile, healthy)
    suffix = "." + target.split(":", 1)[0]
    outputs: list[Path | None] = []
    for path in inputs:
        out = outdir / (path.stem + suffix)
        outputs.append(out if out.is_file() and out.stat().st_size > 0 else None)
    return outputs
