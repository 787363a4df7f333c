"""A tiny library shared by the reuse tests: one 8×8 layout, two seeds, both regimes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceiling.reuse.library import Library, build_library, load_library
from ceiling.reuse.qlearning import QLearningConfig

TINY = QLearningConfig(steps_per_chunk=20_000, min_chunks=3, max_chunks=15)


@pytest.fixture(scope="session")
def tiny_library_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reuse") / "library"
    build_library(path, grid=8, num_layouts=1, num_seeds=2, config=TINY)
    return path


@pytest.fixture()
def tiny_library(tiny_library_path: Path) -> Library:
    return load_library(tiny_library_path)
