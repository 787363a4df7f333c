"""The PPO pieces that training and search share: GAE, the clipped loss, the optimiser, and
the epoch/minibatch update loop.

IPPO/MAPPO training (`ceiling.training.ppo`), COMPASS training and online fine-tuning
(`ceiling.search.finetune`) all optimise this one loss with this one loop; they live here, below
both training and search, so that neither imports the other. Shapes: transitions are
time-major `[T, E, ...]` (E environments or attempts), per-agent quantities `[T, E, A]`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import optax

from ceiling.policies.joint import masked_log_softmax
from ceiling.policies.networks import Params, Policy
from ceiling.policies.rollout import Transition


class LossCoefficients(Protocol):
    """What the loss reads of a config (a training `PPOConfig` or fine-tuning's options)."""

    @property
    def clip_eps(self) -> float: ...
    @property
    def value_coef(self) -> float: ...
    @property
    def entropy_coef(self) -> float: ...


def adam(
    learning_rate: float, max_grad_norm: float, decay_steps: int | None = None
) -> optax.GradientTransformation:
    """Adam with global-norm clipping; with `decay_steps` the rate decays linearly to zero."""
    rate: Any = learning_rate
    if decay_steps is not None:
        rate = optax.linear_schedule(learning_rate, 0.0, decay_steps)
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(rate, eps=1e-5))


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
    coefficients: LossCoefficients,
    params: Params,
    batch: Transition,
    advantages: jax.Array,
    targets: jax.Array,
    live: jax.Array | None = None,
    latent: jax.Array | None = None,
    normalise_advantages: bool = True,
) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """Clipped surrogate + clipped value loss - entropy bonus, averaged over agent-samples.

    `live` [T, E] (optional) marks the samples that count; the trainer's auto-reset makes every
    sample count, while fixed-horizon episodes mask the steps after the end.
    `latent` [E, d] conditions a COMPASS policy, one latent per environment. Advantages are
    standardised over the counted samples unless `normalise_advantages` is False (COMPASS's
    contrastive advantages are zero where nothing should be learned, and must stay zero).
    Each agent's ratio is of its conditional probability given what it conditions on
    (`Policy.conditional_logits`: its own observation for a factorised policy, also the earlier
    agents' actions for an autoregressive one), and the entropy is that conditional's.
    Returns the total and (policy loss, value loss, entropy, approximate KL).
    """
    log_probs = masked_log_softmax(
        policy.conditional_logits(params, batch.observation, batch.action_mask, batch.action,
                                  latent)
    )
    log_prob = jnp.take_along_axis(log_probs, batch.action[..., None], axis=-1)[..., 0]
    weight = (jnp.ones_like(log_prob) if live is None
              else jnp.broadcast_to(live[..., None], log_prob.shape).astype(jnp.float32))
    count = jnp.maximum(weight.sum(), 1.0)

    def mean(x: jax.Array) -> jax.Array:
        return (x * weight).sum() / count

    ratio = jnp.exp(log_prob - batch.log_prob)
    if normalise_advantages:
        advantage_mean = mean(advantages)
        advantages = (advantages - advantage_mean) / (
            jnp.sqrt(mean((advantages - advantage_mean) ** 2)) + 1e-8
        )
    clip_eps = coefficients.clip_eps
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    policy_loss = -mean(jnp.minimum(ratio * advantages, clipped * advantages))

    value = policy.value(params, batch.observation, batch.global_state)
    value_clipped = batch.value + jnp.clip(value - batch.value, -clip_eps, clip_eps)
    value_loss = 0.5 * mean(jnp.maximum((value - targets) ** 2, (value_clipped - targets) ** 2))

    entropy = mean(-(jnp.exp(log_probs) * log_probs).sum(-1))
    approx_kl = mean((ratio - 1.0) - (log_prob - batch.log_prob))
    total = (policy_loss + coefficients.value_coef * value_loss
             - coefficients.entropy_coef * entropy)
    return total, (policy_loss, value_loss, entropy, approx_kl)


MinibatchLoss = Callable[[Params, jax.Array], tuple[jax.Array, Any]]


def ppo_epochs(
    loss: MinibatchLoss,
    optimizer: optax.GradientTransformation,
    params: Params,
    opt_state: optax.OptState,
    key: jax.Array,
    num_envs: int,
    num_epochs: int,
    num_minibatches: int,
) -> tuple[Params, optax.OptState, Any]:
    """`num_epochs` passes over `num_envs` environments in `num_minibatches` shuffled
    minibatches, one gradient step each; `loss(params, env_indices [E/M]) -> (loss, aux)`
    (minibatches are sets of environments, time kept whole). Returns the new parameters,
    optimiser state and the aux outputs stacked [num_epochs, num_minibatches, ...]."""

    def minibatch_step(
        carry: tuple[Params, optax.OptState], indices: jax.Array
    ) -> tuple[tuple[Params, optax.OptState], Any]:
        params, opt_state = carry
        grads, aux = jax.grad(loss, has_aux=True)(params, indices)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), aux

    def epoch(
        carry: tuple[Params, optax.OptState, jax.Array], _: None
    ) -> tuple[tuple[Params, optax.OptState, jax.Array], Any]:
        params, opt_state, key = carry
        key, perm_key = jax.random.split(key)
        order = jax.random.permutation(perm_key, num_envs)
        (params, opt_state), aux = jax.lax.scan(
            minibatch_step, (params, opt_state), order.reshape(num_minibatches, -1))
        return (params, opt_state, key), aux

    (params, opt_state, _), aux = jax.lax.scan(
        epoch, (params, opt_state, key), None, num_epochs)
    return params, opt_state, aux
