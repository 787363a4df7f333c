"""IPPO / MAPPO: clipped PPO with GAE over vmapped environments, one jitted update.

Read top to bottom: the carried state, the rollout (with automatic resets to fresh training
instances), then the update: generalised advantage estimation and the epoch/minibatch loop over
the PPO loss, both shared with COMPASS training and fine-tuning (`ceiling.policies.ppo`).
`make_update` returns a pure function `update(runner) -> (runner, metrics)`; the caller scans
it and jits the scan, so rollout, advantages and every gradient step of many updates compile
into one XLA program. Agents share actor parameters; each agent's sample is one row of the
loss, with the team reward as every agent's reward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ceiling.compile_options import RUN_ONCE_COMPILER_OPTIONS
from ceiling.policies.joint import action_log_prob
from ceiling.policies.networks import Params, Policy
from ceiling.policies.ppo import adam, gae, ppo_epochs, ppo_loss
from ceiling.policies.rollout import Transition
from ceiling.tasks.base import Task, TaskState, TimeStep
from ceiling.tasks.instances import train_keys
from ceiling.training.config import PPOConfig


class Runner(NamedTuple):
    """Everything that changes from one update to the next."""

    params: Params
    opt_state: optax.OptState
    env_state: TaskState  # [E] batched
    timestep: TimeStep  # [E] batched, the observation the next action is chosen from
    episode_return: jax.Array  # [E] return accumulated in the running episode
    key: jax.Array


class Metrics(NamedTuple):
    episode_return_sum: jax.Array  # summed returns of episodes that ended this update
    episodes: jax.Array  # number of episodes that ended this update
    policy_loss: jax.Array
    value_loss: jax.Array
    entropy: jax.Array
    approx_kl: jax.Array


def make_optimizer(
    config: PPOConfig, num_updates: int | None = None
) -> optax.GradientTransformation:
    """Adam with global-norm clipping; `anneal_lr` decays to zero over `num_updates` updates
    (default: the config's own count)."""
    decay_steps = None
    if config.anneal_lr:
        updates = config.num_updates if num_updates is None else num_updates
        decay_steps = updates * config.num_epochs * config.num_minibatches
    return adam(config.learning_rate, config.max_grad_norm, decay_steps)


def select_envs(done: jax.Array, on_true: Any, on_false: Any) -> Any:
    """Per-environment choice between two [E, ...] pytrees."""

    def pick(a: jax.Array, b: jax.Array) -> jax.Array:
        return jnp.where(done.reshape(done.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree_util.tree_map(pick, on_true, on_false)


def step_with_reset(
    task: Task, env_state: TaskState, action: jax.Array, reset_key: jax.Array
) -> tuple[TaskState, TimeStep, TimeStep]:
    """Step [E] environments; finished ones restart on fresh training instances.

    Returns the new states, the timestep of the transition (its reward and done), and the
    timestep to act from next (a reset's, where the episode ended).
    """
    env_state, next_ts = jax.vmap(task.step)(env_state, action)
    done = next_ts.done

    def reset_finished(_: None) -> tuple[TaskState, TimeStep]:
        fresh_state, fresh_ts = jax.vmap(task.reset)(train_keys(reset_key, done.shape[0]))
        return select_envs(done, fresh_state, env_state), select_envs(done, fresh_ts, next_ts)

    # Scalar predicate: the (costly) batch reset runs only on steps where an episode ended.
    env_state, carried_ts = jax.lax.cond(
        done.any(), reset_finished, lambda _: (env_state, next_ts), None
    )
    return env_state, next_ts, carried_ts


def init_runner(task: Task, policy: Policy, config: PPOConfig, key: jax.Array) -> Runner:
    param_key, env_key, key = jax.random.split(key, 3)
    params = policy.init(param_key)
    # Jitted: run eagerly, the vmapped reset dispatches (and compiles) each of its operations on
    # its own, about 8 s of a first Connector run's start; compiled once, it runs once.
    reset = jax.jit(jax.vmap(task.reset), compiler_options=RUN_ONCE_COMPILER_OPTIONS)
    env_state, timestep = reset(train_keys(env_key, config.num_envs))
    return Runner(
        params=params,
        opt_state=make_optimizer(config).init(params),
        env_state=env_state,
        timestep=timestep,
        episode_return=jnp.zeros(config.num_envs, jnp.float32),
        key=key,
    )


def optimise(
    policy: Policy,
    config: PPOConfig,
    optimizer: optax.GradientTransformation,
    runner: Runner,
    transitions: Transition,
    advantages: jax.Array,
    targets: jax.Array,
    finished_returns: jax.Array,
) -> tuple[Runner, Metrics]:
    """PPO's epochs over one rollout [T, E, ...] and the update's metrics."""

    # Minibatches are sets of environments, time kept whole: [T, E/M, ...].
    def loss(params: Params, indices: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        take = lambda x: x[:, indices]  # noqa: E731
        return ppo_loss(policy, config, params, jax.tree_util.tree_map(take, transitions),
                        take(advantages), take(targets))

    key, epoch_key = jax.random.split(runner.key)
    params, opt_state, aux = ppo_epochs(
        loss, optimizer, runner.params, runner.opt_state, epoch_key, config.num_envs,
        config.num_epochs, config.num_minibatches)
    policy_loss, value_loss, entropy, approx_kl = (x.mean() for x in aux)
    metrics = Metrics(
        episode_return_sum=finished_returns.sum(), episodes=transitions.done.sum(),
        policy_loss=policy_loss, value_loss=value_loss, entropy=entropy, approx_kl=approx_kl,
    )
    return runner._replace(params=params, opt_state=opt_state, key=key), metrics


def make_update(
    task: Task, policy: Policy, config: PPOConfig
) -> Callable[[Runner], tuple[Runner, Metrics]]:
    optimizer = make_optimizer(config)

    def env_step(carry: Runner, _: None) -> tuple[Runner, tuple[Transition, jax.Array]]:
        runner = carry
        key, action_key, reset_key = jax.random.split(runner.key, 3)
        ts = runner.timestep
        action, logits = policy.decide(runner.params, ts.observation, ts.action_mask,
                                       action_key, greedy=False)
        log_prob = action_log_prob(logits, action)
        value = policy.value(runner.params, ts.observation, ts.global_state)
        env_state, next_ts, carried_ts = step_with_reset(
            task, runner.env_state, action, reset_key
        )
        episode_return = runner.episode_return + next_ts.reward
        done = next_ts.done
        transition = Transition(
            observation=ts.observation, action_mask=ts.action_mask,
            global_state=ts.global_state, action=action, log_prob=log_prob, value=value,
            reward=next_ts.reward, done=done,
        )
        runner = runner._replace(
            env_state=env_state, timestep=carried_ts, key=key,
            episode_return=jnp.where(done, 0.0, episode_return),
        )
        return runner, (transition, episode_return * done)

    def update(runner: Runner) -> tuple[Runner, Metrics]:
        runner, (transitions, finished_returns) = jax.lax.scan(
            env_step, runner, None, config.rollout_length
        )
        last_value = policy.value(
            runner.params, runner.timestep.observation, runner.timestep.global_state
        )
        advantages, targets = gae(transitions, last_value, config.gamma, config.gae_lambda)
        return optimise(policy, config, optimizer, runner, transitions, advantages, targets,
                        finished_returns)

    return update


def make_train_chunk(
    task: Task,
    policy: Policy,
    config: PPOConfig,
    num_updates: int,
    make: Callable[[Task, Policy, PPOConfig], Callable[[Runner], tuple[Runner, Metrics]]]
    | None = None,
) -> Any:
    """A jitted function running `num_updates` PPO updates; metrics are stacked [num_updates].

    `make` builds one update (default `make_update`, IPPO/MAPPO's; SABLE passes its own). Call
    the result, or `.lower(runner).compile()` it to compile ahead of time.
    """
    update = (make or make_update)(task, policy, config)

    def chunk(runner: Runner) -> tuple[Runner, Metrics]:
        return jax.lax.scan(lambda r, _: update(r), runner, None, num_updates)

    return jax.jit(chunk)
