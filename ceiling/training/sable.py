"""SABLE training: PPO on the autoregressive joint policy, agents in a random order per sample.

Read top to bottom: the agent orders, the rollout, then the update. It is IPPO/MAPPO's trainer
(`ceiling.training.ppo`: the same `Runner`, automatic resets, GAE, clipped loss and
epoch/minibatch loop, the same `Metrics`) with one difference. Each environment step draws, per
environment, a random order of the agents (`shuffle_agents`; the identity order without it);
the policy decodes the agents in that order — each agent's action conditioned on the agents
before it in the order — and the transition is stored in that order. The loss then scores
every agent's conditional given exactly the actions it saw, so each PPO ratio is of the
conditional the action was drawn from, as in SABLE and the multi-agent transformer; the joint
log-probability is their sum. Training on every order keeps the policy from depending on one
ordering, and at inference agents act in their task order.

Values come from the permutation-equivariant encoder, so they are put back into the task's
agent order for GAE (an agent's value at t and at t + 1 must be the same agent's) and the
advantages and targets are permuted into each step's order for the loss.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from ceiling.policies.joint import action_log_prob
from ceiling.policies.networks import NetworkConfig, Policy
from ceiling.policies.ppo import gae
from ceiling.policies.rollout import Transition
from ceiling.tasks.base import Task
from ceiling.training.config import PPOConfig
from ceiling.training.ppo import (
    Metrics,
    Runner,
    make_optimizer,
    optimise,
    step_with_reset,
)


def sable_network(config: PPOConfig) -> NetworkConfig:
    """The SABLE network a training config asks for."""
    return NetworkConfig("sable", architecture="sable", embed_dim=config.embed_dim,
                         num_blocks=config.num_blocks, num_heads=config.num_heads)


def agent_orders(key: jax.Array, num_envs: int, num_agents: int, shuffle: bool) -> jax.Array:
    """[E, A] a random permutation of the agents per environment (the identity if not
    `shuffle`): row e lists the agents in the order they act."""
    identity = jnp.broadcast_to(jnp.arange(num_agents, dtype=jnp.int32), (num_envs, num_agents))
    if not shuffle:
        return identity
    keys = jax.random.split(key, num_envs)
    return jax.vmap(lambda k, row: jax.random.permutation(k, row))(keys, identity)


def permute_agents(x: jax.Array, order: jax.Array) -> jax.Array:
    """x [..., A, *rest] with its agent axis reordered by order [..., A]: out[..., i] =
    x[..., order[i]]."""
    index = order.reshape(order.shape + (1,) * (x.ndim - order.ndim))
    return jnp.take_along_axis(x, index, axis=order.ndim - 1)


def restore_agents(x: jax.Array, order: jax.Array) -> jax.Array:
    """The inverse of `permute_agents`: back to the task's agent order."""
    return permute_agents(x, jnp.argsort(order, axis=-1))


def make_sable_update(
    task: Task, policy: Policy, config: PPOConfig
) -> Callable[[Runner], tuple[Runner, Metrics]]:
    optimizer = make_optimizer(config)
    num_envs, num_agents = config.num_envs, task.spec.num_agents

    def env_step(runner: Runner, _: None) -> tuple[Runner, tuple[Transition, jax.Array,
                                                                  jax.Array]]:
        key, action_key, reset_key, order_key = jax.random.split(runner.key, 4)
        ts = runner.timestep
        order = agent_orders(order_key, num_envs, num_agents, config.shuffle_agents)
        observation = permute_agents(ts.observation, order)
        action_mask = permute_agents(ts.action_mask, order)
        ordered_action, logits = policy.decide(runner.params, observation, action_mask,
                                               action_key, greedy=False)
        value = policy.value(runner.params, observation, ts.global_state)
        env_state, next_ts, carried_ts = step_with_reset(
            task, runner.env_state, restore_agents(ordered_action, order), reset_key)
        episode_return = runner.episode_return + next_ts.reward
        done = next_ts.done
        transition = Transition(  # every per-agent field in this step's order
            observation=observation, action_mask=action_mask, global_state=ts.global_state,
            action=ordered_action, log_prob=action_log_prob(logits, ordered_action),
            value=value, reward=next_ts.reward, done=done,
        )
        runner = runner._replace(
            env_state=env_state, timestep=carried_ts, key=key,
            episode_return=jnp.where(done, 0.0, episode_return),
        )
        return runner, (transition, order, episode_return * done)

    def update(runner: Runner) -> tuple[Runner, Metrics]:
        runner, (transitions, orders, finished_returns) = jax.lax.scan(
            env_step, runner, None, config.rollout_length)
        last_value = policy.value(
            runner.params, runner.timestep.observation, runner.timestep.global_state)
        # GAE per agent in the task's order, then each step's advantages in its own order.
        in_task_order = transitions._replace(value=restore_agents(transitions.value, orders))
        advantages, targets = gae(in_task_order, last_value, config.gamma, config.gae_lambda)
        advantages = permute_agents(advantages, orders)
        targets = permute_agents(targets, orders)

        return optimise(policy, config, optimizer, runner, transitions, advantages, targets,
                        finished_returns)

    return update

