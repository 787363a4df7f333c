"""The driver, budgets, greedy and sampling, and solution verification."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ceiling.errors import CeilingError
from ceiling.policies.rollout import evaluate_batch
from ceiling.search import Budget, make_strategy, solve, verified_solution
from ceiling.tasks import instances

KEYS = instances("connector:con-5x5x3a", "test", 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "at least one limit"),
        ({"seconds": -1.0}, "seconds must be a positive number"),
        ({"rollouts": 0}, "rollouts must be an integer >= 1"),
    ],
)
def test_bad_budgets(kwargs, message) -> None:
    with pytest.raises(CeilingError, match=message):
        Budget(**kwargs)


@pytest.mark.slow
def test_an_inexact_rollout_budget_is_refused_before_anything_runs(
    connector_task, small_policy
) -> None:
    policy, params = small_policy
    strategy = make_strategy("sampling", connector_task, policy, 64)
    with pytest.raises(CeilingError, match=r"use a multiple of 64, e\.g\. 64 or 128"):
        solve(strategy, params, KEYS[0], Budget(rollouts=100), jax.random.PRNGKey(0))
    # SGBS at width 10 runs beam_width 2 x (expansion 5 - 1) = 8 rollouts per batch, and a
    # rollout budget is counted in those reported rollouts.
    sgbs = make_strategy("sgbs", connector_task, policy, 10)
    with pytest.raises(CeilingError, match="runs 8 rollouts per batch"):
        sgbs.batch_limit(Budget(rollouts=100))
    result = solve(sgbs, params, KEYS[0], Budget(rollouts=96), jax.random.PRNGKey(0))
    assert result.rollouts == 96 and result.batches == 12


def test_bad_strategies(connector_task, small_policy) -> None:
    policy, _ = small_policy
    with pytest.raises(CeilingError, match="valid strategies: greedy, sampling"):
        make_strategy("beam", connector_task, policy, 8)
    with pytest.raises(CeilingError, match="valid options: temperature"):
        make_strategy("sampling", connector_task, policy, 8, temp=2.0)
    with pytest.raises(CeilingError, match="temperature must be a finite number > 0"):
        make_strategy("sampling", connector_task, policy, 8, temperature=0.0)
    with pytest.raises(CeilingError, match="temperature must be a finite number > 0, got .hot."):
        make_strategy("sampling", connector_task, policy, 8, temperature="hot")
    with pytest.raises(CeilingError, match="integer >= 1, got 0"):
        make_strategy("sampling", connector_task, policy, 0)


@pytest.mark.slow
def test_greedy_is_the_zero_shot_rollout(connector_task, small_policy) -> None:
    policy, params = small_policy
    strategy = make_strategy("greedy", connector_task, policy, 8)
    result = solve(strategy, params, KEYS[0], Budget(seconds=30.0),
                   jax.random.PRNGKey(0))
    zero_shot = evaluate_batch(connector_task, policy, params, KEYS[:1], jax.random.PRNGKey(0))
    assert result.batches == 1 and result.rollouts == 1
    assert result.solution.total_return == pytest.approx(float(zero_shot.total_return[0]))
    assert result.solution.verified == pytest.approx(result.solution.total_return, abs=1e-6)
    np.testing.assert_array_equal(result.solution.actions, np.asarray(zero_shot.actions[0]))


@pytest.mark.slow
def test_cold_sampling_collapses_onto_the_greedy_rollout(connector_task, small_policy) -> None:
    # Exactness, determinism and replay of every strategy: tests/search/test_conformance.py.
    policy, params = small_policy
    greedy = solve(make_strategy("greedy", connector_task, policy, 8), params, KEYS[1],
                   Budget(rollouts=8), jax.random.PRNGKey(3))
    cold = solve(make_strategy("sampling", connector_task, policy, 8, temperature=1e-7),
                 params, KEYS[1], Budget(rollouts=8), jax.random.PRNGKey(3))
    np.testing.assert_array_equal(cold.solution.actions, greedy.solution.actions)


@pytest.mark.slow
def test_seconds_budget_overruns_by_at_most_one_batch(connector_task, small_policy) -> None:
    policy, params = small_policy
    strategy = make_strategy("sampling", connector_task, policy, 4)
    ticks = iter(range(1000))
    # A fake clock that advances one "second" per reading: the trace, not timing, is asserted.
    result = solve(strategy, params, KEYS[0], Budget(seconds=5.0),
                   jax.random.PRNGKey(0), clock=lambda: float(next(ticks)))
    seconds = [p.seconds for p in result.trace]
    assert all(s < 5.0 for s in seconds[:-1]) and seconds[-1] >= 5.0
    assert result.batches == len(seconds) == 5


def test_a_wrong_reported_return_fails_verification(connector_task, small_policy) -> None:
    policy, params = small_policy
    episode = evaluate_batch(connector_task, policy, params, KEYS[:1], jax.random.PRNGKey(0))
    actions = episode.actions[0]
    reported = float(episode.total_return[0])
    assert verified_solution(connector_task, KEYS[0], actions, reported, False).verified == \
        pytest.approx(reported, abs=1e-6)
    with pytest.raises(CeilingError, match="failed verification"):
        verified_solution(connector_task, KEYS[0], actions, reported + 1.0, False)
    with pytest.raises(CeilingError, match="failed verification"):
        verified_solution(connector_task, KEYS[1], jnp.asarray(actions), reported + 0.5, False)



def test_a_solution_is_replayed_as_the_program_that_found_it_was_compiled(
    connector_task, small_policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search's solution is replayed in a batch of the search's width, compiled with the
    default XLA options, as the search's own rollouts; a budget-free strategy's alone, with
    the run-once options, as its single episode. Compiled differently, the same actions can
    end differently where the dynamics amplify last-bit float differences: SGBS from the
    shipped IPPO found a won battle on smax:smacv2_5_units test instance 25 (return 2.0) that
    the run-once replay lost (0.98), and one on instance 4 that a default-compiled replay lost
    (0.944) alone or in 2 or 8 lanes and won in 64, the search's width."""
    from ceiling.search import solution

    real, asked = solution._signature, []

    def recording(task, instance_key, actions_shape, run_once, width):
        asked.append((run_once, width))
        return real(task, instance_key, actions_shape, run_once, width)

    monkeypatch.setattr(solution, "_signature", recording)
    policy, params = small_policy
    for name, run_once in (("greedy", True), ("sampling", False)):
        asked.clear()
        strategy = make_strategy(name, connector_task, policy, 4)
        result = solve(strategy, params, KEYS[0], Budget(rollouts=4), jax.random.PRNGKey(0))
        assert asked and set(asked) == {(run_once, 4)}
        assert result.solution.verified == pytest.approx(result.solution.total_return, abs=1e-4)


def test_a_replay_in_lanes_plays_the_actions_in_every_lane(connector_task, small_policy) -> None:
    from ceiling.search.solution import replay, replay_batch

    policy, params = small_policy
    episodes = evaluate_batch(connector_task, policy, params, KEYS, jax.random.PRNGKey(1),
                              greedy=False)
    for i in range(len(KEYS)):
        alone = replay(connector_task, KEYS[i], episodes.actions[i])
        lanes = replay_batch(connector_task, KEYS[i], episodes.actions[i], 8)
        assert float(lanes[0]) == float(alone[0]) == pytest.approx(
            float(episodes.total_return[i]), abs=1e-4)
