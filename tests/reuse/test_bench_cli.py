"""`ceiling reuse bench` reads the grid from the library it is given; `--grid` only checks it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ceiling.cli import main


def test_reuse_bench_takes_the_grid_from_the_library(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ceiling.reuse import bench, library

    seen: dict[str, Any] = {}
    fake = SimpleNamespace(manifest={"grid": 8, "num_seeds": 3}, num_layouts=5)

    def load(path: str, grid: int | None = None, verify: bool = True) -> Any:
        seen["grid"] = grid
        return fake

    def write(result: Any, out: str, command: str, force: bool) -> Path:
        seen["command"] = command
        path = tmp_path / "bench.md"
        path.write_text("table")
        return path

    monkeypatch.setattr(library, "load_library", load)
    monkeypatch.setattr(bench, "run_bench", lambda lib, rollouts, on_progress=None: {})
    monkeypatch.setattr(bench, "write_results", write)
    assert main(["reuse", "bench", "--library", "lib8", "--out", str(tmp_path), "--quiet"]) == 0
    assert seen["grid"] is None  # no default grid to contradict the library's
    assert " --grid 8 " in seen["command"]  # the recorded command names the library's grid
    assert main(["reuse", "bench", "--library", "lib8", "--grid", "16", "--out",
                 str(tmp_path), "--quiet"]) == 0
    assert seen["grid"] == 16  # given, it is checked by load_library
