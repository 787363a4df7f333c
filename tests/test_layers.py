"""The package layers only point down (the import-linter contracts in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_layers_only_point_down() -> None:
    run = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
         "sys.exit(lint_imports_command())"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 kept, 0 broken" in run.stdout


def test_search_and_training_know_nothing_of_each_other() -> None:
    for package, other in (("search", "training"), ("training", "search")):
        for path in (ROOT / "ceiling" / package).glob("*.py"):
            assert f"ceiling.{other}" not in path.read_text(), f"{path} mentions ceiling.{other}"
