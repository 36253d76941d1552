"""The model registry: aliases, local folders, the Hugging Face cache, and the offline errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from docvision.models import registry as models
from docvision.errors import ModelError
from tests.helpers import assert_one_error_line, json_lines, run_cli

SMALL = models.ALIASES["small"][0]


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """An empty Hugging Face home; nothing cached."""
    home = tmp_path / "hf"
    home.mkdir()
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("DOCVISION_MODEL", raising=False)
    import huggingface_hub.constants as constants

    # huggingface_hub reads HF_HOME at import; point the already-imported module at the new cache.
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    return home


def fake_snapshot(home: Path, model_id: str, files: dict[str, str]) -> Path:
    """Lay out a model in the Hugging Face cache the way `hf download` does (refs/main -> snapshot)."""
    repo = home / "hub" / f"models--{model_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(snapshot.name)
    for name, text in files.items():
        (snapshot / name).write_text(text)
    return snapshot


def test_aliases_name_hub_ids():
    assert models.hub_id("default") == "Qwen/Qwen3-VL-4B-Instruct"
    assert models.hub_id("small") == SMALL
    assert models.hub_id("org/some-model") == "org/some-model"
    assert models.hub_id("not a model") is None


def test_default_reference_honours_env(monkeypatch):
    monkeypatch.setenv("DOCVISION_MODEL", "small")
    assert models.default_reference() == "small"
    monkeypatch.delenv("DOCVISION_MODEL")
    assert models.default_reference() == "default"


def test_local_folder(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen3_vl"}))
    found = models.resolve(str(tmp_path))
    assert found.path == tmp_path.resolve() and found.config["model_type"] == "qwen3_vl"
    assert len(found.revision) == 16


def test_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(ModelError, match="not a model folder: it has no config.json"):
        models.resolve(str(tmp_path))


def test_model_that_is_not_image_text_to_text(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelError, match="not an image-text-to-text model"):
        models.resolve(str(tmp_path))


def test_unknown_model():
    with pytest.raises(ModelError, match="unknown model 'nonsense'"):
        models.resolve("nonsense")
    with pytest.raises(ModelError, match="does not exist"):
        models.resolve("./no/such/folder")


def test_cached_hub_id_resolves_offline(empty_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = fake_snapshot(empty_hub, SMALL, {"config.json": json.dumps({"model_type": "qwen3_vl"}),
                                                "model.safetensors": "x" * 1000})
    found = models.resolve("small")
    assert found.path == snapshot.resolve() and found.model_id == SMALL and found.revision == snapshot.name
    rows = {row["alias"]: row for row in models.listing()}
    assert rows["small"]["cached"] and rows["small"]["size_bytes"] > 1000
    assert not rows["default"]["cached"]


def test_missing_and_offline_is_one_line(empty_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as caught:
        models.resolve("default")
    message = caught.value.message
    assert "not in the Hugging Face cache" in message and "HF_HUB_OFFLINE" in message
    assert "hf download Qwen/Qwen3-VL-4B-Instruct" in message and "--model PATH" in message


def test_missing_and_hub_unreachable_answers_fast(empty_hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    started = time.perf_counter()
    with pytest.raises(ModelError, match="cannot be reached"):
        models.resolve("org/not-cached-model")
    assert time.perf_counter() - started < 60  # a hang guard (the hub check never waits), not a speed check


def test_models_command_offline(tmp_path):
    home = tmp_path / "hf"
    fake_snapshot(home, SMALL, {"config.json": json.dumps({"model_type": "qwen3_vl"}),
                                "model.safetensors": "x" * 5000})
    proc = run_cli("models", "--json", env={"HF_HOME": str(home), "HF_HUB_OFFLINE": "1"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = {row["alias"]: row for row in json_lines(proc.stdout)}
    assert set(models.ALIASES) <= set(rows)
    assert rows["small"]["cached"] and rows["small"]["size_bytes"] >= 5000
    assert not rows["default"]["cached"] and rows["default"]["default"]
    assert rows["small"]["device"] in ("cpu", "cuda") and rows["small"]["quant"] in ("none", "4bit")
    human = run_cli("models", "--device", "cpu", env={"HF_HOME": str(home), "HF_HUB_OFFLINE": "1",
                                                      "COLUMNS": "200"}, timeout=120)
    assert human.returncode == 0 and SMALL in human.stdout and "cpu" in human.stdout


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}],
                         ids=["offline", "unreachable"])
def test_ask_with_uncached_model_is_one_line(tmp_path, env):
    image = tmp_path / "page.png"
    from PIL import Image

    Image.new("RGB", (200, 100), "white").save(image)
    full_env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "", **env}
    started = time.perf_counter()
    proc = run_cli("ask", str(image), "what?", "--model", "default", env=full_env, timeout=60)
    assert time.perf_counter() - started < 60  # a hang guard: the hub check itself never waits
    assert proc.returncode == 1
    assert_one_error_line(proc, "Qwen/Qwen3-VL-4B-Instruct", "not in the Hugging Face cache", "hf download")
    unknown = run_cli("ask", str(image), "what?", "--model", "nonsense", env=full_env, timeout=60)
    assert unknown.returncode == 2  # a usage error before anything runs (CHANGELOG, schema 2)
    assert_one_error_line(unknown, "unknown model 'nonsense'")
