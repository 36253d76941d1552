"""The Python API (docvision.Session, docs/api.md): the same records as the CLI, settings layered as the
CLI layers them, bad settings raised before anything runs, a model and tools kept between calls and
closed at the end -- also when the caller's loop raises."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import pytest
from PIL import Image, ImageDraw, ImageFont

import docvision
from docvision import UsageError
from docvision.cli import run
from tests.helpers import ROOT, json_lines

QUESTION = "What is the total due?"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    """A two-page PDF with a text layer and a scanned-looking image."""
    import pymupdf as fitz

    folder = tmp_path_factory.mktemp("api")
    document = fitz.open()
    for n in (1, 2):
        document.new_page(width=612, height=792).insert_text((72, 100), f"Page {n}: total {n * 100} EUR",
                                                             fontsize=20)
    document.save(folder / "two.pdf")
    image = Image.new("RGB", (900, 400), "white")
    ImageDraw.Draw(image).text((40, 120), "INVOICE 2041", font=ImageFont.load_default(size=72), fill="black")
    image.save(folder / "scan.png")
    return {"pdf": str(folder / "two.pdf"), "image": str(folder / "scan.png")}


def same(got: list[dict], expected: list[dict]) -> bool:
    """Equal records; else the first field that differs, for the failure message."""
    for a, b in zip(got, expected):
        for key in a:
            assert a[key] == b[key], (a["source"], key, a[key], b[key])
    return len(got) == len(expected)


def cli(capsys, *args: str, code: int = 0) -> list[dict]:
    status = run([*args, "--json", "--no-timings"])
    captured = capsys.readouterr()
    assert status == code, captured.err
    return json_lines(captured.out)


# -- import and settings ------------------------------------------------------------------------------------
def test_import_is_light_typed_and_silent():
    code = ("import logging, sys, docvision\n"
            "session = docvision.Session(hd=9)\n"
            "assert issubclass(docvision.errors.ModelError, docvision.DocvisionError)\n"
            "logging.getLogger('docvision').warning('not shown without a handler')\n"
            "heavy = [m for m in ('torch', 'transformers', 'playwright') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert os.path.exists(os.path.join(ROOT, "docvision", "py.typed"))


@pytest.mark.parametrize("make, message", [
    (lambda: docvision.Session(hd=-3), "hd must be at least 1"),
    (lambda: docvision.Session(model="no-such-model"), "unknown model 'no-such-model'"),
    (lambda: docvision.Session(colour="red"), "unknown setting colour"),
    (lambda: docvision.Session(ocr="sometimes"), "ocr must be one of auto, always, never"),
])
def test_a_bad_setting_raises_when_the_session_is_made(make, message):
    with pytest.raises(UsageError, match=message):
        make()


def test_a_bad_call_raises_before_anything_runs(inputs):
    with docvision.Session() as session:
        for call, message in [
            (lambda: session.ask(inputs["pdf"], QUESTION, pages="3-1"), "runs backwards"),
            (lambda: session.ask(inputs["pdf"], QUESTION, model="small"), "on the Session"),
            (lambda: session.ask(inputs["pdf"]), "no question"),
            (lambda: session.extract(inputs["pdf"]), "nothing to extract"),
            (lambda: session.extract(inputs["pdf"], schema={"type": "string"}), "object schema"),
            (lambda: session.summarize(inputs["pdf"], resume=True), "--resume needs --output"),
            (lambda: session.render([]), "no sources given"),
        ]:
            with pytest.raises(UsageError, match=message):
                call()
        assert session._backend is None and session._tools is None  # nothing was loaded or started


def test_settings_layer_as_the_cli_layers_them(tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text("hd = 5\nmax_pages = 3\n")
    monkeypatch.setenv("DOCVISION_HD", "7")
    monkeypatch.setenv("DOCVISION_OFFLINE", "1")
    from_env = docvision.Session(config=config).settings
    assert (from_env.hd, from_env.max_pages, from_env.offline) == (7, 3, True)
    given = docvision.Session(config=config, hd=9, offline=False).settings
    assert (given.hd, given.offline) == (9, False)  # an argument wins, an explicit False too
    assert given.origins["hd"] == "flag" and from_env.origins["max_pages"] == "file"


# -- the same records as the CLI ----------------------------------------------------------------------------
@pytest.mark.model
def test_ask_summarize_and_extract_records_equal_the_cli(inputs, tiny_model_dir, capsys):
    model = str(tiny_model_dir("qwen2_5_vl"))
    sources = [inputs["pdf"], inputs["image"]]
    common = ["--model", model, "--hd", "4", "--max-new-tokens", "8"]
    settings = {"model": model, "hd": 4, "max_new_tokens": 8, "no_timings": True}
    # A Session per command: in one Session the second call would reuse the pages' encoding (and say so).
    with docvision.Session(**settings) as session:
        assert same(list(session.ask(sources, QUESTION)), cli(capsys, "ask", *sources, QUESTION, *common))
    assert same(docvision.summarize(sources, **settings), cli(capsys, "summarize", *sources, *common))
    assert same(docvision.extract(sources, fields={"total": "number"}, **settings),
                cli(capsys, "extract", *sources, "--field", "total:number", *common, code=1))  # a random model's JSON


@pytest.mark.model
def test_render_records_equal_the_cli(inputs, tiny_model_dir, capsys):
    model = str(tiny_model_dir("qwen3_vl"))
    sources = [inputs["pdf"], inputs["image"]]
    assert docvision.render(sources, hd=9, no_timings=True) == cli(capsys, "render", *sources, "--hd", "9")
    with docvision.Session(model=model, no_timings=True) as session:
        records = list(session.render(sources))
    assert records == cli(capsys, "render", *sources, "--model", model)
    assert records[0]["model"]["id"] == model and records[0]["resolution"]["tile"] == 384  # Qwen3-VL's tile


# -- a Session between calls --------------------------------------------------------------------------------
@pytest.mark.model
def test_a_second_call_reuses_the_model_and_the_pages_encoding(inputs, tiny_model_dir):
    with docvision.Session(model=str(tiny_model_dir("qwen2_5_vl")), hd=4, max_new_tokens=4) as session:
        first = list(session.ask(inputs["pdf"], QUESTION, pages="1"))[0]
        second = list(session.ask(inputs["pdf"], "Who signed it?", pages="1"))[0]
    assert first["status"] == second["status"] == "ok"
    assert first["usage"]["cached_prefix_tokens"] == 0 < second["usage"]["cached_prefix_tokens"]
    assert first["timings"]["load_s"] > 0 and second["timings"]["load_s"] == 0  # loaded once


@pytest.mark.model
def test_on_text_pieces_join_to_the_answer(inputs, tiny_model_dir):
    pieces: list[str] = []
    asked: list[tuple[str, str]] = []
    with docvision.Session(model=str(tiny_model_dir("qwen2_5_vl")), hd=4, max_new_tokens=12) as session:
        record = next(session.ask(inputs["image"], QUESTION, on_text=pieces.append,
                                  on_question=lambda *pair: asked.append(pair)))
    assert len(pieces) > 1 and "".join(pieces) == record["answer"]
    assert asked == [(inputs["image"], QUESTION)]


@pytest.mark.model
def test_a_model_that_cannot_load_is_an_error_record_per_source(inputs, tmp_path):
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    with docvision.Session(model=str(empty)) as session:
        run_ = session.ask([inputs["pdf"], inputs["image"]], QUESTION)
        got = list(run_)
    assert [r["error"]["kind"] for r in got] == ["model", "model"]
    assert "no config.json" in got[0]["error"]["message"]
    assert run_.failure is not None and run_.status == 1


def test_a_bad_source_is_an_error_record_and_the_others_run(inputs, tmp_path):
    run_ = docvision.Session().render([str(tmp_path / "missing.pdf"), inputs["pdf"]], ocr="never")
    got = list(run_)
    assert [r["status"] for r in got] == ["error", "ok"] and got[0]["error"]["kind"] == "not_found"
    assert run_.status == 1


def test_a_new_call_stops_one_left_unfinished(inputs, caplog):
    with docvision.Session(ocr="never") as session:
        left = session.render([inputs["pdf"], inputs["image"]])
        next(left)
        with caplog.at_level(logging.WARNING, logger="docvision"):
            assert [r["status"] for r in session.render(inputs["pdf"])] == ["ok"]
        assert left.finished and list(left) == []
    assert "was not iterated to its end" in caplog.text


# -- text in render records ---------------------------------------------------------------------------------
def test_render_pages_carry_their_text_and_where_it_came_from(inputs, capsys):
    pdf = docvision.render(inputs["pdf"], ocr="never")[0]
    assert [p["text"] for p in pdf["pages"]] == ["Page 1: total 100 EUR", "Page 2: total 200 EUR"]
    assert [p["words"] for p in pdf["pages"]] == [5, 5] and pdf["pages"][0]["text_from"] == "text"
    never = docvision.render(inputs["image"], ocr="never")[0]["pages"][0]
    assert (never["words"], never["text"], never["text_from"]) == (0, "", None)


@pytest.mark.ocr
def test_render_carries_the_ocr_words(inputs, capsys):
    page = cli(capsys, "render", inputs["image"], "--ocr", "always")[0]["pages"][0]
    assert page["text_from"] == "ocr" and page["words"] == len(page["text"].split()) > 0
    assert "2041" in page["text"] or "INVOICE" in page["text"].upper()


@pytest.mark.office
def test_render_carries_a_sheets_cells_as_displayed(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["Region", "Revenue"])
    book.active.append(["East", 1234567.891])
    book.active["B2"].number_format = '"$"#,##0.00'
    book.save(tmp_path / "sales.xlsx")
    page = docvision.render(str(tmp_path / "sales.xlsx"), ocr="never")[0]["pages"][0]
    assert "$1,234,567.89" in page["text"] and page["text_from"] == "text"
    assert page["text"].splitlines()[:2] == ["Region Revenue", "East $1,234,567.89"]


# -- closing ------------------------------------------------------------------------------------------------
def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid`` that still runs (zombies have ended), by pid, with its name."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat.rsplit(")", 1)[1].split()
        if rest[0] != "Z":
            children.setdefault(int(rest[1]), []).append((int(entry), name))
    found, todo = {}, [pid]
    while todo:
        for child, name in children.get(todo.pop(), []):
            found[child] = name
            todo.append(child)
    return found


def still_running(pids) -> list[int]:
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.append(pid)
        except OSError:
            pass
    return alive


@pytest.mark.browser
@pytest.mark.office
@pytest.mark.slow
def test_a_session_closed_by_an_exception_leaves_no_process_behind(inputs, tmp_path):
    from openpyxl import Workbook

    (tmp_path / "page.html").write_text("<h1>Quarterly numbers</h1><p>East grew most.</p>")
    book = Workbook()
    book.active["A1"] = "East"
    book.save(tmp_path / "sheet.xlsx")
    seen: dict[int, str] = {}
    with pytest.raises(RuntimeError, match="the caller's own bug"):
        with docvision.Session(ocr="never") as session:
            sources = [str(tmp_path / "page.html"), str(tmp_path / "sheet.xlsx"), inputs["pdf"]]
            for record in session.render(sources):
                assert record["status"] == "ok", record["error"]
                seen.update(descendants(os.getpid()))
                if record["document"]["type"] != "web":  # the browser and LibreOffice both ran by now
                    raise RuntimeError("the caller's own bug")
    names = " ".join(seen.values())
    assert "chrom" in names and "soffice" in names, seen  # the browser and LibreOffice were running
    deadline = time.monotonic() + 60  # a hang guard: the processes are stopped, not waited out
    while still_running(seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert still_running(seen) == [], {pid: seen[pid] for pid in still_running(seen)}
