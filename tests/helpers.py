"""Helpers shared by the tests: run the real CLI, insist on system tools."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest


def run_cli(*args: str, input: str | None = None, env: dict | None = None, timeout: float = 300,
            cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m docvision ARGS`` as a user would, with no terminal; return the finished process."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "docvision", *map(str, args)],
        input=input, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=cwd,
    )


def json_lines(stdout: str) -> list[dict]:
    """Parse JSON Lines output, failing on any line that is not a JSON object."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def require_tool(*names: str) -> str:
    """The path of the first of ``names`` on PATH; fails (never skips) when none is installed."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(f"system tool {' or '.join(names)} is not installed; .ci/run installs it", pytrace=False)


def assert_one_error_line(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """The process failed with one clear line on stderr (no traceback) containing ``fragments``."""
    assert proc.returncode != 0, proc
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in lines if line.startswith("error:")]
    assert errors, proc.stderr
    for fragment in fragments:
        assert any(fragment.lower() in line.lower() for line in errors), (fragment, proc.stderr)
    return errors[0]


def serve_http(handler):
    """A threaded HTTP server on an ephemeral 127.0.0.1 port, serving ``handler`` from a daemon thread."""
    import threading
    from http.server import ThreadingHTTPServer

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd
