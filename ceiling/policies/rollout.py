"""Acting in a task: one episode as a `lax.scan` over the horizon, and zero-shot evaluation.

Because finished task states are absorbing, scanning exactly `horizon` steps gives the exact
episode return for every instance, so batches of episodes vmap without ragged lengths.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import numpy as np

from ceiling.policies.networks import Params, Policy, greedy_action, sample_action
from ceiling.tasks.base import Task


class Episode(NamedTuple):
    actions: jax.Array  # [T, A] int32 joint actions (after the end: whatever was fed, ignored)
    total_return: jax.Array  # [] float32 team return
    won: jax.Array  # [] bool (False where the task has no win condition)
    length: jax.Array  # [] int32 steps until done


def run_episode(
    task: Task,
    policy: Policy,
    params: Params,
    instance_key: jax.Array,
    key: jax.Array,
    greedy: bool = True,
    temperature: float = 1.0,
    latent: jax.Array | None = None,
) -> Episode:
    """Play one episode of the instance `instance_key`; `key` drives stochastic actions.

    `latent` [latent_dim] conditions a COMPASS policy for the whole episode.
    """
    state, timestep = task.reset(instance_key)

    def body(carry: Any, step_key: jax.Array) -> tuple[Any, tuple[jax.Array, jax.Array]]:
        state, timestep = carry
        logits = policy.act(params, timestep.observation, timestep.action_mask, latent)
        if greedy:
            action = greedy_action(logits)
        else:
            action = sample_action(step_key, logits, temperature)
        state, timestep = task.step(state, action)
        return (state, timestep), (action, timestep.reward)

    step_keys = jax.random.split(key, task.spec.horizon)
    (state, timestep), (actions, rewards) = jax.lax.scan(body, (state, timestep), step_keys)
    return Episode(
        actions=actions,
        total_return=rewards.sum(),
        won=timestep.won,
        length=state.step,
    )


@functools.partial(jax.jit, static_argnums=(0, 1), static_argnames=("greedy",))
def evaluate_batch(
    task: Task,
    policy: Policy,
    params: Params,
    instance_keys: jax.Array,
    key: jax.Array,
    greedy: bool = True,
) -> Episode:
    """Episodes [N] for instance keys [N, 2], in one jitted, vmapped call."""
    keys = jax.random.split(key, instance_keys.shape[0])
    return jax.vmap(lambda ik, k: run_episode(task, policy, params, ik, k, greedy))(
        instance_keys, keys
    )


def summarise(returns: np.ndarray, wins: np.ndarray | None) -> dict[str, Any]:
    """Mean return with a 95 % normal-approximation confidence interval, and the win rate."""
    returns = np.asarray(returns, dtype=np.float64)
    n = int(returns.size)
    mean = float(returns.mean())
    half = 1.96 * float(returns.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
    return {
        "mean_return": mean,
        "ci95": [mean - half, mean + half],
        "win_rate": None if wins is None else float(np.asarray(wins, dtype=np.float64).mean()),
        "num_instances": n,
    }
