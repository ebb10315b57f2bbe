"""Shared fixtures: the real-data folder (``EXAMWATCH_DATA``) and its manifest."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """``$EXAMWATCH_DATA`` or ``../shared/data`` beside the repo."""
    return Path(os.environ.get("EXAMWATCH_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def real_dir() -> Path:
    root = data_root() / "real"
    if not (root / "manifest.json").is_file():
        msg = f"real recordings not found at {root} (set EXAMWATCH_DATA)"
        if os.environ.get("EXAMWATCH_REQUIRE_DATA") == "1" or os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return root


@pytest.fixture(scope="session")
def manifest(real_dir: Path) -> dict:
    return json.loads((real_dir / "manifest.json").read_text())
