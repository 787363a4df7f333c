"""The strategy comparison behind `ceiling demo`: rows, gains over greedy, anytime curves."""

from __future__ import annotations

import numpy as np
import pytest

from ceiling.policies.checkpoint import load_checkpoint, save_checkpoint
from ceiling.search import Budget
from ceiling.search.compare import anytime_curve, compare, plot_anytime, summarise_comparison


@pytest.mark.slow
def test_compare_greedy_and_sampling(tmp_path, small_policy) -> None:
    policy, params = small_policy
    checkpoint = load_checkpoint(save_checkpoint(tmp_path / "ckpt", policy, params))
    seen = []
    results = compare(checkpoint, ["greedy", "sampling"], 2, Budget(rollouts=16), width=8,
                      on_result=lambda name, index, result: seen.append((name, index)))
    assert seen == [("greedy", 0), ("greedy", 1), ("sampling", 0), ("sampling", 1)]
    rows = {row["strategy"]: row for row in summarise_comparison(results)}
    greedy = np.mean([r.solution.verified for r in results["greedy"]])
    sampled = np.mean([r.solution.verified for r in results["sampling"]])
    assert rows["greedy"]["gain_over_greedy_percent"] == pytest.approx(0.0)
    assert rows["sampling"]["mean_return"] == pytest.approx(sampled)
    assert rows["sampling"]["gain_over_greedy_percent"] == pytest.approx(
        100 * (sampled - greedy) / abs(greedy))
    assert rows["sampling"]["mean_rollouts"] == 16 and rows["greedy"]["mean_rollouts"] == 1
    plot_anytime(results, "test", tmp_path / "plot" / "anytime.png")
    assert (tmp_path / "plot" / "anytime.png").stat().st_size > 1000


def test_anytime_curve_is_a_step_function_of_the_trace() -> None:
    from ceiling.search.driver import TracePoint

    class Fake:
        def __init__(self, points):
            self.trace = [TracePoint(s, r, b) for s, r, b in points]

    curve = anytime_curve([Fake([(1.0, 8, 2.0), (2.0, 16, 3.0)]),
                           Fake([(0.5, 8, 1.0), (2.5, 16, 5.0)])],
                          np.array([0.0, 0.6, 1.0, 2.0, 3.0]))
    assert np.isnan(curve[0]) and np.isnan(curve[1])  # the first instance has no point yet
    np.testing.assert_allclose(curve[2:], [1.5, 2.0, 4.0])


@pytest.mark.slow
def test_compare_runs_compass_strategies_with_their_own_checkpoint(tmp_path, small_policy) -> None:
    import jax

    from ceiling.policies.networks import condition

    policy, params = small_policy
    base = load_checkpoint(save_checkpoint(tmp_path / "base", policy, params))
    conditioned, conditioned_params = condition(policy, params, 4, jax.random.PRNGKey(0))
    compass = load_checkpoint(save_checkpoint(tmp_path / "compass", conditioned,
                                              conditioned_params))
    results = compare(base, ["greedy", "compass"], 1, Budget(rollouts=16), width=8,
                      other_checkpoints={"compass": compass})
    # A freshly conditioned policy acts like its base for every latent: its arg-max rollouts
    # all equal the base's greedy one, so COMPASS finds exactly the greedy return.
    assert results["compass"][0].solution.verified == pytest.approx(
        results["greedy"][0].solution.verified)
    assert results["compass"][0].rollouts == 16
