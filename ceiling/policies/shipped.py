"""Checkpoints that ship inside the package, trained with `ceiling train` (see their manifests).

They live in `ceiling/checkpoints/<family>-<task>/<label>/` next to the config, metrics
and learning curve of the run that made them, so `ceiling demo` and strategy work need no
training first. The label is the algorithm, or `compass-<base>` for a COMPASS checkpoint
trained from another base policy than MAPPO (`ceiling.policies.labels.algorithm_label`).
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
    """{(task, label): checkpoint directory} for every shipped checkpoint."""
    import json

    from ceiling.policies.labels import algorithm_label

    found: dict[tuple[str, str], Path] = {}
    root = checkpoints_root()
    if not root.is_dir():
        return found
    for manifest in sorted(root.glob("*/*/manifest.json")):
        data = json.loads(manifest.read_text())
        found[(str(data["task"]), algorithm_label(data))] = manifest.parent
    return found


def shipped_checkpoint(task: str, label: str) -> Path:
    table = shipped_checkpoints()
    if (task, label) not in table:
        labels = [a for t, a in table if t == task]
        if labels:
            raise CeilingError(f"no shipped {label} checkpoint for {task}; shipped for {task}: "
                               + ", ".join(labels))
        tasks = sorted({t for t, _ in table})
        raise CeilingError(f"no checkpoint is shipped for {task}; tasks with shipped "
                           f"checkpoints: {', '.join(tasks) or 'none'}")
    return table[(task, label)]
