"""Acting in a task: the one episode scan, zero-shot evaluation, and the trajectory record.

Everything that plays a policy through a task for a fixed number of steps — zero-shot
evaluation, every search strategy's attempts, SGBS's greedy simulations from a beam node,
fine-tuning's and COMPASS training's recorded rollouts — goes through `play`. Because finished
task states are absorbing, scanning exactly `horizon` steps gives the exact episode return for
every instance, so batches of episodes vmap without ragged lengths.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ceiling.compile_options import RUN_ONCE_COMPILER_OPTIONS
from ceiling.policies.joint import action_log_prob
from ceiling.policies.networks import Params, Policy
from ceiling.tasks.base import Task, TaskState, TimeStep


class Episode(NamedTuple):
    actions: jax.Array  # [T, A] int32 joint actions (after the end: whatever was fed, ignored)
    total_return: jax.Array  # [] float32 team return
    won: jax.Array  # [] bool (False where the task has no win condition)
    length: jax.Array  # [] int32 steps until done
    # [] float32 Σ_t r_t (1 − t/T) over the rollout's T steps: the return with earlier rewards
    # weighted more, to break ties between equal returns (NaN where not tracked: SGBS)
    early_return: jax.Array


class Transition(NamedTuple):
    """One step as the PPO loss sees it; batched [T, E, ...] in training and fine-tuning."""

    observation: jax.Array  # [A, F]
    action_mask: jax.Array  # [A, n]
    global_state: jax.Array  # [G]
    action: jax.Array  # [A]
    log_prob: jax.Array  # [A] under the untempered policy
    value: jax.Array  # [A]
    reward: jax.Array  # []
    done: jax.Array  # []


class Trajectory(NamedTuple):
    """What a recorded rollout keeps about each of its L steps, for a loss."""

    transitions: Transition  # [L, ...]
    live: jax.Array  # [L] bool: the step was taken before the episode ended
    finite: jax.Array  # [] bool: every legal logit along the way was finite


def legal_logits_finite(logits: jax.Array, action_mask: jax.Array) -> jax.Array:
    """Whether every legal action's logit is finite (masked ones are -inf by design)."""
    return jnp.where(action_mask, jnp.isfinite(logits), True).all()


def play(
    task: Task,
    policy: Policy,
    params: Params,
    state: TaskState,
    timestep: TimeStep,
    key: jax.Array,
    length: int,
    greedy: bool | jax.Array,
    temperature: float = 1.0,
    latent: jax.Array | None = None,
    record: bool = False,
) -> tuple[Episode, Trajectory | None]:
    """Play `length` steps from (`state`, `timestep`): the one episode scan.

    The policy's joint action each step (`Policy.decide`): arg-max if `greedy`, else sampled
    at `temperature`, each step with its own key split from `key`. `latent` [d] conditions a
    COMPASS policy for the whole rollout. With `record`, also returns the `Trajectory` a loss
    needs (per-agent conditional log-probabilities under the untempered policy, so a PPO ratio
    starts at 1 whatever the sampling temperature).
    """

    def body(carry: Any, step_key: jax.Array) -> tuple[Any, Any]:
        state, timestep = carry
        action, logits = policy.decide(params, timestep.observation, timestep.action_mask,
                                       step_key, greedy, temperature, latent)
        next_state, next_timestep = task.step(state, action)
        out: tuple[Any, ...] = (action, next_timestep.reward)
        if record:
            log_prob = action_log_prob(logits, action)
            transition = Transition(
                observation=timestep.observation, action_mask=timestep.action_mask,
                global_state=timestep.global_state, action=action, log_prob=log_prob,
                value=policy.value(params, timestep.observation, timestep.global_state),
                reward=next_timestep.reward, done=next_timestep.done,
            )
            out += (transition, ~timestep.done,
                    legal_logits_finite(logits, timestep.action_mask))
        return (next_state, next_timestep), out

    step_keys = jax.random.split(key, length)
    (state, timestep), out = jax.lax.scan(body, (state, timestep), step_keys)
    earliness = 1.0 - jnp.arange(length, dtype=jnp.float32) / length
    episode = Episode(actions=out[0], total_return=out[1].sum(), won=timestep.won,
                      length=state.step, early_return=(out[1] * earliness).sum())
    if not record:
        return episode, None
    return episode, Trajectory(transitions=out[2], live=out[3], finite=out[4].all())


def run_episode(
    task: Task,
    policy: Policy,
    params: Params,
    instance_key: jax.Array,
    key: jax.Array,
    greedy: bool | jax.Array = True,
    temperature: float = 1.0,
    latent: jax.Array | None = None,
) -> Episode:
    """Play one whole episode of the instance `instance_key`; `key` drives sampled actions."""
    state, timestep = task.reset(instance_key)
    episode, _ = play(task, policy, params, state, timestep, key, task.spec.horizon, greedy,
                      temperature, latent)
    return episode


def record_episode(
    task: Task,
    policy: Policy,
    params: Params,
    instance_key: jax.Array,
    key: jax.Array,
    temperature: float = 1.0,
    latent: jax.Array | None = None,
) -> tuple[Episode, Trajectory]:
    """One sampled episode of the instance and its `Trajectory` [T = horizon]; actions are
    drawn as in `run_episode(greedy=False)`, key for key."""
    state, timestep = task.reset(instance_key)
    episode, trajectory = play(task, policy, params, state, timestep, key, task.spec.horizon,
                               False, temperature, latent, record=True)
    assert trajectory is not None
    return episode, trajectory


def evaluate_episodes(
    task: Task,
    policy: Policy,
    params: Params,
    instance_keys: jax.Array,
    key: jax.Array,
    greedy: bool | jax.Array = True,
) -> Episode:
    """Episodes [N] for instance keys [N, 2], vmapped; no jit of its own, for a caller that
    compiles it inside its own program (training's evaluations). Otherwise `evaluate_batch`."""
    keys = jax.random.split(key, instance_keys.shape[0])
    return jax.vmap(lambda ik, k: run_episode(task, policy, params, ik, k, greedy))(
        instance_keys, keys
    )


def evaluate_batch(
    task: Task,
    policy: Policy,
    params: Params,
    instance_keys: jax.Array,
    key: jax.Array,
    greedy: bool = True,
) -> Episode:
    """Episodes [N] for instance keys [N, 2], in one jitted, vmapped call. Not for use under
    an outer `jax.jit` (its program has compiler options of its own); use `evaluate_episodes`
    there."""
    policy, params = policy.acting(params)
    return _evaluate_batch(task, policy, params, instance_keys, key, jnp.asarray(greedy))


# Zero-shot evaluation compiles once per (task, actor network) and runs a few times: its compile
# is what a user waits for (`ceiling evaluate`, the demo's table). So greedy and sampled actions
# share one program (the mode is traced, not static), so do IPPO and MAPPO (`Policy.acting`),
# and it skips LLVM's expensive passes: 0.30x the compile seconds of two programs per network
# with XLA's default options, the same run time as two run-once programs (2-4x the optimised
# run: 2.0 s instead of 0.7 for 128 RWARE episodes), the same returns
# (`benchmarks/evaluate_compile.py`).
_evaluate_batch = jax.jit(evaluate_episodes, static_argnums=(0, 1),
                          compiler_options=RUN_ONCE_COMPILER_OPTIONS)


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
