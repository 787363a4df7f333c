"""Checkpoints that ship inside the package, trained with `ceiling train` (see their manifests).

They live in `ceiling/checkpoints/<family>-<task>/<algorithm>/` next to the config, metrics
and learning curve of the run that made them, so `ceiling demo` and strategy work need no
training first.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ceiling.errors import CeilingError


def checkpoints_root() -> Path:
    return Path(str(resources.files("ceiling").joinpath("checkpoints")))


def shipped_dir_name(task: str) -> str:
    return task.replace(":", "-")


def shipped_checkpoints() -> dict[tuple[str, str], Path]:
    """{(task, algorithm): checkpoint directory} for every shipped checkpoint."""
    import json

    found: dict[tuple[str, str], Path] = {}
    root = checkpoints_root()
    if not root.is_dir():
        return found
    for manifest in sorted(root.glob("*/*/manifest.json")):
        data = json.loads(manifest.read_text())
        found[(str(data["task"]), str(data["algorithm"]))] = manifest.parent
    return found


def shipped_checkpoint(task: str, algorithm: str) -> Path:
    table = shipped_checkpoints()
    if (task, algorithm) not in table:
        valid = ", ".join(f"{t} ({a})" for t, a in table) or "none"
        raise CeilingError(f"no shipped {algorithm} checkpoint for {task}; shipped: {valid}")
    return table[(task, algorithm)]
