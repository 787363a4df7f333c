"""Every registered strategy on every task family, on tiny budgets: the Strategy contract.

A new strategy (added to `ceiling.search.STRATEGIES`) or a new family (a task below) gets these
for free: the returned solution replays to its reported return, a rollout budget is met exactly
and is deterministic given the search key, and searching instances vmapped gives what searching
each alone gives (every strategy on Connector; sampling on the other families).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from ceiling.policies.networks import NetworkConfig, Policy, condition
from ceiling.policies.sable import sable_config
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
# A small policy of each kind: factorised (MLP) and autoregressive (SABLE, random init).
NETWORKS = {"mlp": NetworkConfig("mappo", (16,), "relu"), "sable": sable_config(embed_dim=16)}


def _policy(task_name: str, latent: bool, network: str = "mlp") -> tuple[Policy, object]:
    task = make(task_name)
    policy = Policy(task.spec, NETWORKS[network])
    params = jax.jit(policy.init)(jax.random.PRNGKey(0))
    if latent:
        policy, params = condition(policy, params, 4, jax.random.PRNGKey(1))
    return policy, params


# The MLP runs every strategy on every family. SABLE's cases are about the policy, not the
# family, so it runs every strategy on Connector and, on the other families, SGBS only (the
# strategy that leans on the policy most: expansion, deduplication, log-probabilities); each
# SABLE case costs 30-60 s of compilation on two cores.
CASES = [
    pytest.param(name, family, network,
                 id=f"{name}-{family}" + ("" if network == "mlp" else f"-{network}"),
                 marks=[] if family == "connector" else [pytest.mark.slow])
    for network in NETWORKS for family in FAMILY_TASKS for name in STRATEGIES
    if network == "mlp" or family == "connector" or name == "sgbs"
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "family", "network"), CASES)
def test_strategy_contract(name: str, family: str, network: str) -> None:
    task_name = FAMILY_TASKS[family]
    cls = STRATEGIES[name]
    policy, params = _policy(task_name, cls.needs_latent, network)
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

    # Vmapped over instances = one instance at a time, key for key. The driver vmaps the same
    # way whatever the family and the network, so the check runs for every strategy with the
    # MLP on Connector (the fastest to compile) and for sampling in every other case;
    # compiling each strategy vmapped on RWARE and SMAX, and with SABLE, too took ~40 % of
    # these cases' time and is left out.
    if name != "sampling" and (family, network) != ("connector", "mlp"):
        return
    instances = jax.numpy.stack([instance_key(task_name, i) for i in (1, 2)])
    together = solve_instances(strategy, params, instances, budget, key)
    keys = jax.random.split(key, 2)
    for index, solution in enumerate(together):
        alone = solve(strategy, params, instances[index], budget, keys[index]).solution
        assert solution.total_return == pytest.approx(alone.total_return, abs=1e-4)
        assert solution.verified == pytest.approx(solution.total_return, abs=1e-4)
