"""The concurrent batch runner (docvision.concurrency): N requests in flight, order kept, nothing lost.

A backend here stands in for a model server (it sleeps, as a request waits on the network); the
sources, ingest, planning, drawing and the summarize task are the real ones.
"""

from __future__ import annotations

import threading
import time

from PIL import Image

from docvision import ingest
from docvision.run import engine as batch
from docvision.models.base import Backend, Generation
from docvision.document import IngestOptions
from docvision.run.sink import RecordSink
from docvision.tasks.routing import Budget
from docvision.sources import expand
from docvision.tasks.summarize import SummarizeTask


class SlowServer(Backend):
    """Answers after ``delay(prompt_index)`` seconds; counts how many calls overlap."""

    name = "openai"
    model_id = "slow"

    def __init__(self, delay):
        self.delay, self.lock = delay, threading.Lock()
        self.in_flight = self.most = self.calls = 0

    def generate(self, views, prompt, *, max_new_tokens=512, on_text=None):
        with self.lock:
            self.calls += 1
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            width = views[0].plan.source_size[0] if views else 0
        time.sleep(self.delay(width))
        with self.lock:
            self.in_flight -= 1
        return Generation(text=f"summary of a {width} px wide page", new_tokens=5)


def sources(tmp_path, count: int) -> list[str]:
    paths = []
    for i in range(count):
        path = tmp_path / f"p{i:02d}.png"
        Image.new("RGB", (400 + i, 500), "white").save(path)  # the width tells the sources apart
        paths.append(str(path))
    return paths


def run(paths, backend, concurrency, ordered=True, skip=frozenset(), output=None):
    got: list[dict] = []
    sink = RecordSink(got.append, output)
    code = batch.run(expand(paths), SummarizeTask(hd=1, budget=Budget(pages=1), max_new_tokens=8), sink,
                     opener=lambda s: ingest.load(s, IngestOptions()), backend_factory=lambda: backend,
                     skip=set(skip), concurrency=concurrency, ordered=ordered, progress=False)
    return code, got


def test_n_requests_in_flight_records_in_input_order(tmp_path):
    paths = sources(tmp_path, 8)
    backend = SlowServer(lambda width: 0.3)
    started = time.perf_counter()
    code, got = run(paths, backend, concurrency=4)
    elapsed = time.perf_counter() - started
    assert code == 0 and [r["source"] for r in got] == paths
    assert all(r["status"] == "ok" for r in got)
    assert backend.most == 4 and backend.calls == 8
    assert elapsed < 8 * 0.3  # overlapped: one at a time would take 2.4 s of waiting alone


def test_unordered_writes_as_they_complete_and_resume_is_exact(tmp_path):
    paths = sources(tmp_path, 6)
    # The first source is slow: in input order it holds the others back; unordered, it comes last.
    backend = SlowServer(lambda width: 1.0 if width == 400 else 0.05)
    code, got = run(paths, backend, concurrency=3, ordered=False)
    assert code == 0 and got[-1]["source"] == paths[0] and sorted(r["source"] for r in got) == paths
    out = tmp_path / "out.jsonl"
    run(paths[:3], SlowServer(lambda width: 0.0), concurrency=3, ordered=False, output=out)
    from docvision.run.sink import resume

    done = resume(out, "summarize")
    code, got = run(paths, SlowServer(lambda width: 0.0), concurrency=3, ordered=False, skip=done, output=out)
    assert sorted(r["source"] for r in got) == paths[3:]
    lines = out.read_text().splitlines()
    assert len(lines) == 6  # every source exactly once


def test_a_failing_source_gets_its_error_record_and_the_rest_run(tmp_path):
    paths = sources(tmp_path, 5)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    paths.insert(2, str(tmp_path / "broken.png"))

    def delay(width):
        if width == 403:
            raise TimeoutError("the model server sent nothing for 3 s")
        return 0.05

    code, got = run(paths, SlowServer(delay), concurrency=3)
    assert code == 1 and [r["source"] for r in got] == paths
    assert [r["status"] for r in got] == ["ok", "ok", "error", "ok", "error", "ok"]
