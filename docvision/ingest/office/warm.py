"""A warm LibreOffice: started once per run, driven through ``unoworker`` and our macro inside it.

In: requests for the macro (dicts) and a timeout per request. Out: the macro's answers (dicts).
Raises ``Unavailable`` when LibreOffice cannot be driven this way here (no Python with LibreOffice's
``uno``, no Python script provider), ``Crashed`` when LibreOffice or the worker died (the caller
starts another and tries again), ExternalTimeout when it hung or did not start in time (it is killed
first), ToolMissing when soffice exits as soon as it is started.

Talking to the worker: one JSON line each way, read with select() against a deadline, so a hung
LibreOffice costs the timeout and never a hang; the worker and LibreOffice share one process group,
which ``Processes.kill`` stops from any thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import select
import subprocess
import time
from pathlib import Path

from docvision.errors import ExternalTimeout, ToolMissing
from docvision.ingest.office.soffice import ENV_SOFFICE, Processes

ENV_PYTHON = "DOCVISION_UNO_PYTHON"  # the Python that imports LibreOffice's uno; "none" turns this path off
WORKER = Path(__file__).with_name("unoworker.py")
DEBIAN_PYTHON = "/usr/bin/python3"  # the interpreter Debian's python3-uno is built for


class Unavailable(Exception):
    """LibreOffice cannot be driven through UNO here; the message says what to install."""


class Crashed(Exception):
    """LibreOffice (or the worker) went away in the middle of a request."""


def python_for_uno(soffice: str) -> str | None:
    """The interpreter to run the worker with: $DOCVISION_UNO_PYTHON, LibreOffice's bundled python
    (builds from libreoffice.org), Debian's python3; None when there is none or it is set to "none"."""
    chosen = os.environ.get(ENV_PYTHON)
    if chosen:
        return None if chosen.lower() == "none" else chosen
    bundled = Path(os.path.realpath(soffice)).with_name("python")
    for candidate in (bundled, Path(DEBIAN_PYTHON)):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def pipe_files(pipe: str, profile: Path) -> list[Path]:
    """The sockets a LibreOffice on ``profile`` listening on ``pipe`` makes in /tmp: the pipe we connect
    to, and its single-instance pipe, named after the MD5 of the profile's URL in UTF-16 with each
    byte in unpadded hex (checked against a running 7.4)."""
    digest = hashlib.md5(profile.as_uri().encode("utf-16-le")).digest()
    prefix = f"/tmp/OSL_PIPE_{os.getuid()}_"
    return [Path(prefix + pipe), Path(prefix + "SingleOfficeIPC_" + "".join(format(b, "x") for b in digest))]


class WarmOffice:
    """One worker and its LibreOffice; ``start`` returns at once, the first ``call`` waits for it."""

    def __init__(self, processes: Processes, python: str, soffice: str, profile: Path, start_timeout: float):
        self._processes = processes
        pipe = f"docvision-{os.getpid()}-{secrets.token_hex(6)}"
        self._command = [python, str(WORKER), soffice, profile.as_uri(), pipe, f"{start_timeout:g}"]
        self._pipes = pipe_files(pipe, profile)
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen | None = None
        self._buffer = b""
        self._ready = False
        self.launched = False  # LibreOffice itself was started (the worker got past importing uno)
        self.busy = False  # a request was sent and its answer not read yet

    def start(self) -> None:
        """Start the worker (which starts LibreOffice) without waiting for it."""
        if self._proc is None:
            try:
                self._proc = self._processes.start(self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                   stderr=subprocess.DEVNULL)
            except OSError as exc:  # $DOCVISION_UNO_PYTHON names nothing runnable
                raise Unavailable(f"cannot run {self._command[0]}: {exc.strerror}") from None

    def call(self, request: dict, timeout: float, source: str | None = None) -> dict:
        """The macro's answer to ``request``; LibreOffice is killed when it takes longer than ``timeout``."""
        return self.receive(self.send(request, source) + timeout, timeout, source)

    def send(self, request: dict, source: str | None = None) -> float:
        """Hand LibreOffice ``request`` (waiting for it to be up first); when it was sent (monotonic)."""
        self.start()
        if not self._ready:
            self._await_ready(source)
        try:
            self._proc.stdin.write(json.dumps(request).encode() + b"\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            self.stop()
            raise Crashed("the worker is gone") from None
        self.busy = True
        return time.monotonic()

    def receive(self, deadline: float, timeout: float, source: str | None = None) -> dict:
        """The answer to the request sent last, before ``deadline`` (LibreOffice is killed after it)."""
        answer = self._read(deadline, timeout, "finish converting", source)
        self.busy = False
        if answer.get("error") == "crashed":
            self.stop()
            raise Crashed(answer.get("message", ""))
        return answer

    def _await_ready(self, source: str | None) -> None:
        first = self._read(time.monotonic() + self._start_timeout + 5, self._start_timeout, "start", source)
        self.launched = first.get("error") != "no-uno"
        if first.get("ready"):
            self._ready = True
            return
        self.stop()
        if first.get("error") in ("no-uno", "no-macro"):
            raise Unavailable(first.get("message", ""))
        if first.get("exited") is not None:
            raise ToolMissing(f"LibreOffice exited (status {first['exited']}) as soon as it was started; check the "
                              f"installation or {ENV_SOFFICE}", source=source)
        raise ExternalTimeout(f"LibreOffice did not start in {self._start_timeout:g} s and was stopped (--timeout "
                              "sets the limit)", source=source)

    def _read(self, deadline: float, timeout: float, doing: str, source: str | None) -> dict:
        """One JSON line from the worker before ``deadline``; kills it on a timeout, Crashed on EOF."""
        stdout = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            try:
                readable = select.select([stdout], [], [], max(0.0, left))[0] if left > 0 else []
            except (OSError, ValueError):  # the pipe was closed under us
                raise Crashed("the worker's output was closed") from None
            if not readable:
                self.stop()
                raise ExternalTimeout(
                    f"LibreOffice did not {doing} in {timeout:g} s and was stopped; the file may be too large or "
                    "malformed (--timeout sets the limit)", source=source)
            try:
                chunk = os.read(stdout, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                self.stop()
                raise Crashed("the worker closed its output")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            return json.loads(line)
        except ValueError:
            self.stop()
            raise Crashed(f"unreadable answer {line[:80]!r}") from None

    def quit(self, timeout: float) -> None:
        """End LibreOffice cleanly (it removes its pipes from /tmp), then make sure with ``stop``.

        Only for a LibreOffice that is not in the middle of a request."""
        proc = self._proc
        if proc is not None and self._ready and not self.busy:
            try:
                proc.stdin.write(b"quit\n")
                proc.stdin.close()
                proc.wait(timeout=timeout)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        self.stop()

    def stop(self) -> None:
        """Kill the worker's process group (LibreOffice with it); safe from any thread, and twice."""
        proc, self._proc = self._proc, None
        self._ready, self._buffer, self.busy = False, b"", False
        if proc is not None:
            self._processes.kill(proc)
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            for leftover in self._pipes:  # a killed LibreOffice cannot remove them itself
                leftover.unlink(missing_ok=True)
