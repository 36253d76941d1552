"""Where records go: shown (stdout) and appended to ``--output``, so that finished work is never lost.

In: records as the run finishes them. Out: each record shown through ``emit`` and, with ``--output FILE``,
appended to FILE as one JSON line written with a single ``os.write`` while Ctrl-C is held back, so the
file only ever ends in a whole line -- unless the process is killed with SIGKILL mid-write; then the torn
last line is cut off on the next open and that source is redone.

FILE is locked (``flock``) for the whole run: a second run on the same file (a cron job overlapping a
manual run) waits for the first to finish, then resumes from what it wrote; lines of two runs never
interleave. When FILE cannot be written (a full disk, /dev/full, an I/O error) the run says so once,
keeps showing records on stdout and ends with ExitStatus.OUTPUT_LOST instead of success.

``resume`` reads FILE first: sources with an "ok" record for the same task are skipped; their error
records are dropped (the source runs again), so a finished file names every source exactly once. Lines
that are not records (hand edits, invalid UTF-8) are kept as they are and named in a warning.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import docvision.records as records
from docvision.errors import UsageError


def strip_timings(record: dict) -> dict:
    """A copy without anything that varies between runs: ``timings`` null, numeric "*_s" fields dropped."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not (k.endswith("_s") and isinstance(v, (int, float)))}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return {k: None if k == "timings" else strip(v) for k, v in record.items()
            if not (k.endswith("_s") and isinstance(v, (int, float)))}


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


def repair_tail(fd: int) -> None:
    """Cut a torn last line (a run killed mid-write) so the file ends in a whole line."""
    size = os.lseek(fd, 0, os.SEEK_END)
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    block = min(size, 1 << 20)
    while True:  # find the last newline, reading backwards
        cut = os.pread(fd, block, size - block).rfind(b"\n")
        if cut >= 0:
            os.ftruncate(fd, size - block + cut + 1)
            return
        if block == size:
            os.ftruncate(fd, 0)
            return
        block = min(size, block * 2)


def _unusable(path: Path, exc: OSError) -> UsageError:
    """The one line for an --output that cannot be opened (checked before any source runs)."""
    if path.is_dir():
        return UsageError(f"--output {path} is a folder; give a file name")
    if path.parent.exists() and not path.parent.is_dir():
        return UsageError(f"cannot write --output {path}: {path.parent} is a file, not a folder")
    return UsageError(f"cannot write --output {path}: {exc.strerror or exc}; choose a file in a writable folder")


class OutputFile:
    """An --output file opened for appending and locked against other runs until ``close()`` (a shard of
    an ``OutputDir`` is not locked itself: its folder is)."""

    def __init__(self, path: Path, say: Callable[[str], None], lock: bool = True):
        import fcntl
        import stat

        self.path = path
        try:
            if path.is_dir():
                raise UsageError(f"--output {path} is a folder; give a file name")
            if path.exists() and not (path.is_file() or path.is_char_device() or path.is_fifo()):
                raise UsageError(f"--output {path} is not a regular file; give a file name")
            path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _unusable(path, exc) from None
        self.regular = stat.S_ISREG(os.fstat(self.fd).st_mode)
        if self.regular and lock:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                say(f"waiting for another docvision run to finish writing {path}")
                fcntl.flock(self.fd, fcntl.LOCK_EX)
        if self.regular:
            try:
                repair_tail(self.fd)
            except OSError as exc:
                os.close(self.fd)
                raise _unusable(path, exc) from None

    def append(self, data: bytes) -> None:
        with _no_interrupt():
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]

    def files(self) -> list["OutputFile"]:
        return [self]

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock
            self.fd = None


