"""benchmarks/finetune_budget.py: sampling and fine-tuning configurations on the same instances
and keys under one clock budget, paired against sampling."""

from __future__ import annotations

import pytest

from tests.bench.scripts import load_benchmark

CHECKPOINT = "ceiling/checkpoints/connector-con-5x5x3a/ippo"


@pytest.mark.slow
def test_every_configuration_searches_the_same_instances_against_sampling() -> None:
    script = load_benchmark("finetune_budget")
    configs = {"full": {}, "halves": {"num_updates": 1, "num_minibatches": 2}}
    table = script.run(CHECKPOINT, configs, "train", 2, 0.5, 4, 0)
    rows = {row["strategy"]: row for row in table["rows"]}
    assert list(rows) == ["sampling", "full", "halves"]
    assert rows["halves"]["options"] == configs["halves"]
    assert rows["sampling"]["minus_sampling"] == [0.0, 0.0, 0.0]
    assert rows["sampling"]["learning_batches"] == 0
    for row in rows.values():
        assert row["rollouts"] >= 4  # at least the one batch every search runs
        assert row["better"] + row["worse"] <= 2
