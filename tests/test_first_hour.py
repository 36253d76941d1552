"""A newcomer's first hour (issue 22): the rough edges they hit, each held here.

A question forgotten, chat's --json/--output/--resume, stdout or --views on a full disk, one page-range
rule for every kind of source, headed answers of several sources on a pipe, the live status line on a
terminal only, `models` to a pipe, a page too wide to draw, help and README drift, stderr holding
docvision's lines only, pages captured at the extent of their content, and the load script.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from docvision.document import parse_page_range
from docvision.errors import PageRangeError
from tests.helpers import ROOT, assert_one_error_line, json_lines, run_cli, run_scripted
from tests.scripted import make_pdf, make_png

THREE_LINES = ("<!doctype html><html><body><p>Quarterly revenue rose 12 percent.</p>"
               "<p>East led with 4.2 million.</p><p>West fell 3 percent.</p></body></html>")


# -- a question forgotten ------------------------------------------------------------------------------------
def test_a_forgotten_question_is_a_usage_error_not_a_question_named_after_a_file(tmp_path):
    page = tmp_path / "page.html"
    page.write_text(THREE_LINES)
    poster = make_png(tmp_path / "poster.png")
    proc = run_cli("ask", page, poster)
    assert proc.returncode == 2
    assert_one_error_line(proc, "the question is missing", f"{poster} is a source")
    assert proc.stdout == ""


# -- chat takes --json, --output and --resume ---------------------------------------------------------------
def test_chat_writes_output_and_resumes_with_the_conversation_so_far(tmp_path):
    pdf = make_pdf(tmp_path / "a.pdf", ["The harbour logged 17 ships in March.", "Tides were high."])
    out = tmp_path / "talk.jsonl"
    first = run_scripted("chat", pdf, "--json", "--output", out, "--hd", "2", input="how many ships?\nand tides?\n")
    assert first.returncode == 0, first.stderr
    assert [r["question"] for r in json_lines(first.stdout)] == ["how many ships?", "and tides?"]
    assert json_lines(out.read_text()) == json_lines(first.stdout)
    out.write_bytes(out.read_bytes() + b'{"schema": 2, "sour')  # a run killed mid-write: a torn last line
    again = run_scripted("chat", pdf, "--output", out, "--resume", "--hd", "2",
                         input="how many ships?\nand tides?\nand in April?\n")
    assert again.returncode == 0, again.stderr
    assert [r["question"] for r in json_lines(again.stdout)] == ["and in April?"]
    assert "questions already answered" in again.stderr
    assert [r["question"] for r in json_lines(out.read_text())] == ["how many ships?", "and tides?", "and in April?"]
    usage = run_scripted("chat", pdf, "--resume", input="q\n")
    assert usage.returncode == 2 and "--resume needs --output" in usage.stderr


def test_a_resumed_chat_remembers_the_answers_it_skips(tmp_path):
    from docvision.cli.chat import Kept
    from docvision.config import resolve
    from docvision.document import IngestOptions
    from docvision.ingest import load
    from docvision.run.calls import Chat
    from tests.scripted import ScriptedBackend

    pdf = make_pdf(tmp_path / "a.pdf", ["The harbour logged 17 ships in March."])
    out = tmp_path / "talk.jsonl"
    record = {"schema": 2, "source": str(pdf), "task": "chat", "status": "ok", "question": "how many ships?",
              "answer": "17 ships."}
    out.write_text(json.dumps(record) + "\n")
    backend = ScriptedBackend(["In March."])
    with load(str(pdf), IngestOptions()) as document, Kept(out, resume=True) as kept:
        talk = Chat(str(pdf), [document], [], backend, resolve({}), None, None)
        kept.start(talk, timings=True)
        assert kept.earlier(talk, "how  many ships?") and not kept.earlier(talk, "in which month?")
        talk.ask("in which month?")
    assert "Q: how many ships?\nA: 17 ships." in backend.calls[0][1]


def test_chat_json_on_a_terminal_writes_records(tmp_path):
    from tests.helpers import _SCRIPTED

    pdf = make_pdf(tmp_path / "a.pdf", ["The harbour logged 17 ships in March."])
    env = {**os.environ, "PYTHONPATH": ROOT, "NO_COLOR": "1", "SCRIPTED_DELAY": "0", "TERM": "dumb"}
    child = pexpect.spawn(sys.executable, ["-c", _SCRIPTED, "chat", str(pdf), "--json", "--hd", "2"], env=env,
                          cwd=ROOT, encoding="utf-8", timeout=120)
    child.sendline("how many ships?")
    child.expect(r'\{"schema":\s*2,.*"question":\s*"how many ships\?"')
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


# -- what cannot be written ------------------------------------------------------------------------------------
@pytest.mark.parametrize("json_out", [True, False])
def test_records_to_a_full_stdout_are_one_line_and_exit_74(tmp_path, json_out):
    pdf = make_pdf(tmp_path / "report.pdf", ["Total 5"])
    flags = " --json" if json_out else ""
    proc = subprocess.run(["bash", "-c", f"{sys.executable} -m docvision render {pdf}{flags} > /dev/full"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 74, proc.stderr
    line = assert_one_error_line(proc, "cannot write records to standard output", "the disk is full")
    assert proc.stderr.strip() == line and "unexpected" not in proc.stderr


def test_views_on_a_full_disk_fail_each_source_as_output_not_internal(tmp_path):
    sources = [make_pdf(tmp_path / "a.pdf", ["Total 5"]), make_png(tmp_path / "b.png")]
    disk = tmp_path / "full"
    proc = run_scripted("render", *sources, "--views", disk / "views", "--json", full_disk=disk)
    assert proc.returncode == 1, proc.stderr
    got = json_lines(proc.stdout)
    assert [r["error"]["kind"] for r in got] == ["output", "output"]
    assert all("cannot write the views" in r["error"]["message"] and "the disk is full" in r["error"]["message"]
               for r in got)
    assert "Traceback" not in proc.stderr and "internal" not in proc.stderr


def test_an_output_that_cannot_be_opened_is_a_usage_error_as_documented(tmp_path):
    pdf = make_pdf(tmp_path / "a.pdf", ["Total 5"])
    (tmp_path / "file").write_text("x")
    proc = run_cli("render", pdf, "--output", tmp_path / "file" / "out.jsonl")
    assert proc.returncode == 2 and proc.stdout == ""
    for name in ("README.md", "docs/records.md"):
        text = " ".join((Path(ROOT) / name).read_text().split())
        assert "an `--output` that cannot be opened" in text and "74 records could not be written" in text


# -- one page-range rule ---------------------------------------------------------------------------------------
def test_pages_past_the_end_are_left_out_with_a_warning_and_none_left_is_an_error():
    warnings: list[str] = []
    assert parse_page_range("2-9", 2, "a.pdf", warnings) == [1]
    assert warnings == ["pages 2-9 reach past the end (the document has 2 pages): read 2"]
    with pytest.raises(PageRangeError, match="pages 5 are outside the document, which has 1 page"):
        parse_page_range("5", 1, "poster.png")
    assert parse_page_range("1,3,4-", 4, "", []) == [0, 2, 3]


def test_every_kind_of_source_follows_the_page_rule(tmp_path):
    pdf = make_pdf(tmp_path / "report.pdf", ["one", "two"])
    poster = make_png(tmp_path / "poster.png")
    page = tmp_path / "page.html"
    page.write_text(THREE_LINES)
    wide = run_cli("render", pdf, poster, page, "--pages", "1-9", "--json")
    assert wide.returncode == 0, wide.stderr
    assert [r["resolution"]["pages"] for r in json_lines(wide.stdout)] == [2, 1, 1]
    assert all(any("reach past the end" in w for w in r["warnings"]) for r in json_lines(wide.stdout))
    out = run_cli("render", poster, pdf, "--pages", "5", "--json")
    assert out.returncode == 1
    assert [r["error"]["kind"] for r in json_lines(out.stdout)] == ["page_range", "page_range"]


# -- answers of several sources say which is which ---------------------------------------------------------------
def test_answers_of_several_sources_to_a_pipe_are_headed_a_single_one_stays_bare(tmp_path):
    sources = [make_png(tmp_path / "a.png"), make_pdf(tmp_path / "b.pdf", ["Total 5"])]
    several = run_scripted("summarize", *sources, "--hd", "1")
    assert several.returncode == 0, several.stderr
    assert several.stdout == f"==> {sources[0]} <==\nreply 1\n\n==> {sources[1]} <==\nreply 2\n"
    asked = run_scripted("ask", *sources, "what is it?", "--hd", "1")
    assert asked.stdout.count("==> ") == 2 and f"==> {sources[1]} <==" in asked.stdout
    single = run_scripted("summarize", sources[1], "--hd", "1")
    assert single.stdout == "reply 1\n"


# -- a live status line on a terminal, nothing on a pipe -------------------------------------------------------------
def test_long_model_work_shows_a_status_line_on_a_terminal_only(tiny_model_dir, tmp_path):
    pdf = make_pdf(tmp_path / "a.pdf", ["Total 5"])
    model = str(tiny_model_dir("qwen3_vl"))
    args = ["ask", str(pdf), "what is the total?", "--model", model, "--hd", "1", "--max-new-tokens", "12"]
    env = {**os.environ, "NO_COLOR": "1", "TERM": "xterm"}
    child = pexpect.spawn(sys.executable, ["-m", "docvision", *args], env=env, cwd=ROOT, encoding="utf-8",
                          timeout=300)
    child.expect(pexpect.EOF)
    child.close()
    shown = child.before
    assert child.exitstatus == 0, shown
    for said in ("loading the model", r"encoding [\d,]+ visual tokens of 1 page", r"writing: \d+ tokens?"):
        assert re.search(r"\r\x1b\[2K" + said, shown), (said, shown)
    piped = run_cli(*args)
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr  # nothing of it reaches a pipe


def test_the_library_reports_status_through_on_status(tiny_model_dir, tmp_path):
    import docvision

    pdf = make_pdf(tmp_path / "a.pdf", ["Total 5"])
    said: list[str] = []
    with docvision.Session(model=str(tiny_model_dir("qwen3_vl")), hd=1, max_new_tokens=6) as session:
        record = next(session.ask(pdf, "what is the total?", on_status=said.append))
        assert record["status"] == "ok"
        assert said[0].startswith("loading the model") and said[1].startswith("encoding")
        assert any(line.startswith("writing: ") for line in said)
        quiet = len(said)
        list(session.ask(pdf, "and the date?"))  # another call without on_status: nothing more said
        assert len(said) == quiet


# -- models to a pipe --------------------------------------------------------------------------------------------
def test_models_to_a_pipe_keeps_hub_ids_whole():
    proc = run_cli("models")
    assert proc.returncode == 0, proc.stderr
    for hub_id in ("Qwen/Qwen3-VL-4B-Instruct", "internlm/internlm-xcomposer2-4khd-7b"):
        assert any(hub_id in line for line in proc.stdout.splitlines()), proc.stdout


# -- a page too wide to draw -------------------------------------------------------------------------------------
def test_a_page_wider_than_the_browser_draws_is_bounded_with_a_warning(tmp_path):
    page = tmp_path / "wide.html"
    page.write_text('<body style="margin:0"><div style="width:8000px;height:40px;background:#cce">wide</div></body>')
    proc = run_cli("render", page, "--scale", "8", "--viewport-width", "8192", "--json", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    (record,) = json_lines(proc.stdout)
    assert record["status"] == "ok" and "internal" not in proc.stderr
    assert any("more than the browser draws" in w for w in record["warnings"]), record["warnings"]
    assert record["pages"][0]["plan"]["source_size"][0] <= 16384


# -- drift ---------------------------------------------------------------------------------------------------
def test_help_states_each_commands_own_defaults_and_examples():
    def help_of(command: str) -> str:
        return " ".join(run_cli(command, "--help").stdout.split())  # the same words, however wrapped

    render = help_of("render")
    assert "for summarize" not in render and "[default: 25; env DOCVISION_HD]" in render
    summarize = help_of("summarize")
    assert "[default: 16; env DOCVISION_HD]" in summarize and "[default: 384; env DOCVISION_MAX_NEW_TOKENS]" in summarize
    assert "Examples:" in summarize and "Examples:" in help_of("extract")
    assert "for summarize" not in help_of("ask")


def test_readme_names_every_evidence_key_a_record_has():
    from docvision.tasks.pages import evidence_of_words
    from docvision.tiling import plan

    keys = list(evidence_of_words(1, "page 1", plan((100, 100), 1), []))
    readme = (Path(ROOT) / "README.md").read_text()
    listed = re.search(r"`evidence` is a list of `\{([^}]*)\}`", readme).group(1)
    assert [k.strip() for k in listed.split(",")] == keys


# -- stderr holds docvision's lines only ---------------------------------------------------------------------
NOISY = """
import logging, sys, warnings
import docvision.models
from tests.scripted import ScriptedBackend

