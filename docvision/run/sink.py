"""Where records and progress go: the terminal or stdout, an ``--output`` file that survives kills, a bar.

In: records as the batch finishes them. Out: each record shown (human or JSON Lines on stdout) and,
with ``--output FILE``, appended to FILE as one JSON line written with a single ``os.write`` while
Ctrl-C is held back, so the file only ever ends in a whole line -- unless the process is killed with
SIGKILL mid-write; then the torn last line is cut off on the next open and that source is redone.

``--resume`` reads FILE first: sources with an "ok" record for the same task are skipped; their error
records are dropped (the source runs again), so a finished file names every source exactly once.
Timings vary from run to run; ``--no-timings`` / DOCVISION_NO_TIMINGS=1 leaves them out, making
JSON Lines byte-identical across runs of the same inputs.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from docvision import records
from docvision.errors import UsageError


def strip_timings(value):
    """A copy without anything that varies between runs: "timings" blocks and numeric "*_s" fields."""
    if isinstance(value, dict):
        return {k: strip_timings(v) for k, v in value.items()
                if k != "timings" and not (k.endswith("_s") and isinstance(v, (int, float)))}
    if isinstance(value, list):
        return [strip_timings(v) for v in value]
    return value


@contextmanager
def _no_interrupt():
    """Hold Ctrl-C back while a line is written, then deliver it, so no line is ever half written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *args: caught.append(args))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(*caught[0])


def repair_tail(path: Path) -> None:
    """Cut a torn last line (a run killed mid-write) so the file ends in a whole line."""
    with open(path, "rb+") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        block = min(size, 1 << 20)
        while True:  # find the last newline, reading backwards
            fh.seek(size - block)
            data = fh.read(block)
            cut = data.rfind(b"\n")
            if cut >= 0:
                fh.truncate(size - block + cut + 1)
                return
            if block == size:
                fh.truncate(0)
                return
            block = min(size, block * 2)


def resume(path: Path, task: str) -> set[str]:
    """Sources already done (status ok, same task) in ``path``; drops its stale error records."""
    if not path.exists():
        return set()
    try:
        repair_tail(path)
        with open(path, encoding="utf-8") as fh:
            lines = fh.readlines()
    except OSError as exc:
        raise _unusable(path, exc) from None
    kept, done, dropped = [], set(), False
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            dropped = True  # unreadable line: the source it belonged to runs again
            continue
        if record.get("task") == task and record.get("status") != "ok":
            dropped = True
            continue
        if record.get("task") == task:
            done.add(record.get("source"))
        kept.append(line)
    if dropped:
        tmp = path.with_name(f".{path.name}.resume-tmp")
        tmp.write_text("".join(kept), encoding="utf-8")
        os.replace(tmp, path)
    return done


def _unusable(path: Path, exc: OSError) -> UsageError:
    """The one line for an --output that cannot be read or written (checked before any source runs)."""
    if path.is_dir():
        return UsageError(f"--output {path} is a folder; give a file name")
    if path.parent.exists() and not path.parent.is_dir():
        return UsageError(f"cannot write --output {path}: {path.parent} is a file, not a folder")
    return UsageError(f"cannot write --output {path}: {exc.strerror or exc}; choose a file in a writable folder")


class RecordSink:
    """Shows each record and appends it to the output file; remembers whether any source failed."""

    def __init__(self, emit: Callable[[dict], None] | None, path: Path | None = None, timings: bool = True):
        self.emit, self.path, self.timings = emit, path, timings
        self.failed = False
        self.written = 0
        self._fd = None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.exists():
                    repair_tail(path)
                self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError as exc:
                raise _unusable(path, exc) from None

    def write(self, record: dict, say: bool = True) -> None:
        """Append ``record`` to the file and show it; ``say=False``: an error record whose reason the
        caller reports once for the whole batch (the emitter then adds no stderr line of its own)."""
        if not self.timings:
            record = strip_timings(record)
        self.failed |= record.get("status") != "ok"
        if self._fd is not None:
            data = (records.dumps(record) + "\n").encode("utf-8")
            with _no_interrupt():
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view):]
        if self.emit is not None:
            self.emit(record) if say else self.emit(record, say=False)
        self.written += 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Progress:
    """A progress bar with ETA on stderr, only when stderr is a terminal and there is more than one source."""

    def __init__(self, total: int, enabled: bool | None = None):
        if enabled is None:
            enabled = total > 1 and sys.stderr.isatty()
        self.total, self.enabled = total, enabled
        self._bar = None
        self._task = None

    def __enter__(self) -> "Progress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar
            from rich.progress import TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True,
                            redirect_stdout=sys.stdout.isatty(), redirect_stderr=True)
            self._bar.__enter__()
            self._task = self._bar.add_task("starting", total=self.total)
        return self

    def advance(self, source: str, ok: bool) -> None:
        if self._bar is not None:
            name = Path(source).name or source
            self._bar.update(self._task, advance=1, description=name[:40])

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
