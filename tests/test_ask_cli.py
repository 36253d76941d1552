"""``docvision ask`` end to end on tiny random-weight models: the record, visual tokens against the plan
(and against ``render --model``), 4-bit on CPU, page choice, streaming, and the errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image, ImageDraw, ImageFont

from docvision.cli import run
from docvision.tasks.ask import build_prompt
from tests.helpers import assert_one_error_line, json_lines, run_cli

pytestmark = pytest.mark.model
QUESTION = "What is the total due?"


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> str:
    """A letter-shaped page with a few lines of text."""
    path = tmp_path_factory.mktemp("ask") / "invoice.png"
    image = Image.new("RGB", (850, 1100), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=36)
    for i, line in enumerate(["INVOICE 2041", "Widgets x 3   300.00", "Total due: 1,234.50 EUR"]):
        draw.text((60, 80 + 90 * i), line, font=font, fill="black")
    image.save(path)
    return str(path)


@pytest.fixture(scope="module")
def two_page_pdf(tmp_path_factory) -> str:
    import fitz

    path = tmp_path_factory.mktemp("ask") / "two.pdf"
    document = fitz.open()
    for n in (1, 2):
        document.new_page(width=612, height=792).insert_text((72, 100), f"Page {n}: total {n * 100}", fontsize=20)
    document.save(path)
    return str(path)


def in_process(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process (the model libraries are imported once for all these tests)."""
    code = run([*args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_record(capsys, *args: str) -> dict:
    code, out, err = in_process(capsys, *args)
    assert code == 0, err
    records = json_lines(out)
    assert len(records) == 1
    return records[0]


def test_prompt_is_instruction_then_question():
    one = build_prompt("  what is\nthe total? ", ["page 1"])
    assert one.endswith("\nQuestion: what is the total?")
    assert "what the page shows" in one
    two = build_prompt("Q?", ["page 1", "page 3"])
    assert "pages (page 1, page 3) show." in two


def test_ask_json_record_through_the_real_cli(tiny_model_dir, sample):
    folder = tiny_model_dir("qwen3_vl")
    proc = run_cli("ask", sample, QUESTION, "--model", folder, "--hd", "4", "--max-new-tokens", "4", "--json")
    assert proc.returncode == 0, proc.stderr
    [record] = json_lines(proc.stdout)
    assert record["status"] == "ok" and record["task"] == "ask" and record["source"] == sample
    assert record["question"] == QUESTION and isinstance(record["answer"], str)
    [evidence] = record["evidence"]  # the picture has no text layer: OCR read its words, routing matched them
    assert (evidence["page"], evidence["label"], evidence["field"], evidence["cells"]) == (1, "image", None, None)
    assert "Total" in evidence["words"] and len(evidence["boxes"]) == len(evidence["words"])
    assert record["model"] == {"id": str(folder), "backend": "transformers", "family": record["model"]["family"],
                               "device": "cpu", "quant": "none", "dtype": "bfloat16", "base_url": None}
    res = record["resolution"]
    assert (res["hd"], res["tile"], res["tiles"], res["grid"], res["canvas"]) == (4, 384, 4, [[2, 2]], [[768, 768]])
    assert res["visual_tokens"] == (768 // 32) ** 2  # counted from the processor's real input
    assert set(record["timings"]) >= {"load_s", "render_s", "prefill_s", "generate_s"}
    assert 1 <= record["usage"]["new_tokens"] <= 4 and record["usage"]["calls"] == 1
    assert record["document"]["type"] == "image" and record["error"] is None
    rendered = run_cli("render", sample, "--model", folder, "--hd", "4", "--json")
    assert json_lines(rendered.stdout)[0]["resolution"]["visual_tokens"] == res["visual_tokens"]


def test_ask_4bit_on_cpu(tiny_model_dir, sample, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCVISION_CACHE_DIR", str(tmp_path / "cache"))
    for family, quant in (("qwen2_5_vl", "4bit"), ("internvl", "4bit"), ("qwen2_5_vl", "8bit")):
        record = one_record(capsys, "ask", sample, QUESTION, "--model", str(tiny_model_dir(family)), "--hd", "1",
                            "--quant", quant, "--device", "cpu", "--max-new-tokens", "2", "--json")
        assert record["model"]["quant"] == quant and record["model"]["device"] == "cpu"
        assert record["resolution"]["visual_tokens"] > 0
    assert len(list((tmp_path / "cache" / "quantized").iterdir())) == 3


def test_4bit_on_cpu_keeps_stderr_for_docvision(tiny_model_dir, sample, tmp_path):
    """A fresh process, quantizing and then loading the quantized copy: nothing on stderr from the
    libraries (bitsandbytes logged a missing optional package at import, twice, on AVX512-BF16 CPUs)."""
    env = {"DOCVISION_CACHE_DIR": str(tmp_path / "cache")}
    args = ["ask", sample, QUESTION, "--model", str(tiny_model_dir("qwen2_5_vl")), "--hd", "1", "--quant", "4bit",
            "--device", "cpu", "--max-new-tokens", "2", "--json"]
    for _ in range(2):
        proc = run_cli(*args, env=env)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        assert json_lines(proc.stdout)[0]["model"]["quant"] == "4bit"


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl", "internvl", "idefics3"])
def test_visual_tokens_match_plan_and_render(tiny_model_dir, sample, capsys, family):
    folder = str(tiny_model_dir(family))
    seen = []
    for hd in ("1", "4"):
        record = one_record(capsys, "ask", sample, QUESTION, "--model", folder, "--hd", hd,
                            "--max-new-tokens", "2", "--json")
        rendered = one_record(capsys, "render", sample, "--model", folder, "--hd", hd, "--json")
        res = record["resolution"]  # counted from the processor's input; render's is the family's prediction
        assert res["visual_tokens"] == rendered["resolution"]["visual_tokens"]
        assert res["tile"] == rendered["resolution"]["tile"] and res["tiles"] == rendered["resolution"]["tiles"]
        seen.append(res["visual_tokens"])
    assert seen[1] > seen[0]


def test_multi_page_source_is_routed_or_uses_chosen_pages(tiny_model_dir, two_page_pdf, capsys):
    folder = str(tiny_model_dir("qwen3_vl"))
    second = one_record(capsys, "ask", two_page_pdf, "What is on page 2?", "--model", folder, "--hd", "1",
                        "--max-new-tokens", "1", "--json", "--no-cache")
    assert [e["page"] for e in second["evidence"]] == [2]  # routed by the text layer
    assert second["routing"]["reason"] == "matched" and second["evidence"][0]["words"]
    first = one_record(capsys, "ask", two_page_pdf, QUESTION, "--model", folder, "--hd", "1", "--pages", "1",
                       "--max-new-tokens", "1", "--json", "--no-cache")
    assert [e["page"] for e in first["evidence"]] == [1] and not first["warnings"]
    both = one_record(capsys, "ask", two_page_pdf, QUESTION, "--model", folder, "--hd", "1", "--pages", "1-2",
                      "--max-new-tokens", "1", "--json", "--no-cache")
    assert [e["page"] for e in both["evidence"]] == [1, 2] and not both["warnings"]
    assert both["resolution"]["visual_tokens"] == 2 * first["resolution"]["visual_tokens"]


def test_answer_streams_to_a_terminal(tiny_model_dir, sample, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("NO_COLOR", "1")
    code, out, err = in_process(capsys, "ask", sample, QUESTION, "--model", str(tiny_model_dir("idefics3")),
                                "--hd", "1", "--max-new-tokens", "3")
    assert code == 0, err
    assert "visual tokens" in out and sample in out


def test_errors_are_one_line(tiny_model_dir, sample, tmp_path):
    not_model = tmp_path / "empty"
    not_model.mkdir()
    proc = run_cli("ask", sample, QUESTION, "--model", not_model)
    assert proc.returncode == 1
    assert_one_error_line(proc, "not a model folder")
    proc = run_cli("ask", sample, QUESTION, "--model", tiny_model_dir("qwen3_vl"), "--quant", "3bit")
    assert proc.returncode == 2
    assert_one_error_line(proc, "--quant")


def test_cuda_asked_without_a_gpu(tiny_model_dir, sample, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, out, err = in_process(capsys, "ask", sample, QUESTION, "--model", str(tiny_model_dir("qwen3_vl")),
                                "--device", "cuda", "--json")
    assert code == 1
    [record] = json_lines(out)
    assert record["status"] == "error" and record["error"]["kind"] == "model"
    assert_one_error_line(subprocess.CompletedProcess([], code, out, err), "no CUDA GPU", "--device cpu")


def test_out_of_memory_names_the_flags(tiny_model_dir, sample, capsys, monkeypatch):
    import torch

    from docvision.models import transformers as tb

    def no_memory(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(tb.TransformersBackend, "prepare", no_memory)
    code, out, err = in_process(capsys, "ask", sample, QUESTION, "--model", str(tiny_model_dir("qwen3_vl")),
                                "--json")
    assert code == 1
    [record] = json_lines(out)
    assert record["error"]["kind"] == "out_of_memory"
    assert_one_error_line(subprocess.CompletedProcess([], code, out, err), "out of memory", "--hd", "--quant",
                          "--device")


def test_a_model_that_cannot_load_is_one_line_and_a_record_per_source(sample, two_page_pdf, tmp_path, capsys):
    """People get the reason once; scripts still get one error record per source (stdout and --output)."""
    not_model = tmp_path / "not-a-model"
    not_model.mkdir()
    output = tmp_path / "out.jsonl"
    code, out, err = in_process(capsys, "ask", sample, two_page_pdf, QUESTION, "--model", str(not_model),
                                "--json", "--output", str(output))
    assert code == 1
    assert err.splitlines() == [f"error: {not_model} is not a model folder: it has no config.json"]
    for lines in (json_lines(out), json_lines(output.read_text())):
        assert [r["source"] for r in lines] == [sample, two_page_pdf]
        assert {(r["status"], r["error"]["kind"]) for r in lines} == {("error", "model")}
    code, out, err = in_process(capsys, "ask", sample, two_page_pdf, QUESTION, "--model", str(not_model))
    assert (code, out, len(err.splitlines())) == (1, "", 1)
