"""Greedy: the zero-shot baseline, one deterministic rollout taking the arg-max joint action."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from ceiling.policies.networks import Params, Policy
from ceiling.search.base import Incumbent, Strategy, batch_episodes, empty_incumbent, improve
from ceiling.tasks.base import Task


class GreedyState(NamedTuple):
    params: Params
    instance_key: jax.Array
    incumbent: Incumbent


class Greedy(Strategy):
    name = "greedy"

    def __init__(self, task: Task, policy: Policy, width: int = 1) -> None:
        self.task, self.policy, self.width = task, policy, width

    def init(self, key: jax.Array, params: Params, instance_key: jax.Array) -> GreedyState:
        del key  # nothing random
        return GreedyState(params, instance_key, empty_incumbent(self.task))

    def step(self, state: GreedyState) -> Any:
        keys = jax.random.split(jax.random.PRNGKey(0), 1)
        episodes = batch_episodes(self.task, self.policy, state.params, state.instance_key,
                                  keys, greedy=True)
        return state._replace(incumbent=improve(state.incumbent, episodes))

    @property
    def rollouts_per_step(self) -> int:
        return 1

    @property
    def max_steps(self) -> int | None:
        return 1  # deterministic: a second rollout would repeat the first
