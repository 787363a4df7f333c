"""What every strategy shares: the best solution so far, batched rollouts, the Strategy shape.

A strategy is a small object holding only static configuration (task, policy, width,
options) with pure methods over an explicit search state, like an evosax strategy:
`init(key, params, instance_key) -> state`, `step(state) -> state` (exactly one jitted batch of
attempts) and `best(state) -> Incumbent`. Every state carries an `Incumbent`, so the driver
reads the anytime best return the same way for all strategies.
"""

from __future__ import annotations

import abc
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ceiling.policies.networks import Params, Policy
from ceiling.policies.rollout import Episode, run_episode
from ceiling.tasks.base import Task


class Incumbent(NamedTuple):
    """The best complete episode found so far."""

    actions: jax.Array  # [T, A] int32
    total_return: jax.Array  # [] float32 (-inf before the first batch)
    won: jax.Array  # [] bool


def empty_incumbent(task: Task) -> Incumbent:
    spec = task.spec
    return Incumbent(
        actions=jnp.zeros((spec.horizon, spec.num_agents), jnp.int32),
        total_return=jnp.asarray(-jnp.inf, jnp.float32),
        won=jnp.zeros((), bool),
    )


def improve(incumbent: Incumbent, episodes: Episode) -> Incumbent:
    """Keep the best of the incumbent and a batch of episodes [W] (first index wins ties)."""
    index = jnp.argmax(episodes.total_return)
    candidate = episodes.total_return[index]
    better = candidate > incumbent.total_return
    return Incumbent(
        actions=jnp.where(better, episodes.actions[index], incumbent.actions),
        total_return=jnp.where(better, candidate, incumbent.total_return),
        won=jnp.where(better, episodes.won[index], incumbent.won),
    )


def batch_episodes(
    task: Task,
    policy: Policy,
    params: Params,
    instance_key: jax.Array,
    keys: jax.Array,
    greedy: bool,
    temperature: float = 1.0,
) -> Episode:
    """[W] episodes of one instance, one per key in `keys` [W, 2]."""
    return jax.vmap(
        lambda k: run_episode(task, policy, params, instance_key, k, greedy, temperature)
    )(keys)


class Strategy(abc.ABC):
    """Static configuration + pure functions over a search state (see the module docstring)."""

    name: str
    task: Task
    policy: Policy
    width: int

    @abc.abstractmethod
    def init(self, key: jax.Array, params: Params, instance_key: jax.Array) -> Any:
        """The search state for one instance; holds everything `step` needs."""

    @abc.abstractmethod
    def step(self, state: Any) -> Any:
        """One batch of attempts; pure and jittable."""

    def best(self, state: Any) -> Incumbent:
        return state.incumbent

    @functools.cached_property
    def jitted_step(self) -> Any:
        """`step` under `jax.jit`, kept with the strategy so that searching many instances
        with one strategy object compiles once."""
        return jax.jit(self.step)

    def check(self, state: Any) -> None:
        """Raise `CeilingError` if the search can no longer go on (e.g. non-finite params)."""
        del state  # the default strategy can always go on

    @property
    def rollouts_per_step(self) -> int:
        """Complete rollouts (or their equivalent in simulated steps) one batch costs."""
        return self.width

    @property
    def max_steps(self) -> int | None:
        """A strategy that has nothing left to try after this many batches says so."""
        return None
