"""docvision on Ray (``--ray``, docvision.run.cluster): a local Ray and a cluster of two nodes on this machine
(ray.cluster_utils.Cluster) give the records a plain run gives; a worker node removed mid-run loses nothing
and duplicates nothing; a driver killed mid-run, then --resume, finishes each source exactly once; without
Ray installed, --ray is one line saying how to get it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, json_lines, run_cli
from tests.run.test_workers import make_pdf

pytestmark = [pytest.mark.ray, pytest.mark.slow]
RENDER = ["--json", "--no-timings", "--ocr", "never", "--hd", "9"]


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cluster")
    for n in range(6):
        make_pdf(root / f"report-{n}.pdf", 2 + n % 3, f"report {n}")
    return root


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes on this machine, one CPU each: the head and a worker node."""
    from ray.cluster_utils import Cluster

    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    nodes.add_node(num_cpus=1)
    nodes.wait_for_nodes()
    yield nodes
    nodes.shutdown()


def plain(*args: str) -> subprocess.CompletedProcess:
    return run_cli(*args, "--workers", "1", timeout=600)


def test_a_local_ray_gives_the_records_of_a_plain_run(batch, tmp_path):
    on_ray = run_cli("render", str(batch), str(batch / "missing.pdf"), *RENDER, "--ray", timeout=600,
                     env={"RAY_ADDRESS": ""})
    alone = plain("render", str(batch), str(batch / "missing.pdf"), *RENDER)
    assert on_ray.returncode == alone.returncode == 1, on_ray.stderr  # the missing file
    assert on_ray.stdout == alone.stdout and len(json_lines(on_ray.stdout)) == 7
    assert on_ray.stderr == alone.stderr  # docvision's own lines only: nothing of Ray's


@pytest.mark.model
def test_a_two_node_cluster_answers_with_the_local_model_in_actors(batch, cluster, tiny_model_dir):
    """Sources and the model folder named relative to the driver's working folder, as users type them."""
    model = os.path.relpath(tiny_model_dir("qwen2_5_vl"), batch)
    pdfs = [p.name for p in sorted(batch.glob("*.pdf"))[:3]]
    args = ["summarize", *pdfs, "--model", model, "--hd", "2", "--max-new-tokens", "4", "--json", "--no-timings"]
    on_ray = run_cli(*args, "--ray", "--ray-address", cluster.address, "--ray-gpus-per-actor", "0", timeout=600,
                     cwd=str(batch))
    alone = run_cli(*args, "--workers", "1", timeout=600, cwd=str(batch))
    assert on_ray.returncode == alone.returncode == 0, on_ray.stderr
    assert on_ray.stdout == alone.stdout and len(json_lines(on_ray.stdout)) == 3


def start(args: list[str], out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "docvision", *args, "--output", str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"})


def first_record(out: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 600  # a hang guard
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 1:
            return
        time.sleep(0.05)
    pytest.fail(f"no record was written: {proc.poll()} {proc.stderr.read() if proc.poll() is not None else ''}")


def sources_written(out: Path) -> list[str]:
    return sorted(r["source"] for r in json_lines(out.read_text()))


def test_a_driver_killed_mid_run_then_resume_writes_each_source_once(batch, cluster, tmp_path):
    out = tmp_path / "out.jsonl"
    args = ["render", str(batch), *RENDER, "--ray", "--ray-address", cluster.address]
    proc = start(args, out)
    first_record(out, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    again = run_cli(*args, "--output", str(out), "--resume", timeout=600)
    assert again.returncode == 0, again.stderr
    assert sources_written(out) == sorted(str(p) for p in batch.glob("*.pdf"))


def test_a_worker_node_removed_mid_run_loses_and_duplicates_nothing(batch, cluster, tmp_path):
    """Last in this module: the cluster is left with its head only."""
    out = tmp_path / "out.jsonl"
    proc = start(["render", str(batch), *RENDER, "--ray", "--ray-address", cluster.address], out)
    first_record(out, proc)
    worker = next(node for node in cluster.list_all_nodes() if node is not cluster.head_node)
    cluster.remove_node(worker)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert sources_written(out) == sorted(str(p) for p in batch.glob("*.pdf"))
    assert all(r["status"] == "ok" for r in json_lines(out.read_text()))


def test_without_ray_installed_ray_is_one_line_saying_how_to_get_it(batch):
    code = ("import sys; sys.modules['ray'] = None; sys.modules['ray.data'] = None\n"
            "from docvision.cli import main; main(sys.argv[1:])")
    proc = subprocess.run([sys.executable, "-c", code, "render", str(batch), "--ray"], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 2
    assert proc.stderr == "error: --ray needs Ray, which is not installed here: pip install 'docvision[ray]'\n"


def test_an_address_where_nothing_answers_is_one_line_at_once(batch):
    from tests.serving import free_port

    address = f"127.0.0.1:{free_port()}"
    proc = run_cli("render", str(batch), "--ray", "--ray-address", address, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"nothing answers at {address}" in proc.stderr
