"""Stochastic sampling: `width` independent rollouts per batch at a temperature; keep the best."""

from __future__ import annotations

import dataclasses

import jax

from ceiling.policies.rollout import run_episode
from ceiling.search.base import Batch, SearchState, Strategy
from ceiling.search.options import POSITIVE, StrategyOptions, option


@dataclasses.dataclass(frozen=True)
class SamplingOptions(StrategyOptions):
    temperature: float = option(1.0, POSITIVE, "softmax temperature of the sampled actions")


class Sampling(Strategy):
    """`width` independent stochastic rollouts; keep the best"""

    name = "sampling"
    Options = SamplingOptions
    options: SamplingOptions

    def batch(self, state: SearchState, key: jax.Array) -> Batch:
        episodes = jax.vmap(lambda k: run_episode(
            self.task, self.policy, state.params, state.instance_key, k, greedy=False,
            temperature=self.options.temperature))(jax.random.split(key, self.width))
        return Batch(episodes)
