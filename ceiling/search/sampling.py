"""Stochastic sampling: `width` independent rollouts per batch at a temperature; keep the best."""

from __future__ import annotations

from typing import NamedTuple

import jax

from ceiling.errors import CeilingError
from ceiling.policies.networks import Params, Policy
from ceiling.search.base import Incumbent, Strategy, batch_episodes, empty_incumbent, improve
from ceiling.tasks.base import Task


class SamplingState(NamedTuple):
    params: Params
    instance_key: jax.Array
    key: jax.Array
    incumbent: Incumbent


class Sampling(Strategy):
    name = "sampling"

    def __init__(self, task: Task, policy: Policy, width: int, temperature: float = 1.0) -> None:
        if not temperature > 0:
            raise CeilingError(f"temperature must be > 0, got {temperature!r}")
        self.task, self.policy, self.width = task, policy, width
        self.temperature = float(temperature)

    def init(self, key: jax.Array, params: Params, instance_key: jax.Array) -> SamplingState:
        return SamplingState(params, instance_key, key, empty_incumbent(self.task))

    def step(self, state: SamplingState) -> SamplingState:
        key, batch_key = jax.random.split(state.key)
        episodes = batch_episodes(
            self.task, self.policy, state.params, state.instance_key,
            jax.random.split(batch_key, self.width), greedy=False, temperature=self.temperature,
        )
        return state._replace(key=key, incumbent=improve(state.incumbent, episodes))
