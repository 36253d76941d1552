"""The run engine (docvision.run.engine): one render thread ahead of N model workers, order kept,
nothing lost. Sequential is concurrency 1 of the same engine.

A backend here stands in for a model server (it waits, as a request waits on the network); the
sources, ingest, planning, drawing and the summarize task are the real ones. Nothing here asserts on
time: overlap is shown by counting calls in flight, order by events that release requests.
"""

from __future__ import annotations

import threading

from PIL import Image

from docvision.models.base import Backend, Generation
from docvision.tasks.routing import Budget
from docvision.tasks.summarize import SummarizeTask
from tests.helpers import run_task


class SlowServer(Backend):
    """Answers once ``gate(width)`` lets it (a threading.Event per source width, or None: at once);
    counts how many calls overlap."""

    name = "openai"
    model_id = "slow"

    def __init__(self, gate=lambda width: None, fail=()):
        self.gate, self.fail, self.lock = gate, set(fail), threading.Lock()
        self.in_flight = self.most = self.calls = 0
        self.order: list[int] = []

    def generate(self, views, prompt, *, max_new_tokens=512, on_text=None, system=None):
        width = views[0].plan.source_size[0] if views else 0
        with self.lock:
            self.calls += 1
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        event = self.gate(width)
        if event is not None:
            assert event.wait(60), "a gate was never opened"
        with self.lock:
            self.in_flight -= 1
            self.order.append(width)
        if width in self.fail:
            raise TimeoutError("the model server sent nothing for 3 s")
        return Generation(text=f"summary of a {width} px wide page", new_tokens=5)


def sources(tmp_path, count: int) -> list[str]:
    paths = []
    for i in range(count):
        path = tmp_path / f"p{i:02d}.png"
        Image.new("RGB", (400 + i, 500), "white").save(path)  # the width tells the sources apart
        paths.append(str(path))
    return paths


def run(paths, backend, concurrency, ordered=True, skip=frozenset(), output=None):
    task = SummarizeTask(hd=1, budget=Budget(pages=1), max_new_tokens=8)
    got, sink = run_task(paths, task, backend, output=output, concurrency=concurrency, ordered=ordered, skip=skip)
    return int(sink.failed), got


def test_n_requests_in_flight_records_in_input_order(tmp_path):
    paths = sources(tmp_path, 8)
    four_in = threading.Event()
    backend = SlowServer()
    backend.gate = lambda width: four_in  # nobody answers until four requests are waiting at once

    def watch():
        while backend.most < 4:
            threading.Event().wait(0.01)
        four_in.set()

    threading.Thread(target=watch, daemon=True).start()
    code, got = run(paths, backend, concurrency=4)
    assert code == 0 and [r["source"] for r in got] == paths
    assert all(r["status"] == "ok" for r in got)
    assert backend.most == 4 and backend.calls == 8


def test_unordered_writes_as_they_complete_and_resume_is_exact(tmp_path):
    paths = sources(tmp_path, 6)
    # The first source waits until every other one was answered: in input order it would hold the
    # others back; unordered, its record comes last.
    others_done = threading.Event()
    backend = SlowServer(lambda width: others_done if width == 400 else None)
    original = backend.generate

    def generate(views, prompt, **kw):
        result = original(views, prompt, **kw)
        if len(backend.order) == 5 and 400 not in backend.order:
            others_done.set()
        return result

    backend.generate = generate
    code, got = run(paths, backend, concurrency=3, ordered=False)
    assert code == 0 and got[-1]["source"] == paths[0] and sorted(r["source"] for r in got) == paths
    out = tmp_path / "out.jsonl"
    run(paths[:3], SlowServer(), concurrency=3, ordered=False, output=out)
    from docvision.run.sink import OutputFile, resume

    handle = OutputFile(out, say=print)
    done = {source for source, _ in resume(handle, "summarize", say=print)}
    handle.close()
    code, got = run(paths, SlowServer(), concurrency=3, ordered=False, skip=done, output=out)
    assert sorted(r["source"] for r in got) == paths[3:]
    lines = out.read_text().splitlines()
    assert len(lines) == 6  # every source exactly once


def test_a_failing_source_gets_its_error_record_and_the_rest_run(tmp_path):
    paths = sources(tmp_path, 5)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    paths.insert(2, str(tmp_path / "broken.png"))
    code, got = run(paths, SlowServer(fail={403}), concurrency=3)
    assert code == 1 and [r["source"] for r in got] == paths
    assert [r["status"] for r in got] == ["ok", "ok", "error", "ok", "error", "ok"]


def test_sequential_is_concurrency_one_of_the_same_engine(tmp_path):
    """Concurrency 1 writes the same records as concurrency 3, and never has two calls in flight."""
    paths = sources(tmp_path, 5)
    backend = SlowServer()
    code, one = run(paths, backend, concurrency=1)
    assert code == 0 and backend.most == 1
    _, three = run(paths, SlowServer(), concurrency=3)
    strip = lambda records: [{k: v for k, v in r.items() if k != "timings"} for r in records]  # noqa: E731
    assert strip(one) == strip(three)
