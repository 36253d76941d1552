"""``docvision render`` end to end, through the real command line, on files generated here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pymupdf
import pytest
from PIL import Image, ImageDraw

from docvision import records
from tests.helpers import assert_one_error_line, json_lines, run_cli
from tests.ingest.test_pdf import make_pdf, truncated_pdf, zero_page_pdf


# Run from another folder, `python -m docvision` must still import this checkout, not another install.
HERE = {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}


@pytest.fixture
def letter_pdf(tmp_path):
    return make_pdf(tmp_path / "report.pdf", pages=2)


@pytest.fixture
def poster_png(tmp_path):
    poster = Image.new("RGB", (816, 5133), (235, 240, 250))
    ImageDraw.Draw(poster).rectangle((100, 200, 700, 900), fill=(30, 30, 120))
    poster.save(tmp_path / "poster.png")
    return str(tmp_path / "poster.png")


def test_prints_each_pages_plan(letter_pdf):
    proc = run_cli("render", letter_pdf)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for fragment in ("page 1", "page 2", "2550x3300", "1344x1680", "4x5", "3097", "HD-25"):
        assert fragment in out, (fragment, out)
    assert "40 tiles" in out and "6194 visual tokens" in out
    assert proc.stderr == ""


def test_json_lines_fields(letter_pdf, poster_png):
    proc = run_cli("render", letter_pdf, poster_png, "--json", "--hd", "9", "--pages", "2-")
    assert proc.returncode == 1, proc.stderr  # the poster is one page: page 2 is outside it, as a PDF's
    first, second = json_lines(proc.stdout)
    assert len(proc.stdout.splitlines()) == 2
    for record in (first, second):
        assert record["schema"] == 2 and record["task"] == "render"
        assert list(record) == list(records.KEYS) and record["answer"] is None and record["evidence"] is None
    assert first["status"] == "ok"
    assert first["source"] == letter_pdf and first["document"]["type"] == "pdf"
    assert first["document"]["page_count"] == 2 and first["document"]["damaged_pages"] == []
    (page,) = first["pages"]
    assert page["label"] == "page 2" and page["number"] == 2 and page["scanned"] is False
    assert page["words"] > 10
    assert page["plan"] == {
        "hd": 9, "tile": 336, "source_size": [2550, 3300], "scale": round(1008 / 3300, 6),
        "content_size": [778, 1008], "canvas_size": [1008, 1008], "grid": [3, 3], "tiles": 9,
        "content_box": [115, 0, 893, 1008], "global_view": [336, 336], "visual_tokens": 1489,
    }
    assert first["resolution"] == {"hd": 9, "tile": 336, "pages": 1, "tiles": 9, "grid": [[3, 3]],
                                   "canvas": [[1008, 1008]], "visual_tokens": 1489}
    assert second["status"] == "error" and second["error"]["kind"] == "page_range"
    image = json_lines(run_cli("render", poster_png, "--json", "--hd", "9", "--pages", "1").stdout)[0]
    assert image["document"]["type"] == "image" and image["pages"][0]["label"] == "image"
    assert image["pages"][0]["plan"]["canvas_size"] == [336, 2016]


def test_out_writes_canvas_global_and_overview(tmp_path, letter_pdf, poster_png):
    out = tmp_path / "views"
    proc = run_cli("render", letter_pdf, poster_png, "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr
    pdf_record, poster_record = json_lines(proc.stdout)
    for record in (pdf_record, poster_record):
        for page in record["pages"]:
            files = page["files"]
            canvas_size = tuple(page["plan"]["canvas_size"])
            assert Image.open(files["canvas"]).size == canvas_size
            assert Image.open(files["global"]).size == (336, 336)
            overview = Image.open(files["overview"])
            factor = min(1.0, 2048 / max(canvas_size))  # posters are shrunk to 2048 px for viewing
            assert overview.size == tuple(round(v * factor) for v in canvas_size)
    # PDF pages also get their anchors in canvas pixels
    anchors = json.loads(open(pdf_record["pages"][0]["files"]["anchors"]).read())
    assert anchors[0]["text"] == "Page" and len(anchors[0]["box"]) == 4
    assert sorted(p.name for p in (out / "report.pdf").iterdir())[:4] == [
        "page-001.anchors.json", "page-001.canvas.png", "page-001.global.png", "page-001.overview.png"]
    # the poster's padding is white on the canvas and tinted on the overview (shrunk to 2048 px)
    page = poster_record["pages"][0]
    canvas = Image.open(page["files"]["canvas"]).convert("RGB")
    overview = Image.open(page["files"]["overview"]).convert("RGB")
    factor = overview.height / canvas.height
    x0 = page["plan"]["content_box"][0]
    assert x0 * factor > 4
    assert canvas.getpixel((x0 // 2, 1500)) == (255, 255, 255)
    assert overview.getpixel((round(x0 * factor / 2), round(1500 * factor))) != (255, 255, 255)
    inside = (round((x0 + 40) * factor), round(1500 * factor))
    assert sum(abs(a - b) for a, b in zip(overview.getpixel(inside), (235, 240, 250))) < 12  # untinted


def test_truncated_pdf_renders_what_survives_and_fails_unless_partial_is_allowed(tmp_path):
    proc = run_cli("render", truncated_pdf(tmp_path / "cut.pdf"), "--json")
    assert proc.returncode == 1, proc.stderr
    (record,) = json_lines(proc.stdout)
    assert len(record["pages"]) == 4 and record["status"] == "error"
    assert [p["number"] for p in record["pages"] if p.get("warnings")] == [3, 4]
    assert any(w.startswith("damaged pages: 3, 4") for w in record["warnings"])
    human = run_cli("render", tmp_path / "cut.pdf")
    assert human.returncode == 1 and "Traceback" not in human.stderr
    assert "page 1" in human.stdout  # the table of what survived is still shown
    errors = [line for line in human.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "damaged pages 3, 4" in errors[0] and "--allow-partial" in errors[0]
    partial = run_cli("render", tmp_path / "cut.pdf", "--allow-partial")
    assert partial.returncode == 0 and "damaged pages: 3, 4" in partial.stderr
    assert all(line.startswith("warning:") for line in partial.stderr.splitlines())


def test_encrypted_pdf(tmp_path):
    path = make_pdf(tmp_path / "locked.pdf", pages=1, encryption=pymupdf.PDF_ENCRYPT_AES_256,
                    user_pw="s3cret", owner_pw="owner")
    assert_one_error_line(run_cli("render", path), "encrypted", "--password")
    wrong = run_cli("render", path, "--password", "guess")
    assert wrong.returncode == 1
    assert_one_error_line(wrong, "wrong password")
    right = run_cli("render", path, "--password", "s3cret", "--json")
    assert right.returncode == 0, right.stderr
    assert json_lines(right.stdout)[0]["pages"][0]["words"] > 5


def _bad_inputs(tmp_path):
    """(name, path, extra args, fragments of the expected error line)."""
    (tmp_path / "empty.pdf").write_bytes(b"")
    (tmp_path / "noise.pdf").write_bytes(bytes(range(256)) * 50)
    (tmp_path / "page.pdf").write_text("<!DOCTYPE html>\n<html><body><p>not a pdf</p></body></html>\n")
    whole = tmp_path / "whole.png"
    Image.new("RGB", (900, 600), (10, 200, 90)).save(whole)
    (tmp_path / "cut.png").write_bytes(whole.read_bytes()[:300])
    Image.new("L", (3000, 2000)).save(tmp_path / "big.png")
    (tmp_path / "notes.xyz").write_text("hello")
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "readme.xyz").write_text("no documents here")
    short = make_pdf(tmp_path / "three.pdf", pages=3)
    (tmp_path / "device.pdf").symlink_to("/dev/zero")  # reading it would never end
    os.mkfifo(tmp_path / "pipe.png")  # opening it would block until a writer comes
    (tmp_path / "dangling.pdf").symlink_to(tmp_path / "gone.pdf")
    return [
        ("missing", tmp_path / "absent.pdf", [], ["absent.pdf", "no such file"]),
        ("empty", tmp_path / "empty.pdf", [], ["empty"]),
        ("random bytes", tmp_path / "noise.pdf", [], ["not a valid PDF"]),
        ("html as pdf", tmp_path / "page.pdf", [], ["HTML"]),
        ("zero pages", zero_page_pdf(tmp_path / "zero.pdf"), [], ["no pages"]),
        ("page range", short, ["--pages", "5-7"], ["outside the document", "3 pages"]),
        ("bomb", tmp_path / "big.png", ["--max-image-pixels", "1000000"], ["6,000,000", "--max-image-pixels"]),
        ("truncated png", tmp_path / "cut.png", [], ["truncated"]),
        ("unsupported", tmp_path / "notes.xyz", [], ["unsupported file type .xyz"]),
        ("empty folder", tmp_path / "nothing", [], ["no supported files"]),
        ("device", tmp_path / "device.pdf", [], ["not a regular file"]),
        ("fifo", tmp_path / "pipe.png", [], ["not a regular file"]),
        ("dangling link", tmp_path / "dangling.pdf", [], ["no such file"]),
    ]


def test_each_bad_input_gives_one_error_line_and_exit_1(tmp_path):
    for name, path, extra, fragments in _bad_inputs(tmp_path):
        proc = run_cli("render", path, *extra)
        assert proc.returncode == 1, (name, proc.returncode, proc.stderr)
        line = assert_one_error_line(proc, *fragments)
        assert len([l for l in proc.stderr.splitlines() if l.strip()]) == 1, (name, proc.stderr)
        assert str(path).rstrip("/").split("/")[-1] in line, (name, line)


def test_a_batch_keeps_going_and_exits_1(tmp_path, letter_pdf, poster_png):
    (tmp_path / "broken.pdf").write_text("<html>oops</html>")
    proc = run_cli("render", letter_pdf, tmp_path / "broken.pdf", tmp_path / "gone.png", poster_png, "--json")
    assert proc.returncode == 1
    records = json_lines(proc.stdout)
    assert [r["status"] for r in records] == ["ok", "error", "error", "ok"]
    assert records[1]["error"]["kind"] == "damaged" and records[2]["error"]["kind"] == "not_found"
    assert [l.startswith("error:") for l in proc.stderr.splitlines()] == [True, True]
    # A PDF with damaged pages: what survived is rendered, and the source fails naming the pages ...
    damaged = run_cli("render", truncated_pdf(tmp_path / "cut.pdf"), "--json")
    assert damaged.returncode == 1, damaged.stderr
    [record] = json_lines(damaged.stdout)
    assert record["status"] == "error" and record["error"]["kind"] == "damaged"
    assert record["document"]["damaged_pages"] == [3, 4] and "3, 4" in record["error"]["message"]
    assert len(record["pages"]) >= 2  # the pages that survived are still in the record
    # ... unless partial documents are accepted: then it is ok, with the damage in its warnings.
    partial = run_cli("render", tmp_path / "cut.pdf", "--json", "--allow-partial")
    assert partial.returncode == 0 and json_lines(partial.stdout)[0]["status"] == "ok"
    assert any(l.startswith("warning: ") and "damaged pages: 3, 4" in l for l in partial.stderr.splitlines())
    human = run_cli("render", letter_pdf, tmp_path / "broken.pdf", poster_png)
    assert human.returncode == 1 and "page 2" in human.stdout and "poster.png" in human.stdout


def test_help_is_fast_and_imports_nothing_heavy():
    probe = (
        "import sys, io, contextlib\n"
        "from docvision.cli import run\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    code = run(['--help'])\n"
        "    run(['render', '--help'])\n"
        "heavy = ('torch', 'transformers', 'playwright', 'bitsandbytes', 'pymupdf', 'fitz', 'PIL', 'numpy')\n"
        "text = out.getvalue()\n"
        "print(code, 'render' in text and \"| docvision render - --json\" in text,\n"
        "      sorted(m for m in heavy if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "0 True []", proc.stdout + proc.stderr  # the speed itself: bench, not test
    assert run_cli("--help").returncode == 0


def test_bad_pages_and_out_are_usage_errors_said_once(tmp_path, letter_pdf, poster_png):
    (tmp_path / "taken").write_text("a file, not a folder")
    cases = [
        (["--pages", "0"], ["pages count from 1"]),
        (["--pages", "3-1"], ["runs backwards", "1-3"]),
        (["--pages", "abc"], ["'abc' is not a page or a range"]),
        (["--pages", ",,"], ["names no page"]),
        (["--out", tmp_path / "taken"], ["is a file, not a folder"]),
        (["--out", tmp_path / "taken" / "views"], ["cannot write there"]),
    ]
    for extra, fragments in cases:
        proc = run_cli("render", letter_pdf, poster_png, *extra)
        assert proc.returncode == 2, (extra, proc.stderr)
        assert_one_error_line(proc, *fragments)
        assert len(proc.stderr.splitlines()) == 1 and proc.stdout == "", (extra, proc.stderr)


def test_human_table_fits_80_columns_with_long_notes(tmp_path):
    proc = run_cli("render", truncated_pdf(tmp_path / "a rather long file name for a damaged report.pdf"),
                   "--allow-partial", env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].endswith("report.pdf  (HD-25, tile 336 px)")  # the path whole, never cut for copying
    assert all(len(line) <= 80 for line in lines[1:]), proc.stdout
    rows = [line for line in lines[2:] if line.startswith("page ")]
    assert [row.split()[1] for row in rows] == ["1", "2", "3", "4"]  # one line per page, nothing wrapped
    assert rows[2].rstrip().endswith("warning") and "2550x3300" in rows[2] and "1344x1680" in rows[2]
    assert any(line.strip().startswith("page 3: damaged") for line in lines)  # the full note, under the table


def test_out_folders_never_collide_and_reruns_skip_old_views(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    make_pdf(tmp_path / "a" / "report.pdf", pages=3)
    make_pdf(tmp_path / "b" / "report.pdf", pages=1)
    for _ in range(2):  # the second run finds the first run's views under . and leaves them out
        proc = run_cli("render", ".", "-r", "--out", "views", "--json", cwd=str(tmp_path), env=HERE)
        assert proc.returncode == 0, proc.stderr
        records = json_lines(proc.stdout)
        assert [r["source"] for r in records] == ["a/report.pdf", "b/report.pdf"]
    assert "left out 12 view picture(s) of an earlier run in --views views" in proc.stderr  # 3 + 1 pages x canvas, global, overview
    folders = {r["source"]: {p["files"]["canvas"] for p in r["pages"]} for r in records}
    assert folders == {"a/report.pdf": {f"views/report.pdf/page-00{n}.canvas.png" for n in (1, 2, 3)},
                       "b/report.pdf": {"views/report.pdf-2/page-001.canvas.png"}}
    make_pdf(tmp_path / "a" / "report.pdf", pages=1)  # shorter now: no stale page 2 or 3 stays behind
    beside = run_cli("render", "report.pdf", "--out", ".", "--json", cwd=str(tmp_path / "a"),
                     env=HERE)  # the name is a file
    assert json_lines(beside.stdout)[0]["pages"][0]["files"]["canvas"] == "report.pdf-2/page-001.canvas.png"
    proc = run_cli("render", "a/report.pdf", "--out", "views", cwd=str(tmp_path), env=HERE)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "views" / "report.pdf").iterdir()) == [
        "page-001.anchors.json", "page-001.canvas.png", "page-001.global.png", "page-001.overview.png"]


def test_an_unexpected_error_in_one_source_does_not_stop_the_batch(tmp_path, letter_pdf):
    from docvision.tasks.render import RenderTask
    from tests.helpers import run_task

    class Buggy(RenderTask):
        def prepare(self, document, backend=None):
            if document.source.endswith("b.pdf"):
                raise KeyError("a bug met on one file")
            return super().prepare(document, backend)

    paths = [tmp_path / f"{n}.pdf" for n in "abc"]
    for path in paths:
        path.write_bytes(open(letter_pdf, "rb").read())
    seen, sink = run_task(paths, Buggy())
    code = int(sink.failed)
    assert code == 1 and [r["status"] for r in seen] == ["ok", "error", "ok"]
    assert seen[1]["error"] == {"kind": "internal", "message": "KeyError: 'a bug met on one file'"}


def test_view_folder_names_keep_letters_of_any_script_and_stay_inside_out():
    from docvision.tasks.render import _slug

    assert _slug("scans/ünïcode spaced file.pdf") == "ünïcode_spaced_file.pdf"
    assert _slug("報告 2024.pdf") == "報告_2024.pdf"
    assert _slug("http://127.0.0.1:8765/") == "127.0.0.1_8765"
    assert _slug("http://example.com/a/..") == _slug("..") == "page"  # never the folder above --out
