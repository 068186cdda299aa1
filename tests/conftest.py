"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The read-only shared data folder (``IM2LATEX_DATA_DIR`` or ``../shared/data``); skips if absent."""
    path = Path(os.environ.get("IM2LATEX_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
    if not (path / "im2latex-100k").is_dir():
        pytest.skip(f"shared data not found at {path}")
    return path
