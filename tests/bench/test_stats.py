"""The estimators against rliable's definitions (`rliable.metrics`) on fixed data."""

from __future__ import annotations

import numpy as np
import pytest

from ceiling.bench import stats

metrics = pytest.importorskip("rliable.metrics")

RNG = np.random.default_rng(7)
X = RNG.normal(0.6, 0.2, size=(10, 4))  # [runs, tasks], rliable's layout
Y = RNG.normal(0.5, 0.2, size=(10, 4))
Y[:, 2] = X[:, 2]  # one task where both are identical (rliable's tie rule)


def _tasks(matrix: np.ndarray) -> list[np.ndarray]:
    return [matrix[:, m] for m in range(matrix.shape[1])]


def test_iqm_matches_rliable() -> None:
    assert stats.iqm(_tasks(X)) == pytest.approx(metrics.aggregate_iqm(X), abs=1e-12)
    assert stats.iqm(_tasks(Y)) == pytest.approx(metrics.aggregate_iqm(Y), abs=1e-12)


def test_probability_of_improvement_matches_rliable() -> None:
    ours = stats.probability_of_improvement(_tasks(X), _tasks(Y))
    assert ours == pytest.approx(metrics.probability_of_improvement(X, Y), abs=1e-12)
    assert stats.probability_of_improvement(_tasks(Y), _tasks(X)) == pytest.approx(1 - ours)


def test_stratified_bootstrap_resamples_within_tasks() -> None:
    low, high = stats.stratified_bootstrap_ci(_tasks(X), stats.iqm, reps=500)
    point = stats.iqm(_tasks(X))
    assert low < point < high and high - low < 0.3
    # Stratified: every resample keeps every task's runs separate, so scores that differ
    # only across tasks (constant within each) have a zero-width interval - an unstratified
    # bootstrap over pooled scores would not.
    constant = [np.full(10, float(m)) for m in range(4)]
    assert stats.stratified_bootstrap_ci(constant, stats.iqm, reps=200) == (1.5, 1.5)
    # Same seed, same interval; a 99 % interval contains the 95 % one.
    assert stats.stratified_bootstrap_ci(_tasks(X), stats.iqm, reps=500) == (low, high)
    wide = stats.stratified_bootstrap_ci(_tasks(X), stats.iqm, reps=500, level=0.99)
    assert wide[0] <= low and wide[1] >= high


def _rows() -> list[dict]:
    rows = []
    for task, scale in (("a", 1.0), ("b", 10.0)):
        for instance in range(4):
            for algorithm, greedy in (("ippo", 1.0), ("mappo", 2.0)):
                rows.append({"task": task, "instance": instance, "seed": 0,
                             "strategy": "greedy", "options": "{}", "algorithm": algorithm,
                             "seconds": None, "rollouts": 1, "width": 1,
                             "total_return": scale * greedy})
            rows.append({"task": task, "instance": instance, "seed": 0, "strategy": "sampling",
                         "options": "{}", "algorithm": "mappo", "seconds": 3.0,
                         "rollouts": None, "width": 64, "total_return": scale * (3.0 + instance)})
    return rows


def test_gain_is_over_the_best_zero_shot_base_policy() -> None:
    gains = stats.gains_over_zero_shot(_rows(), reps=100)
    assert [g["task"] for g in gains] == ["a", "b"]
    for g in gains:
        assert g["zero_shot_algorithm"] == "mappo"
        assert g["gain_percent"] == pytest.approx(100 * (4.5 - 2.0) / 2.0)
        assert g["ci95"][0] <= g["gain_percent"] <= g["ci95"][1]
        assert g["win_rate"] is None  # the rows have no win flag
    (summary,) = stats.gain_summary(gains)
    assert summary["tasks"] == 2 and summary["mean_gain_percent"] == pytest.approx(125.0)
    # The mean over tasks averages two independent resamplings: its CI holds the mean and is
    # narrower than either task's own.
    low, high = summary["ci95"]
    assert low <= 125.0 <= high
    assert all(high - low < g["ci95"][1] - g["ci95"][0] for g in gains)