class Noisy(ScriptedBackend):
    def generate(self, *args, **kwargs):
        logging.getLogger("kernels._internals.hf_hub").warning("Skipping publisher trust check for 'x'")
        warnings.warn("a library's deprecation", DeprecationWarning)
        warnings.warn("a library's warning")
        for _ in range(2):
            logging.getLogger("somelib").error("the library failed at something that matters")
        return super().generate(*args, **kwargs)

docvision.models.load_backend = lambda settings: Noisy(model=settings.model)
from docvision.cli import main
main(sys.argv[1:])
"""


def test_third_party_log_lines_never_reach_stderr_an_error_becomes_one_warning(tmp_path):
    pdf = make_pdf(tmp_path / "a.pdf", ["Total 5"])
    env = {**os.environ, "PYTHONPATH": ROOT, "NO_COLOR": "1", "PYTHONWARNINGS": "always"}
    proc = subprocess.run([sys.executable, "-c", NOISY, "ask", str(pdf), "what?", "--hd", "1", "--json"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["warning: somelib: the library failed at something that matters"]
    debug = subprocess.run([sys.executable, "-c", NOISY, "ask", str(pdf), "what?", "--hd", "1", "--json", "--debug"],
                           capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert "debug: kernels._internals.hf_hub: Skipping publisher trust check" in debug.stderr


def test_a_4bit_ask_offline_says_nothing_on_stderr(tiny_model_dir, tmp_path):
    """HF_HUB_OFFLINE=1 (the conftest sets it), quantizing then loading the quantized copy: whatever the
    libraries log (bitsandbytes' optional kernels, a trust check skipped offline) stays off stderr."""
    pdf = make_pdf(tmp_path / "a.pdf", ["Total 5"])
    args = ["ask", pdf, "what?", "--model", tiny_model_dir("qwen2_5_vl"), "--hd", "1", "--quant", "4bit",
            "--device", "cpu", "--max-new-tokens", "2", "--json"]
    for _ in range(2):
        proc = run_cli(*args, env={"DOCVISION_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"})
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr


# -- pages at the extent of their content -----------------------------------------------------------------
def test_a_three_line_page_is_captured_at_its_content_not_the_window(tmp_path):
    page = tmp_path / "three.html"
    page.write_text(THREE_LINES)
    blank = tmp_path / "blank.html"
    blank.write_text("<!doctype html><html><body></body></html>")
    proc = run_cli("render", page, blank, "--json", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    three, empty = json_lines(proc.stdout)
    (shown,) = three["pages"]
    width, height = shown["plan"]["source_size"]
    assert width < 1280 * 2 and 3 * 18 * 2 < height < 720 * 2  # three lines, not the 1280x720 window
    assert shown["plan"]["tiles"] <= 8 and three["resolution"]["visual_tokens"] < 1500  # was 24 tiles, 3661
    assert "West fell 3 percent." in shown["text"]
    assert empty["pages"][0]["plan"]["tiles"] == 1  # nothing on it: one line high, one tile


def test_a_small_sheet_is_shown_at_its_extent(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Sales"
    for row in [("Region", "Q1", "Q2"), ("East", 120, 130), ("West", 90, 85), ("North", 60, 70)]:
        sheet.append(row)
    book.save(tmp_path / "small.xlsx")
    proc = run_cli("render", tmp_path / "small.xlsx", "--json", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    (record,) = json_lines(proc.stdout)
    plan = record["pages"][0]["plan"]
    width, height = plan["source_size"]
    assert width > 2 * height and plan["tiles"] <= 4, plan  # was a 1318x1318 square, 25 tiles
    assert "North" in record["pages"][0]["text"]


# -- the load script ---------------------------------------------------------------------------------------------
def test_the_load_script_keeps_cores_busy_returns_the_status_and_leaves_nothing():
    probe = ("import os, sys; me = os.getppid(); busy = 0\n"
             "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
             "    try: args = open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\\0')\n"
             "    except OSError: continue\n"
             "    busy += b'docvision-load' in args and str(me).encode() in args\n"
             "print(busy, me); sys.exit(3)")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "load.py"), "--cores", "2", "--",
                           sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    busy, parent = proc.stdout.split()
    assert busy == "2"
    left = [pid for pid in filter(str.isdigit, os.listdir("/proc"))
            if _cmdline(pid).count(b"docvision-load") and parent.encode() in _cmdline(pid).split(b"\0")]
    assert left == []


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
