"""Greedy: the zero-shot baseline, one deterministic rollout taking the arg-max joint action."""

from __future__ import annotations

import jax

from ceiling.policies.rollout import run_episode
from ceiling.search.base import Batch, SearchState, Strategy


class Greedy(Strategy):
    """the zero-shot baseline: one arg-max rollout"""

    name = "greedy"
    budget_free = True

    def batch(self, state: SearchState, key: jax.Array) -> Batch:
        del key  # nothing random
        episode = run_episode(self.task, self.policy, state.params, state.instance_key,
                              state.instance_key, greedy=True)
        return Batch(jax.tree_util.tree_map(lambda x: x[None], episode))

    @property
    def rollouts_per_step(self) -> int:
        return 1

    @property
    def max_steps(self) -> int | None:
        return 1  # deterministic: a second rollout would repeat the first
