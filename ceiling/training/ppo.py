"""IPPO / MAPPO: clipped PPO with GAE over vmapped environments, one jitted update.

Read top to bottom: the carried state, the rollout (with automatic resets to fresh training
instances), generalised advantage estimation, the PPO loss, then the epoch/minibatch update.
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

from ceiling.policies.networks import Params, Policy, sample_action
from ceiling.tasks.base import Task, TaskState, TimeStep
from ceiling.tasks.instances import train_keys
from ceiling.training.config import PPOConfig

MASKED_LOGIT = -1e9  # finite stand-in for -inf inside the loss, so gradients stay finite


class Runner(NamedTuple):
    """Everything that changes from one update to the next."""

    params: Params
    opt_state: optax.OptState
    env_state: TaskState  # [E] batched
    timestep: TimeStep  # [E] batched, the observation the next action is chosen from
    episode_return: jax.Array  # [E] return accumulated in the running episode
    key: jax.Array


class Transition(NamedTuple):
    observation: jax.Array  # [E, A, F]
    action_mask: jax.Array  # [E, A, n]
    global_state: jax.Array  # [E, G]
    action: jax.Array  # [E, A]
    log_prob: jax.Array  # [E, A]
    value: jax.Array  # [E, A]
    reward: jax.Array  # [E]
    done: jax.Array  # [E]


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
    learning_rate: Any = config.learning_rate
    if config.anneal_lr:
        updates = config.num_updates if num_updates is None else num_updates
        steps = updates * config.num_epochs * config.num_minibatches
        learning_rate = optax.linear_schedule(config.learning_rate, 0.0, steps)
    return optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm), optax.adam(learning_rate, eps=1e-5)
    )


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
    env_state, timestep = jax.vmap(task.reset)(train_keys(env_key, config.num_envs))
    return Runner(
        params=params,
        opt_state=make_optimizer(config).init(params),
        env_state=env_state,
        timestep=timestep,
        episode_return=jnp.zeros(config.num_envs, jnp.float32),
        key=key,
    )


def masked_log_softmax(logits: jax.Array) -> jax.Array:
    return jax.nn.log_softmax(jnp.where(jnp.isfinite(logits), logits, MASKED_LOGIT), axis=-1)


def gae(
    transitions: Transition, last_value: jax.Array, gamma: float, lam: float
) -> tuple[jax.Array, jax.Array]:
    """Advantages and value targets [T, E, A] by a reverse scan over time."""

    def backward(carry: tuple[jax.Array, jax.Array], t: Transition) -> Any:
        next_advantage, next_value = carry
        not_done = 1.0 - t.done.astype(jnp.float32)[:, None]
        delta = t.reward[:, None] + gamma * next_value * not_done - t.value
        advantage = delta + gamma * lam * not_done * next_advantage
        return (advantage, t.value), advantage

    init = (jnp.zeros_like(last_value), last_value)
    _, advantages = jax.lax.scan(backward, init, transitions, reverse=True)
    return advantages, advantages + transitions.value


def ppo_loss(
    policy: Policy,
    config: PPOConfig,
    params: Params,
    batch: Transition,
    advantages: jax.Array,
    targets: jax.Array,
    live: jax.Array | None = None,
    latent: jax.Array | None = None,
) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """Clipped surrogate + clipped value loss - entropy bonus, averaged over agent-samples.

    `live` [T, E] (optional) marks the samples that count; the trainer's auto-reset makes every
    sample count, while a search's fixed-horizon episodes mask the steps after the end.
    `latent` [E, d] conditions a COMPASS policy, one latent per environment.
    """
    log_probs = masked_log_softmax(
        policy.act(params, batch.observation, batch.action_mask, latent)
    )
    log_prob = jnp.take_along_axis(log_probs, batch.action[..., None], axis=-1)[..., 0]
    weight = (jnp.ones_like(log_prob) if live is None
              else jnp.broadcast_to(live[..., None], log_prob.shape).astype(jnp.float32))
    count = jnp.maximum(weight.sum(), 1.0)

    def mean(x: jax.Array) -> jax.Array:
        return (x * weight).sum() / count

    ratio = jnp.exp(log_prob - batch.log_prob)
    advantage_mean = mean(advantages)
    advantages = (advantages - advantage_mean) / (
        jnp.sqrt(mean((advantages - advantage_mean) ** 2)) + 1e-8
    )
    clipped = jnp.clip(ratio, 1.0 - config.clip_eps, 1.0 + config.clip_eps)
    policy_loss = -mean(jnp.minimum(ratio * advantages, clipped * advantages))

    value = policy.value(params, batch.observation, batch.global_state)
    value_clipped = batch.value + jnp.clip(value - batch.value, -config.clip_eps, config.clip_eps)
    value_loss = 0.5 * mean(jnp.maximum((value - targets) ** 2, (value_clipped - targets) ** 2))

    entropy = mean(-(jnp.exp(log_probs) * log_probs).sum(-1))
    approx_kl = mean((ratio - 1.0) - (log_prob - batch.log_prob))
    total = policy_loss + config.value_coef * value_loss - config.entropy_coef * entropy
    return total, (policy_loss, value_loss, entropy, approx_kl)


def make_update(
    task: Task, policy: Policy, config: PPOConfig
) -> Callable[[Runner], tuple[Runner, Metrics]]:
    optimizer = make_optimizer(config)
    num_envs = config.num_envs

    def env_step(carry: Runner, _: None) -> tuple[Runner, tuple[Transition, jax.Array]]:
        runner = carry
        key, action_key, reset_key = jax.random.split(runner.key, 3)
        ts = runner.timestep
        logits = policy.act(runner.params, ts.observation, ts.action_mask)
        action = sample_action(action_key, logits)
        log_prob = jnp.take_along_axis(masked_log_softmax(logits), action[..., None], -1)[..., 0]
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

        def minibatch_step(
            state: tuple[Params, optax.OptState], indices: jax.Array
        ) -> tuple[tuple[Params, optax.OptState], tuple[jax.Array, ...]]:
            params, opt_state = state
            # Minibatches are sets of environments, time kept whole: [T, E/M, ...].
            take = lambda x: x[:, indices]  # noqa: E731
            batch = jax.tree_util.tree_map(take, transitions)
            grad_fn = jax.grad(
                lambda p: ppo_loss(policy, config, p, batch, take(advantages), take(targets)),
                has_aux=True,
            )
            grads, aux = grad_fn(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), aux

        def epoch(
            state: tuple[Params, optax.OptState, jax.Array], _: None
        ) -> tuple[tuple[Params, optax.OptState, jax.Array], tuple[jax.Array, ...]]:
            params, opt_state, key = state
            key, perm_key = jax.random.split(key)
            order = jax.random.permutation(perm_key, num_envs)
            minibatches = order.reshape(config.num_minibatches, -1)
            (params, opt_state), aux = jax.lax.scan(
                minibatch_step, (params, opt_state), minibatches
            )
            return (params, opt_state, key), aux

        key, epoch_key = jax.random.split(runner.key)
        (params, opt_state, _), aux = jax.lax.scan(
            epoch, (runner.params, runner.opt_state, epoch_key), None, config.num_epochs
        )
        policy_loss, value_loss, entropy, approx_kl = (x.mean() for x in aux)
        metrics = Metrics(
            episode_return_sum=finished_returns.sum(),
            episodes=transitions.done.sum(),
            policy_loss=policy_loss,
            value_loss=value_loss,
            entropy=entropy,
            approx_kl=approx_kl,
        )
        return runner._replace(params=params, opt_state=opt_state, key=key), metrics

    return update


def make_train_chunk(
    task: Task, policy: Policy, config: PPOConfig, num_updates: int
) -> Any:
    """A jitted function running `num_updates` PPO updates; metrics are stacked [num_updates].

    Call it, or `.lower(runner).compile()` it to compile ahead of time.
    """
    update = make_update(task, policy, config)

    def chunk(runner: Runner) -> tuple[Runner, Metrics]:
        return jax.lax.scan(lambda r, _: update(r), runner, None, num_updates)

    return jax.jit(chunk)
