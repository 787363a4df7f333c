"""Every registered strategy on every task family, on tiny budgets: the Strategy contract.

A new strategy (added to `ceiling.search.STRATEGIES`) or a new family (a task below) gets these
for free: the returned solution replays to its reported return, a rollout budget is met exactly
and is deterministic given the search key, and searching instances vmapped gives what searching
each alone gives.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from ceiling.policies.networks import NetworkConfig, Policy, condition
from ceiling.search import (
    STRATEGIES,
    Budget,
    instance_key,
    make_strategy,
    search_key,
    solve,
    solve_instances,
)
from ceiling.tasks import make

# One small task per family. Connector compiles fastest, so its cases run in the quick set
# (`pytest -m "not slow"`); the other families' are marked slow.
FAMILY_TASKS = {
    "connector": "connector:con-5x5x3a",
    "rware": "rware:tiny-2ag",
    "smax": "smax:3m",
}
WIDTH = 4
BATCHES = 2


def _policy(task_name: str, latent: bool) -> tuple[Policy, object]:
    task = make(task_name)
    policy = Policy(task.spec, NetworkConfig("mappo", (16,), "relu"))
    params = policy.init(jax.random.PRNGKey(0))
    if latent:
        policy, params = condition(policy, params, 4, jax.random.PRNGKey(1))
    return policy, params


CASES = [
    pytest.param(name, family, id=f"{name}-{family}",
                 marks=[] if family == "connector" else [pytest.mark.slow])
    for family in FAMILY_TASKS for name in STRATEGIES
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "family"), CASES)
def test_strategy_contract(name: str, family: str) -> None:
    task_name = FAMILY_TASKS[family]
    cls = STRATEGIES[name]
    policy, params = _policy(task_name, cls.needs_latent)
    strategy = make_strategy(name, make(task_name), policy, max(WIDTH, cls.min_width))
    budget = Budget(rollouts=BATCHES * strategy.rollouts_per_step)
    instance, key = instance_key(task_name, 1), search_key(0, task_name, 1)

    first = solve(strategy, params, instance, budget, key)
    again = solve(strategy, params, instance, budget, key)
    # Replay-verified: the driver replays the actions from the instance.
    assert first.solution.verified == pytest.approx(first.solution.total_return, abs=1e-4)
    # The rollout budget is met exactly (a budget-free strategy stops after its one attempt).
    expected_batches = 1 if cls.budget_free else BATCHES
    assert first.batches == expected_batches
    assert first.rollouts == expected_batches * strategy.rollouts_per_step
    assert [p.rollouts for p in first.trace] == [
        (i + 1) * strategy.rollouts_per_step for i in range(expected_batches)]
    # Deterministic given the key, and the anytime best never gets worse.
    np.testing.assert_array_equal(first.solution.actions, again.solution.actions)
    assert first.solution.total_return == again.solution.total_return
    best = [p.best_return for p in first.trace]
    assert best == sorted(best) and best[-1] == first.solution.total_return

    # Vmapped over instances = one instance at a time, key for key.
    instances = jax.numpy.stack([instance_key(task_name, i) for i in (1, 2)])
    together = solve_instances(strategy, params, instances, budget, key)
    keys = jax.random.split(key, 2)
    for index, solution in enumerate(together):
        alone = solve(strategy, params, instances[index], budget, keys[index]).solution
        assert solution.total_return == pytest.approx(alone.total_return, abs=1e-4)
        assert solution.verified == pytest.approx(solution.total_return, abs=1e-4)
