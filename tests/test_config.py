"""Settings in one place: flags over DOCVISION_* over the config file over defaults, and `docvision config`."""

from __future__ import annotations

import json

import pytest

from docvision import config
from docvision.errors import UsageError
from tests.helpers import assert_one_error_line, run_cli


def write(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_flags_win_over_env_over_file_over_defaults(tmp_path):
    path = write(tmp_path, 'backend = "openai"\nhd = 9\nconcurrency = 2\nbase_url = "http://gpu:8000/v1"\n')
    environ = {"DOCVISION_HD": "16", "DOCVISION_CONCURRENCY": "8"}
    settings = config.resolve({"concurrency": 4}, config=str(path), environ=environ)
    assert (settings.concurrency, settings.origins["concurrency"]) == (4, "flag")
    assert (settings.hd, settings.origins["hd"], settings.sources["hd"]) == (16, "env", "DOCVISION_HD")
    assert (settings.backend, settings.origins["backend"]) == ("openai", "file")
    assert settings.base_url == "http://gpu:8000/v1"
    assert (settings.quant, settings.origins["quant"]) == ("auto", "default")
    assert settings.config_file == str(path)


def test_file_from_env_and_docvision_table_and_api_key_sources(tmp_path):
    path = write(tmp_path, '[docvision]\nmodel = "Qwen/Qwen3-VL-4B-Instruct"\ntimeout = 5\n')
    settings = config.resolve({}, environ={"DOCVISION_CONFIG": str(path), "OPENAI_API_KEY": "sk-1"})
    assert settings.model == "Qwen/Qwen3-VL-4B-Instruct" and settings.timeout == 5.0
    assert (settings.api_key, settings.sources["api_key"]) == ("sk-1", "OPENAI_API_KEY")
    both = config.resolve({}, environ={"DOCVISION_API_KEY": "sk-2", "OPENAI_API_KEY": "sk-1"})
    assert both.api_key == "sk-2"  # DOCVISION_API_KEY first
    assert next(r for r in both.rows() if r["name"] == "api_key")["value"] == "(set)"  # never printed


def test_no_file_means_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # platformdirs' user config folder, empty
    settings = config.resolve({}, environ={})
    assert settings.config_file is None and settings.backend == "transformers" and settings.concurrency == 1


@pytest.mark.parametrize("text, fragment", [
    ("hd = \n", "not valid TOML"),
    ('colour = "red"\n', "unknown setting colour"),
    ('backend = "magic"\n', "backend must be one of transformers, openai"),
    ("concurrency = 0\n", "concurrency must be at least 1"),
    ('hd = "many"\n', "hd must be a whole number"),
    ("timeout = nan\n", "timeout must be a number"),
    ("request_timeout = inf\n", "request_timeout must be a number"),
    ("tile = 100000\n", "tile must be at most 2048"),
    ("hd = 100000\n", "hd must be at most 400"),
])
def test_bad_files_are_one_clear_usage_error(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(UsageError, match=fragment) as caught:
        config.resolve({}, config=str(path), environ={})
    assert str(path) in str(caught.value)


def test_bad_env_and_missing_file(tmp_path):
    with pytest.raises(UsageError, match="DOCVISION_CONCURRENCY: concurrency must be a whole number"):
        config.resolve({}, environ={"DOCVISION_CONCURRENCY": "lots"})
    with pytest.raises(UsageError, match="does not exist"):
        config.resolve({}, config=str(tmp_path / "nope.toml"), environ={})


def test_config_command_shows_each_value_and_where_it_came_from(tmp_path):
    path = write(tmp_path, 'backend = "openai"\nretries = 2\n')
    env = {"DOCVISION_CONFIG": str(path), "DOCVISION_CONCURRENCY": "3", "DOCVISION_API_KEY": "sk-secret"}
    proc = run_cli("config", "--json", "--hd", "9", env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    rows = {row["name"]: row for row in data["settings"]}
    assert data["config_file"] == str(path)
    assert (rows["hd"]["value"], rows["hd"]["origin"]) == (9, "flag")
    assert (rows["concurrency"]["value"], rows["concurrency"]["origin"]) == (3, "env")
    assert (rows["backend"]["value"], rows["backend"]["origin"]) == ("openai", "file")
    assert (rows["retries"]["value"], rows["retries"]["from"]) == (2, str(path))
    assert rows["device"]["origin"] == "default"
    assert "sk-secret" not in proc.stdout
    human = run_cli("config", env=env)
    assert human.returncode == 0 and "sk-secret" not in human.stdout
    assert "env (DOCVISION_CONCURRENCY)" in human.stdout and "flag" not in human.stdout
    bad = run_cli("config", "--config", str(tmp_path / "missing.toml"))
    assert bad.returncode == 2
    assert_one_error_line(bad, "missing.toml does not exist")


def test_config_table_names_the_file_on_one_line_and_what_an_unset_model_means(tmp_path):
    home = tmp_path / "a-rather-long-folder-name-for-the-configuration-home" / "nested"
    proc = run_cli("config", env={"XDG_CONFIG_HOME": str(home), "DOCVISION_CONFIG": "", "DOCVISION_MODEL": "",
                                  "COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("config file: none (looked for ") and first.endswith("config.toml)")
    assert "default (Qwen/Qwen3-VL-4B-Instruct)" in proc.stdout


@pytest.mark.parametrize("env", [{"DOCVISION_TIMEOUT": "nan"}, {"DOCVISION_HD": "100000"}, {"DOCVISION_TILE": "100000"}])
def test_every_origin_has_the_same_bounds_and_a_bad_value_is_a_usage_line(tmp_path, env):
    """nan, inf and huge values from the environment are one usage line (exit 2), as from a flag."""
    (tmp_path / "a.png").write_bytes(b"")
    proc = run_cli("render", str(tmp_path / "a.png"), env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and next(iter(env)) in proc.stderr
    flag = "--" + next(iter(env))[len("DOCVISION_"):].lower()
    proc = run_cli("render", str(tmp_path / "a.png"), flag, env[next(iter(env))])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
