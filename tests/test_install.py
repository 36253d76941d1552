"""The light install: render, the OpenAI-compatible backend and --ray workers need no PyTorch; a local model
needs the ``local`` extra and says so in one line when it is missing (pyproject.toml, README's Set up)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from PIL import Image

from tests.helpers import ROOT, json_lines

HEAVY = ("torch", "torchvision", "transformers", "accelerate", "bitsandbytes", "safetensors")
# As if the local extra were not installed: importing any of these fails, as it would.
WITHOUT_LOCAL = ("import sys\n"
                 f"for name in {HEAVY!r}: sys.modules[name] = None\n"
                 "from docvision.cli import main; main(sys.argv[1:])")


def requirements() -> dict:
    project = tomllib.loads((Path(ROOT) / "pyproject.toml").read_text())["project"]
    names = lambda listed: {r.split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip() for r in listed}  # noqa: E731
    return {"base": names(project["dependencies"]),
            **{extra: names(listed) for extra, listed in project["optional-dependencies"].items()}}


def test_the_base_install_has_no_pytorch_and_the_extras_have_what_they_name():
    needs = requirements()
    assert not needs["base"] & set(HEAVY) and "ray" not in needs["base"]
    assert set(HEAVY) - {"torchvision"} <= needs["local"] and "ray" in needs["ray"]


def without_local(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_LOCAL, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, env={**os.environ, "NO_COLOR": "1"})


def test_render_runs_and_a_local_model_says_what_to_install(tmp_path, tiny_model_dir):
    Image.new("RGB", (600, 400), "white").save(tmp_path / "page.png")
    rendered = without_local("render", str(tmp_path / "page.png"), "--json", "--ocr", "never")
    assert rendered.returncode == 0, rendered.stderr
    assert json_lines(rendered.stdout)[0]["status"] == "ok"
    asked = without_local("ask", str(tmp_path / "page.png"), "what is it?", "--model", str(tiny_model_dir("qwen2_5_vl")))
    assert asked.returncode == 1
    assert asked.stderr.splitlines() == [
        "error: a local model needs torch, transformers, accelerate, safetensors, which are not installed: "
        "pip install 'docvision[local]' (or use a model server: --backend openai)"]
