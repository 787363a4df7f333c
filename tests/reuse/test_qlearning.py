from __future__ import annotations

import numpy as np
import pytest

from ceiling.reuse.gridworld import generate_layout, greedy_policy, rollout, transition_tables
from ceiling.reuse.objectives import weights_of
from ceiling.reuse.planning import optimal_trajectory, value_iteration
from ceiling.reuse.qlearning import QLearningConfig, certified, return_bound, train

from .conftest import TINY

CONVERGE = TINY._replace(max_chunks=60)  # up to 1.2M steps: enough for any 8×8 composite


def _greedy_return(tables, q, layout, w) -> float:
    return float(rollout(tables, greedy_policy(q), layout.start_state, layout.horizon, w, 8,
                         0).returns.mean())


@pytest.mark.parametrize("seed", [0, 1, 3])
def test_scratch_q_learning_reaches_the_value_iteration_optimum(seed: int) -> None:
    layout = generate_layout(8, seed)
    tables = transition_tables(layout)
    w = weights_of("path+gold+hazard+lever")
    oracle = value_iteration(tables, w, 0.99)
    trained = train(layout, tables, np.stack([w, w]), np.array([0.99, 0.99]),
                    np.array([5, 6]), CONVERGE)
    assert trained.converged.all()
    optimum = _greedy_return(tables, oracle, layout, w)
    assert optimum >= 4  # the route collects gold and pulls the lever: not a trivial optimum
    for b in range(2):
        assert _greedy_return(tables, trained.q[b], layout, w) == pytest.approx(optimum)
        # and the learned values along the greedy route are the optimal ones
        path = optimal_trajectory(tables, trained.q[b], layout.start_state, layout.horizon)
        np.testing.assert_allclose(trained.q[b][path[:, 0], path[:, 1]],
                                   oracle[path[:, 0], path[:, 1]], rtol=1e-4)
        assert (trained.visits[b] > 0).sum() == np.count_nonzero(trained.visits[b])
        assert np.all(trained.q[b][trained.visits[b] == 0] == 0)  # no optimism left behind


def test_gamma_zero_learner_is_the_immediate_reward_on_its_support() -> None:
    layout = generate_layout(8, 2)
    tables = transition_tables(layout)
    w = weights_of("path+gold+hazard")
    trained = train(layout, tables, w[None], np.array([0.0]), np.array([1]), TINY)
    seen = trained.visits[0] > 0
    assert trained.converged[0] and 0 < seen.mean() < 1
    np.testing.assert_allclose(trained.q[0][seen], (tables.reward @ w)[seen], atol=1e-6)


def test_certificate_rejects_untight_or_unvisited_routes() -> None:
    layout = generate_layout(8, 0)
    tables = transition_tables(layout)
    w = weights_of("path+gold")
    oracle = value_iteration(tables, w, 0.99)
    everywhere = np.ones_like(tables.terminal, dtype=np.int32)
    args = (w, 0.99, layout.start_state, layout.horizon)
    assert certified(tables, oracle, everywhere, *args)
    assert not certified(tables, oracle, np.zeros_like(everywhere), *args)
    inflated = oracle.copy()
    path = optimal_trajectory(tables, oracle, layout.start_state, layout.horizon)
    s, a = path[len(path) // 2]
    inflated[s, a] += 0.5  # still the greedy choice, but no longer a fixed point
    assert not certified(tables, inflated, everywhere, *args)


def test_return_bound_is_an_upper_bound_of_the_optimum() -> None:
    layout = generate_layout(8, 0)
    tables = transition_tables(layout)
    for objective in ("path", "gold", "path+gold+hazard+lever", "1,2,-0.5,3"):
        w = weights_of(objective)
        bound = return_bound(tables, w)
        assert value_iteration(tables, w, 1.0 - 1e-9, max_iterations=2_000).max() <= bound + 1e-6
    assert return_bound(tables, weights_of("gold")) == 3.0
    assert QLearningConfig().optimistic  # the default learner is the optimistic one
