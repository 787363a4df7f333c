"""Joint actions from per-agent logits: arg-max, sampling, log-probabilities and the K best.

A factorised policy (every MLP policy: agents choose independently given their observations)
is fully described by its masked logits [..., A, n], and these functions turn such logits into
joint actions. An autoregressive policy (SABLE) produces one row of logits per agent
conditioned on the actions of the agents before it; the same functions apply to those rows, one
agent at a time. `Policy` (`ceiling.policies.networks`) builds its joint-action methods on
them, so every consumer — the episode scan, the trainers, the PPO loss, SGBS's expansion —
reaches them through the policy and never assumes which kind of policy it holds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

MASKED_LOGIT = -1e9  # finite stand-in for -inf inside losses, so gradients stay finite


def greedy_action(logits: jax.Array) -> jax.Array:
    """Arg-max joint action [..., A] from masked logits."""
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def sample_action(key: jax.Array, logits: jax.Array, temperature: float = 1.0) -> jax.Array:
    """A joint action [..., A] sampled from the masked categorical at `temperature`."""
    return jax.random.categorical(key, logits / temperature, axis=-1).astype(jnp.int32)


def masked_log_softmax(logits: jax.Array) -> jax.Array:
    """Log-probabilities [..., n] of masked logits; masked actions get a huge negative finite
    value instead of -inf, so that losses and their gradients stay finite."""
    return jax.nn.log_softmax(jnp.where(jnp.isfinite(logits), logits, MASKED_LOGIT), axis=-1)


def action_log_prob(logits: jax.Array, action: jax.Array) -> jax.Array:
    """Per-agent log-probabilities [..., A] of `action` [..., A] under masked logits."""
    return jnp.take_along_axis(masked_log_softmax(logits), action[..., None], -1)[..., 0]


def top_k_joint_actions(logits: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    """The `k` most probable joint actions [k, A] and their log-probabilities [k].

    `logits` [A, n] are masked per-agent logits. Agents act independently, so a joint action's
    log-probability is a sum over agents; merging one agent at a time and keeping the `k` best
    partial sums is exact, because every prefix of a top-`k` joint action is itself among the
    top-`k` prefixes. Ranking by raw logits is the same as ranking by log-probabilities (the
    per-agent normalisers add one constant to every joint action), and ties go to lower
    indices, so entry 0 is the arg-max joint action. With fewer than `k` legal joint actions
    the surplus entries have log-probability -inf.
    """
    num_agents, num_actions = logits.shape

    def merge(
        carry: tuple[jax.Array, jax.Array], agent: jax.Array
    ) -> tuple[tuple[jax.Array, jax.Array], None]:
        values, actions = carry  # [k] partial sums of logits, [k, A] their prefixes
        sums = (values[:, None] + logits[agent][None, :]).reshape(-1)  # [k * n]
        values, flat = jax.lax.top_k(sums, k)  # lower index first on ties
        actions = actions[flat // num_actions].at[:, agent].set(flat % num_actions)
        return (values, actions), None

    # One empty prefix; the -inf placeholders can only surface once legal actions run out.
    start = (jnp.full((k,), -jnp.inf, logits.dtype).at[0].set(0.0),
             jnp.zeros((k, num_agents), jnp.int32))
    (values, actions), _ = jax.lax.scan(merge, start, jnp.arange(num_agents))
    return actions, values - jax.nn.logsumexp(logits, axis=-1).sum()


def first_occurrences(actions: jax.Array) -> jax.Array:
    """[..., k] bool: joint action i of `actions` [..., k, A] differs from every one before it."""
    same = (actions[..., :, None, :] == actions[..., None, :, :]).all(-1)  # [..., k, k]
    k = actions.shape[-2]
    earlier = jnp.tril(jnp.ones((k, k), bool), k=-1)
    return ~(same & earlier).any(axis=-1)
