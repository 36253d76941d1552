"""Keep every core busy while a command runs: the test suite must pass on a loaded machine too.

    python3 tests/load.py -- python3 -m pytest -q              # the suite with all cores kept busy
    python3 tests/load.py --cores 1 -- python3 -m pytest -q tests/ingest/test_web_capture.py
    python3 tests/load.py                                      # just the load, until Ctrl-C

Starts ``--cores`` processes (default: one per core) that spin at normal priority, runs the command,
stops them, and exits with the command's status. The spinners die with this script even when it is
killed outright (the kernel's parent-death signal, and a look at their parent now and then), so no
busy loop is ever left behind. Tests must not assert on time: under this load every step takes longer,
and a test that fails here is a defect (docs/architecture.md, Tests under load).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

MARK = "docvision-load"  # in each spinner's command line, with the pid of the script that started it
SPIN = """
import os, sys
parent = int(sys.argv[2])
while os.getppid() == parent:
    n = 0
    for i in range(200_000):
        n += i * i
"""


def _die_with_parent() -> None:
    """In the spinner, before it starts: SIGKILL it when its parent dies (Linux's PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # elsewhere the spinner still stops once its parent is gone (it looks now and then)


def start(cores: int) -> list[subprocess.Popen]:
    """``cores`` spinning processes."""
    return [subprocess.Popen([sys.executable, "-c", SPIN, MARK, str(os.getpid())], preexec_fn=_die_with_parent,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            for _ in range(cores)]


def stop(spinners: list[subprocess.Popen]) -> None:
    for spinner in spinners:
        spinner.kill()
    for spinner in spinners:
        spinner.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run COMMAND with every core kept busy (tests under load).")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1,
                        help="busy processes to run (default: one per core)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND... (none: load until Ctrl-C)")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    spinners = start(max(1, args.cores))
    sys.stderr.write(f"load: {len(spinners)} busy process(es) while {' '.join(command) or 'waiting for Ctrl-C'}\n")
    try:
        if not command:
            signal.pause()
            return 0
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 130
    finally:
        stop(spinners)


if __name__ == "__main__":
    sys.exit(main())
