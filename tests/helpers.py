"""Helpers shared by the tests: run the real CLI, insist on system tools."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

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


def read_back(image, psm: int = 6, lang: str = "eng", timeout: float = 120, options: list[str] = ()) -> str:
    """What tesseract reads in ``image`` (a PIL image or a path): the independent judge of what was drawn.

    tesseract runs with OMP_THREAD_LIMIT=1 in its own environment only: its OpenMP threads fight over
    shared cores, and the variable must never leak into the test process, where it makes torch's CPU
    kernels plan for more threads than OpenMP then runs (bf16 matmuls came out as NaN;
    docs/architecture.md, "Threads").
    """
    import tempfile

    from PIL import Image

    tesseract = require_tool("tesseract")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "image.png"
        (image if isinstance(image, Image.Image) else Image.open(image)).save(path)
        proc = subprocess.run([tesseract, str(path), "stdout", "--psm", str(psm), "-l", lang, *options],
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "OMP_THREAD_LIMIT": "1"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def read_line(image, box, allowed: str | None = None, height: int = 48) -> str:
    """What tesseract reads in one line of ``image`` inside ``box`` (x0, y0, x1, y1): the crop with a
    margin, scaled so the line is ``height`` px tall (tesseract reads best near that, whatever the canvas
    size), read as a single line (psm 7), only the characters ``allowed`` when given. Fonts and zoom vary
    between machines; the same pixels at this size read the same."""
    from PIL import Image

    x0, y0, x1, y1 = box
    pad = (y1 - y0) * 0.3
    crop = image.convert("L").crop((max(0, int(x0 - pad)), max(0, int(y0 - pad)),
                                    min(image.width, int(x1 + pad)), min(image.height, int(y1 + pad))))
    zoom = height / max(1, crop.height)
    crop = crop.resize((max(1, round(crop.width * zoom)), height), Image.Resampling.LANCZOS)
    board = Image.new("L", (crop.width + 40, crop.height + 40), 255)
    board.paste(crop, (20, 20))
    options = ["-c", f"tessedit_char_whitelist={allowed}"] if allowed else []
    return " ".join(read_back(board, psm=7, options=options).split())


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


def run_task(sources, task, backend=None, *, cache_dir=None, output=None, concurrency: int = 1,
             ordered: bool = True, skip=(), partial_ok: bool = False):
    """Drive the real engine (docvision.run.engine) over ``sources`` with ``backend`` (any Backend, a
    scripted one included): expanded sources, the render cache (when ``cache_dir``), the run's Tools.
    Returns (records in the order written, the RecordSink)."""
    from docvision import ingest
    from docvision.cache import RenderCache
    from docvision.document import IngestOptions
    from docvision.ingest.tools import Tools
    from docvision.run import engine
    from docvision.run.sink import OutputFile, RecordSink
    from docvision.sources import expand

    written: list[dict] = []
    options = IngestOptions()
    out = OutputFile(output, say=lambda message: None) if output is not None else None
    sink = RecordSink(written.append, out)
    tools = Tools(options)
    cache = RenderCache(cache_dir) if cache_dir is not None else None
    opener = (lambda s: cache.open(s, options, tools)) if cache else (lambda s: ingest.load(s, options, tools))
    todo = [e for e in expand([str(s) for s in sources]) if e.source not in set(skip)]
    try:
        engine.run(todo, task, sink, opener=opener, backend=backend, finish=tools.close,
                   settings=engine.Settings(concurrency=concurrency, ordered=ordered, partial_ok=partial_ok,
                                            progress=False))
    finally:
        tools.close()
        sink.close()
    return written, sink


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The real CLI with the model swapped for a scripted one (tests/scripted.py; SCRIPTED_DELAY s per call).
_SCRIPTED = """
import sys
import docvision.models
from tests.scripted import ScriptedBackend
docvision.models.load_backend = lambda settings: ScriptedBackend(model=settings.model)
from docvision.cli import main
main(sys.argv[1:])
"""


def scripted_cli(args, *, delay: float = 0.0, env: dict | None = None, stdin=subprocess.DEVNULL,
                 fsize: int | None = None, full_disk: Path | None = None) -> subprocess.Popen:
    """Start ``docvision ARGS`` with the scripted backend in place of a model; the caller waits on it.
    ``fsize``: the most bytes a file the process writes may hold (RLIMIT_FSIZE, which also bounds memory
    files). ``full_disk``: a folder the process sees as a full file system of its own (a filled 4 KiB tmpfs
    mounted there in a private mount namespace; `unshare` maps the caller to root, so no privilege is needed
    where user namespaces are allowed)."""
    import resource

    full_env = {**os.environ, "SCRIPTED_DELAY": str(delay), "PYTHONPATH": ROOT, "NO_COLOR": "1", **(env or {})}
    limit = (lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))) if fsize else None
    command = [sys.executable, "-c", _SCRIPTED, *map(str, args)]
    if full_disk is not None:
        assert shutil.which("unshare"), "util-linux's unshare is needed to give a test a full disk"
        Path(full_disk).mkdir(parents=True, exist_ok=True)
        fill = 'mount -t tmpfs -o size=4k docvision-full "$0" && { cat /dev/zero > "$0/fill" 2>/dev/null; exec "$@"; }'
        command = ["unshare", "--map-root-user", "--mount", "sh", "-c", fill, str(full_disk), *command]
    return subprocess.Popen(command, env=full_env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=stdin, text=True,
                            preexec_fn=limit)


def run_scripted(*args, env: dict | None = None, timeout: float = 300, input: str | None = None,
                 fsize: int | None = None, full_disk: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``docvision ARGS`` with the scripted backend to the end (``input``: what stdin holds)."""
    proc = scripted_cli(args, env=env, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                        fsize=fsize, full_disk=full_disk)
    stdout, stderr = proc.communicate(input=input, timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
