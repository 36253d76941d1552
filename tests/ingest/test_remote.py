"""Sources named by filesystem URIs (docvision.ingest.remote), read through pyarrow's filesystems as Ray Data
reads them. No object store is reachable here, so ``file://`` stands in for ``s3://``: the same listing,
copying and opening path, and the same records as the local file but for the source's name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import ROOT, json_lines, run_cli

REPORT = Path(ROOT) / "samples" / "report.pdf"


@pytest.fixture
def store(tmp_path) -> Path:
    """A "bucket": PDFs named so that natural order differs from text order, a sub-folder, hidden files and
    a file of an unsupported kind."""
    for name in ("r10.pdf", "r2.pdf", "sub/poster.png", ".hidden/x.pdf", ".draft.pdf", "notes.xyz"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(ROOT) / "samples" / ("poster.png" if name.endswith(".png") else "report.pdf"), tmp_path / name)
    return tmp_path


def test_a_prefix_lists_its_supported_files_in_natural_order(store):
    from docvision.sources import expand

    uri = store.as_uri() + "/"
    assert [e.source for e in expand([uri])] == [f"{uri}r2.pdf", f"{uri}r10.pdf"]
    assert [e.source for e in expand([uri], recursive=True)] == [f"{uri}r2.pdf", f"{uri}r10.pdf",
                                                                  f"{uri}sub/poster.png"]


def test_an_object_renders_as_the_local_file_does_and_leaves_no_copy(store, tmp_path_factory, monkeypatch):
    copies = tmp_path_factory.mktemp("tmp")
    monkeypatch.setenv("TMPDIR", str(copies))
    uri = (store / "r2.pdf").as_uri()
    remote = run_cli("render", uri, "--json", "--no-timings", "--ocr", "never", env={"TMPDIR": str(copies)})
    local = run_cli("render", str(REPORT), "--json", "--no-timings", "--ocr", "never")
    assert remote.returncode == local.returncode == 0, remote.stderr
    (got,), (expected,) = json_lines(remote.stdout), json_lines(local.stdout)
    assert got["source"] == uri and {**got, "source": None} == {**expected, "source": None}
    assert not any(p.name.startswith("docvision-object-") for p in copies.iterdir())


def test_a_missing_object_is_an_error_record_and_the_others_run(store):
    missing = (store / "gone.pdf").as_uri()
    proc = run_cli("render", missing, (store / "r2.pdf").as_uri(), "--json", "--ocr", "never")
    got = json_lines(proc.stdout)
    assert proc.returncode == 1 and [r["status"] for r in got] == ["error", "ok"]
    assert got[0]["error"] == {"kind": "not_found", "message": "no such object or prefix"}
    assert proc.stderr == f"error: {missing}: no such object or prefix\n"
