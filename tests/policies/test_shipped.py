"""The checkpoints shipped in the package load, verify, and beat a random policy by far."""

from __future__ import annotations

import pytest

from ceiling.cli import evaluate_checkpoint
from ceiling.policies.checkpoint import load_checkpoint
from ceiling.policies.shipped import shipped_checkpoint, shipped_checkpoints

TASKS = ("rware:tiny-2ag-hard", "connector:con-5x5x3a", "smax:3m")
# Margin over the uniform random policy on the first 8 test instances, in return units.
MARGIN = {"rware:tiny-2ag-hard": 3.0, "connector:con-5x5x3a": 1.0, "smax:3m": 0.5}


def test_every_required_checkpoint_is_shipped() -> None:
    shipped = shipped_checkpoints()
    for task in TASKS:
        for algorithm in ("ippo", "mappo"):
            assert (task, algorithm) in shipped
            directory = shipped[(task, algorithm)]
            for name in ("config.yaml", "learning_curve.png", "metrics.jsonl",
                         "convergence.json"):
                assert (directory / name).is_file(), directory / name


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("algorithm", ["ippo", "mappo"])
def test_shipped_checkpoint_beats_random(task: str, algorithm: str) -> None:
    path = shipped_checkpoint(task, algorithm)
    checkpoint = load_checkpoint(path, task=task)
    assert checkpoint.manifest["training"]["convergence"]["total_steps"] > 1_000_000
    trained = evaluate_checkpoint(path, task, 8, stochastic=False, seed=0)
    random = evaluate_checkpoint(path, task, 8, stochastic=True, seed=0, uniform_random=True)
    assert trained["mean_return"] > random["mean_return"] + MARGIN[task], (trained, random)
    if trained["win_rate"] is not None:
        assert trained["win_rate"] >= 0.5 > random["win_rate"]