class OutputDir:
    """--output-dir DIR: records as JSON Lines shards (part-00000.jsonl, ...), a new shard every
    ``SHARD_LINES`` records, for runs too large for one file. The folder is locked for the run (its
    .lock file) as --output's file is; each shard ends in whole lines as --output's file does."""

    SHARD_LINES = 100_000

    def __init__(self, path: Path, say: Callable[[str], None]):
        import fcntl

        self.path, self.say = path, say
        try:
            if path.exists() and not path.is_dir():
                raise UsageError(f"--output-dir {path} is a file; give a folder")
            path.mkdir(parents=True, exist_ok=True)
            self.lock = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UsageError(f"cannot write --output-dir {path}: {exc.strerror or exc}; "
                             "choose a writable folder") from None
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another docvision run to finish writing {path}")
            fcntl.flock(self.lock, fcntl.LOCK_EX)
        self.shards = [OutputFile(p, say, lock=False) for p in sorted(path.glob("part-*.jsonl"))]
        self.current: OutputFile | None = None
        self.lines = 0
        self.regular = True

    def files(self) -> list[OutputFile]:
        return list(self.shards)

    def append(self, data: bytes) -> None:
        if self.current is None or self.lines >= self.SHARD_LINES:
            self.current = OutputFile(self.path / f"part-{len(self.shards):05d}.jsonl", self.say, lock=False)
            self.shards.append(self.current)
            self.lines = 0
        self.current.append(data)
        self.lines += 1

    def close(self) -> None:
        for shard in self.shards:
            shard.close()
        if self.lock is not None:
            os.close(self.lock)
            self.lock = None


def resume(output: "OutputFile | OutputDir", task: str, say: Callable[[str], None],
           answers: dict | None = None) -> set[tuple[str, str | None]]:
    """Records already done (status ok, same task) in the locked output file (or every shard of an
    output folder), as (source, question) -- the question is None but for ask and chat; drops stale error
    records. ``answers``, when given, gets each done one's answer under the same key (a resumed chat's
    conversation so far).

    Lines that are not records are kept untouched and named once in a warning; the run resumes from
    the records it can read.
    """
    done: set[tuple[str, str | None]] = set()
    for file in output.files():
        done |= _resume(file, task, say, answers)
    return done


def _resume(output: OutputFile, task: str, say: Callable[[str], None],
            answers: dict | None = None) -> set[tuple[str, str | None]]:
    if not output.regular:
        return set()
    size = os.lseek(output.fd, 0, os.SEEK_END)
    data = os.pread(output.fd, size, 0) if size else b""
    kept, done, dropped, odd = [], set(), False, []
    for number, raw in enumerate(data.splitlines(keepends=True), start=1):
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            record = None
        if not records.is_record(record):
            odd.append(number)
            kept.append(raw)
            continue
        if record["task"] == task and record["status"] != "ok":
            dropped = True  # the source runs again; its new record replaces this one
            continue
        if record["task"] == task:
            done.add((record["source"], record.get("question")))
            if answers is not None:
                answers[(record["source"], record.get("question"))] = record.get("answer")
        kept.append(raw)
    if odd:
        shown = ", ".join(map(str, odd[:5])) + (f" and {len(odd) - 5} more" if len(odd) > 5 else "")
        say(f"--output {output.path}: line{'s' if len(odd) > 1 else ''} {shown} "
            f"{'are' if len(odd) > 1 else 'is'} not a docvision record and {'were' if len(odd) > 1 else 'was'} "
            "left as they are")
    if dropped:
        body = b"".join(kept)
        os.ftruncate(output.fd, 0)
        output.append(body)  # O_APPEND writes at the new end; we hold the lock, so nobody else writes
    return done


class RecordSink:
    """Shows each record and appends it to the output file; remembers failures and lost output."""

    def __init__(self, emit: Callable[..., None] | None, output: OutputFile | None = None,
                 timings: bool = True, say: Callable[[str], None] | None = None):
        self.emit, self.output, self.timings = emit, output, timings
        self.say = say or (lambda message: None)
        self.failed = False
        self.output_lost: OSError | None = None
        self.written = 0

    def keep(self, record: dict) -> dict:
        """Append ``record`` to the output file (timings stripped when asked) and count it; the record as
        kept, for whoever shows it. Called before a record is handed out, so it is on disk first."""
        if not self.timings:
            record = strip_timings(record)
        self.failed |= record.get("status") != "ok"
        if self.output is not None and self.output_lost is None:
            try:
                self.output.append((records.dumps(record) + "\n").encode("utf-8"))
            except OSError as exc:
                self.output_lost = exc
                reason = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else exc.strerror or exc
                self.say(f"cannot write to --output {self.output.path} ({reason}): records from here on are "
                         "only shown on stdout; the run will end with exit status 74")
        self.written += 1
        return record

    def write(self, record: dict, say: bool = True) -> None:
        """Keep ``record`` and show it; ``say=False``: an error record whose reason the caller reports
        once for the whole batch (the emitter then adds no stderr line of its own)."""
        record = self.keep(record)
        if self.emit is not None:
            self.emit(record) if say else self.emit(record, say=False)

    def close(self) -> None:
        if self.output is not None:
            self.output.close()