def test_normalisation_uses_random_min_and_best_stored_max() -> None:
    rows = _rows()
    baselines = {"a": {i: 0.0 for i in range(4)}, "b": {i: 5.0 for i in range(4)}}
    bounds = stats.normalisation_bounds(rows, baselines)
    assert bounds == {"a": (0.0, 6.0), "b": (5.0, 60.0)}
    table = {r["config"].strategy + r["config"].algorithm: r
             for r in stats.aggregate(rows, baselines, reps=100)}
    sampling = table["samplingmappo"]
    assert sampling["probability_of_improvement"] == 1.0
    assert table["greedymappo"]["probability_of_improvement"] is None
    assert sampling["ci95"][0] <= sampling["iqm"] <= sampling["ci95"][1]


def test_the_zero_shot_base_is_never_a_latent_checkpoint() -> None:
    """Zero-shot rows are those of a `budget_free` strategy; a checkpoint that a `needs_latent`
    strategy searched with is latent-conditioned, so not a base policy, whatever its return."""
    rows = _rows()
    for instance in range(4):
        rows.append({"task": "a", "instance": instance, "seed": 0, "strategy": "greedy",
                     "options": "{}", "algorithm": "compass", "checkpoint_sha256": "c",
                     "seconds": None, "rollouts": 1, "width": 1, "total_return": 100.0})
        rows.append({"task": "a", "instance": instance, "seed": 0, "strategy": "compass",
                     "options": "{}", "algorithm": "compass", "checkpoint_sha256": "c",
                     "seconds": 3.0, "rollouts": None, "width": 16, "total_return": 5.0})
    assert stats.zero_shot(rows)["a"] == ("mappo", 2.0)
    assert stats.is_zero_shot("greedy") and not stats.is_zero_shot("sampling")
    assert not stats.is_zero_shot("retired-strategy")  # rows from another version
    labels = [row["config"].label for row in stats.aggregate(rows, {}, reps=50)]
    assert labels[0].startswith("greedy zero-shot (")  # zero-shot configs sort first


def test_paired_resamples_keep_pairs_and_nan_replicates_are_left_out() -> None:
    from ceiling.bootstrap import paired_replicates, percentile_interval

    x = RNG.normal(size=12)
    # Paired: both columns are indexed by one draw, so a constant difference never varies.
    diffs = paired_replicates(lambda a, b: (a - b).mean(axis=1), [x + 1.0, x],
                              np.random.default_rng(0), reps=300)
    assert diffs.shape == (300,) and np.allclose(diffs, 1.0)
    assert percentile_interval(np.array([np.nan, 1.0, 2.0, 3.0]), level=1.0) == (1.0, 3.0)
    with pytest.raises(ValueError, match="one length"):
        paired_replicates(lambda a, b: a.mean(axis=1), [x, x[:5]], np.random.default_rng(0))


def test_scaling_rows_compare_every_budget_on_the_same_instances() -> None:
    rows = _rows()  # greedy and sampling at 3 s on instances 0-3 of tasks a and b
    extra = {"strategy": "sampling", "options": "{}", "algorithm": "mappo", "rollouts": None,
             "width": 64, "seed": 0, "total_return": 9.0}
    # Task a: a 30 s headline cell on instances 0-3 and a grid point at 10 s on 0-1 only; a
    # configuration measured at one budget only (SGBS at 30 s). Task b: one budget only.
    rows += [{**extra, "task": "a", "instance": i, "seconds": 30.0,
              "total_return": 9.0 if i < 2 else 12.0} for i in range(4)]
    rows += [{**extra, "task": "a", "instance": i, "seconds": 10.0} for i in range(2)]
    rows += [{**extra, "task": "a", "instance": i, "seconds": 30.0, "strategy": "sgbs"}
             for i in range(4)]
    kept = stats.scaling_rows(rows)
    assert {r["task"] for r in kept} == {"a"}  # b has no configuration at two budgets
    assert {r["instance"] for r in kept} == {0, 1}  # every point of a curve: instances 0-1
    assert {(r["strategy"], r["seconds"]) for r in kept} == {
        ("greedy", None), ("sampling", 3.0), ("sampling", 10.0), ("sampling", 30.0)}
    assert sum(r["strategy"] == "greedy" for r in kept) == 4  # both bases, both instances
    # Scored on the whole store's bounds when given (task a's best, 12, is on an instance the
    # cut leaves out), so the figures share the report's scale.
    bounds = stats.normalisation_bounds(rows, {})
    table = stats.aggregate(kept, {}, reps=50, bounds=bounds)
    best = max(row["iqm"] for row in table)
    assert best < 1.0 and stats.aggregate(kept, {}, reps=50)[-1]["iqm"] == pytest.approx(1.0)
