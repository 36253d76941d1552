"""Finished work survives odd output files and broken caches: --resume over lines that are not records,
and a render cache that cannot be used is one warning, never a failed source."""

from __future__ import annotations

import json

import pytest

from tests.helpers import json_lines, run_scripted
from tests.scripted import batch_folder


@pytest.mark.parametrize("odd", [b"null", b"3", b"[]", b'{"source": ["a.pdf"], "task": "summarize", "status": "ok"}',
                                 b"\xff\xfe not utf-8 \xc3", b'{"half": '])
def test_resume_skips_lines_that_are_not_records_and_names_them(tmp_path, odd):
    paths = batch_folder(tmp_path / "in", 3)
    out = tmp_path / "out.jsonl"
    first = run_scripted("summarize", paths[0], "--output", out, "--hd", "1")
    assert first.returncode == 0, first.stderr
    out.write_bytes(out.read_bytes() + odd + b"\n")
    proc = run_scripted("summarize", *paths, "--output", out, "--resume", "--hd", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "line 2 is not a docvision record" in proc.stderr
    assert [r["source"] for r in json_lines(proc.stdout)] == [str(p) for p in paths[1:]]
    lines = out.read_bytes().splitlines()
    assert odd in lines  # a line we cannot read is kept as it was, never thrown away
    assert sorted(json.loads(l)["source"] for l in lines if l != odd) == sorted(map(str, paths))


def test_a_cache_folder_that_cannot_be_written_is_one_warning(tmp_path):
    """Even root cannot make folders in /proc: a cache path there is a cache that cannot be written."""
    _check_cache(tmp_path, "/proc/docvision-cache")


def test_a_cache_path_that_is_a_file_is_one_warning(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    _check_cache(tmp_path, tmp_path / "afile")


def test_garbage_and_half_written_manifests_are_misses(tmp_path):
    paths = batch_folder(tmp_path / "in", 2)
    cache = tmp_path / "cache"
    env = {"DOCVISION_CACHE_DIR": str(cache)}
    assert run_scripted("summarize", *paths, "--hd", "1", env=env).returncode == 0
    manifests = list(cache.rglob("manifest.json"))
    assert len(manifests) == 2
    manifests[0].write_text('{"kind": "pdf", "page_count": 2, "pages": [{"label"')  # torn
    manifests[1].write_text('{"kind": 3, "page_count": "x", "warnings": 1, "pages": null}')  # foreign
    proc = run_scripted("summarize", *paths, "--hd", "1", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert all(r["status"] == "ok" for r in json_lines(proc.stdout))


def test_a_full_cache_disk_is_one_warning(tmp_path):
    """The cache's folder is a file system with no byte free (ENOSPC on every write); the rest of the
    machine is not full, as on a real full cache disk."""
    cache = tmp_path / "cache"
    _check_cache(tmp_path, cache, full_disk=cache)


def test_a_file_size_limit_fails_pdfs_in_one_line_each(tmp_path):
    """Under `ulimit -f 2` even the in-memory buffers PDF pages are drawn into cannot grow (Linux counts
    them as files): every PDF fails with one line saying so, none is called damaged, and a later document
    never draws into a buffer that a failed one left half made. The picture is read in this process: ok."""
    paths = batch_folder(tmp_path / "in", 3)  # s00.pdf, s01.pdf, s02.png
    proc = run_scripted("summarize", *paths, "--hd", "1", "--json", "--no-cache", fsize=2048)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    records = json_lines(proc.stdout)
    assert [r["status"] for r in records] == ["error", "error", "ok"]
    assert all(r["error"]["kind"] == "out_of_memory" and "page pixels (File too large)" in r["error"]["message"]
               for r in records[:2]), records
    assert len(proc.stderr.splitlines()) == 2 and "damaged" not in proc.stderr


def _check_cache(tmp_path, cache_dir, full_disk=None):
    paths = batch_folder(tmp_path / "in", 3)
    proc = run_scripted("summarize", *paths, "--hd", "1", "--json", env={"DOCVISION_CACHE_DIR": str(cache_dir)},
                        full_disk=full_disk)
    assert proc.returncode == 0, proc.stderr
    assert all(r["status"] == "ok" for r in json_lines(proc.stdout))
    warnings = [line for line in proc.stderr.splitlines() if "render cache" in line]
    assert len(warnings) == 1 and "going on without it" in warnings[0]
