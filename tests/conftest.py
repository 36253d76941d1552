"""Shared pytest fixtures: tiny random-weight models built once per session (see tests/tinymodels.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Callable[[str], Path]:
    """A callable ``family -> folder`` building each tiny model family once per session.

    Families: "qwen2_5_vl", "qwen3_vl", "internvl", "idefics3".
    """
    from tests.tinymodels import build_tiny_model

    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            built[family] = build_tiny_model(family, tmp_path_factory.mktemp(f"tiny-{family}"))
        return built[family]

    return get
