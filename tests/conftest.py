"""Shared pytest fixtures: every test isolated from the machine, tiny random-weight models built once per
session (see tests/tinymodels.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest

# Settings that would let the developer's machine leak into a test (or a test into the machine).
_MACHINE = ("DOCVISION_", "HF_", "XDG_", "OPENAI_API_KEY", "NO_COLOR", "COLUMNS")


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory, monkeypatch):
    """Point docvision's cache and config folders and the Hugging Face home at a fresh folder per test,
    with no DOCVISION_* setting and no hub access: no test reads or writes the real user folders."""
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if name.startswith(_MACHINE):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DOCVISION_CACHE_DIR", str(home / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "xdg-cache"))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # One render thread unless a test is about render workers (tests/run/test_workers.py sets --workers, and
    # checks the default, one per core): a worker per core would start a browser and a LibreOffice per core
    # in every multi-source test on a machine of two cores.
    monkeypatch.setenv("DOCVISION_WORKERS", "1")
    return home


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Callable[[str], Path]:
    """A callable ``family -> folder`` building each tiny model family once per session.

    Families: "qwen2_5_vl", "qwen3_vl", "internvl", "idefics3". The folders are read-only for tests: a
    test that needs a changed model copies one.
    """
    from tests.tinymodels import build_tiny_model

    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            built[family] = build_tiny_model(family, tmp_path_factory.mktemp(f"tiny-{family}"))
        return built[family]

    return get
