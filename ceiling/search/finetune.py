"""Online fine-tuning: adapt the policy's parameters to the one instance being solved.

Each batch samples `width` stochastic rollouts of the instance from the current parameters,
keeps the best episode in the incumbent, then takes `num_updates` passes of the PPO training
loss (`ceiling.policies.ppo.ppo_loss`, advantages from its `gae`) over those rollouts, each
pass one full-batch gradient step or, with `num_minibatches` M > 1, M steps on shuffled
sets of width / M rollouts (a learning batch's cost is its gradient work: 4 full-batch steps
on 64 RWARE episodes take about 13x a sampling batch with MAPPO and 40x with SABLE), on every
parameter or, with `scope="head"`, on the last layer of the actor and critic only. With
`imitation_coef > 0` the loss also pulls the policy towards the incumbent's actions along the
incumbent's trajectory, as efficient active search does. The driver leaves the gradient
steps out of a batch whose update no later batch could use (the last of a rollout budget, or
one that would end after the clock budget: `sample_batch`). A guard inside the jitted step
keeps the previous parameters whenever an update would make the parameters or logits
non-finite and clears `state.inner.finite`; `FineTune.check`, which the driver calls after
every batch, turns that into a `CeilingError`, and the driver stops with the best solution
found so far.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ceiling.errors import CeilingError
from ceiling.policies.networks import Params, Policy
from ceiling.policies.ppo import adam, gae, ppo_epochs, ppo_loss
from ceiling.policies.rollout import legal_logits_finite, record_episode
from ceiling.search.base import Batch, SearchState, Strategy, improved
from ceiling.search.options import (
    NON_NEGATIVE,
    POSITIVE,
    UNIT,
    StrategyOptions,
    at_least,
    one_of,
    option,
)

SCOPES = ("all", "head")


class Demonstration(NamedTuple):
    """The incumbent's trajectory, kept so that the imitation term needs no extra rollout."""

    observation: jax.Array  # [T, A, F] what the agents saw before each incumbent action
    action_mask: jax.Array  # [T, A, n]
    live: jax.Array  # [T] bool, the step was taken before the episode ended


class FineTuneInner(NamedTuple):
    opt_state: optax.OptState
    demonstration: Demonstration  # trajectory of the incumbent's actions
    finite: jax.Array  # [] bool; False once an update was refused for non-finite values


@dataclasses.dataclass(frozen=True)
class FineTuneOptions(StrategyOptions):
    """The defaults (learning rate 3e-4, 4 updates per batch, all parameters, no imitation)
    tied with every alternative tried in a sweep on rware:tiny-2ag-hard (BENCHMARKS.md,
    "Fine-tuning defaults")."""

    learning_rate: float = option(3e-4, POSITIVE, "Adam learning rate")
    num_updates: int = option(4, at_least(1), "passes over each batch of rollouts")
    num_minibatches: int = option(1, at_least(1), "gradient steps per pass, each on an equal "
                                  "share of the rollouts (must divide the width)")
    scope: str = option("all", one_of(SCOPES), "all parameters, or the last layer (head)")
    imitation_coef: float = option(0.0, NON_NEGATIVE, "weight of cloning the incumbent")
    temperature: float = option(1.0, POSITIVE, "softmax temperature of the sampled actions")
    clip_eps: float = option(0.2, NON_NEGATIVE, "PPO clip range")
    entropy_coef: float = option(0.01, NON_NEGATIVE, "entropy bonus")
    value_coef: float = option(0.5, NON_NEGATIVE, "value-loss weight")
    max_grad_norm: float = option(0.5, POSITIVE, "global gradient-norm clip")
    gamma: float = option(0.99, UNIT, "discount")
    gae_lambda: float = option(0.95, UNIT, "GAE lambda")


def all_finite(tree: Any) -> jax.Array:
    return jnp.stack([jnp.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(tree)]).all()


def imitation_loss(
    policy: Policy, params: Params, demonstration: Demonstration, actions: jax.Array
) -> jax.Array:
    """Mean negative log-likelihood of the incumbent's actions [T, A] along its live steps."""
    log_prob = policy.log_prob(params, demonstration.observation, demonstration.action_mask,
                               actions)
    weight = jnp.broadcast_to(demonstration.live[:, None], log_prob.shape).astype(jnp.float32)
    return -(log_prob * weight).sum() / jnp.maximum(weight.sum(), 1.0)


class FineTune(Strategy):
    """`width` stochastic rollouts from the current parameters, then PPO-loss gradient steps on them"""  # noqa: E501

    name = "finetune"
    Options = FineTuneOptions
    options: FineTuneOptions
    updates_parameters = True

    def setup(self) -> None:
        options = self.options
        if self.width % options.num_minibatches:
            raise CeilingError(
                f"finetune option num_minibatches must divide the width (parallel attempts) "
                f"{self.width}; got {options.num_minibatches}. Valid values: "
                f"{', '.join(str(m) for m in range(1, self.width + 1) if self.width % m == 0)}")
        optimizer = adam(options.learning_rate, options.max_grad_norm)
        if options.scope == "all":
            self.optimizer = optimizer
            return
        heads = self.policy.head_layers()  # the policy's output layers

        def labels(params: Params) -> Any:
            return jax.tree_util.tree_map_with_path(
                lambda path, _: "head" if any(getattr(k, "key", None) in heads for k in path)
                else "body", params)

        # Frozen leaves get exact zero updates, and gradient clipping sees only the head.
        self.optimizer = optax.multi_transform(
            {"head": optimizer, "body": optax.set_to_zero()}, labels)

    def init_inner(self, key: jax.Array, params: Params, instance_key: jax.Array) -> FineTuneInner:
        del key, instance_key
        spec = self.task.spec
        demonstration = Demonstration(
            observation=jnp.zeros((spec.horizon, spec.num_agents, *spec.observation_shape),
                                  jnp.float32),
            action_mask=jnp.ones((spec.horizon, spec.num_agents, spec.num_actions), bool),
            live=jnp.zeros(spec.horizon, bool),  # nothing to imitate before the first batch
        )
        return FineTuneInner(self.optimizer.init(params), demonstration, jnp.ones((), bool))

    def _sample(
        self, state: SearchState, key: jax.Array
    ) -> tuple[Any, Any, FineTuneInner, jax.Array]:
        """`width` episodes from the current parameters, the demonstration updated, and the
        actions it demonstrates (the incumbent's after this batch)."""
        inner = state.inner
        episodes, trajectories = jax.vmap(
            lambda k: record_episode(self.task, self.policy, state.params, state.instance_key,
                                     k, self.options.temperature)
        )(jax.random.split(key, self.width))
        transitions = trajectories.transitions
        # Same choice as the incumbent's: the first best episode, only if strictly better.
        best = jnp.argmax(episodes.total_return)
        new_best = improved(state, episodes)
        demonstration = jax.tree_util.tree_map(
            lambda new, old: jnp.where(new_best, new, old),
            Demonstration(transitions.observation[best], transitions.action_mask[best],
                          trajectories.live[best]),
            inner.demonstration,
        )
        demonstrated = jnp.where(new_best, episodes.actions[best], state.incumbent.actions)
        return (episodes, trajectories, inner._replace(demonstration=demonstration),
                demonstrated)

    def sample_batch(self, state: SearchState, key: jax.Array) -> Batch:
        """The batch's episodes without the gradient steps (nothing later would use them)."""
        rollout_key, _ = jax.random.split(key)
        episodes, trajectories, inner, _ = self._sample(state, rollout_key)
        return Batch(episodes, inner=inner._replace(
            finite=inner.finite & trajectories.finite.all()))

    def batch(self, state: SearchState, key: jax.Array) -> Batch:
        """Sample `width` episodes, then `num_updates` gradient steps on them."""
        options = self.options
        rollout_key, update_key = jax.random.split(key)
        episodes, trajectories, inner, demonstrated = self._sample(state, rollout_key)
        transitions, live = trajectories.transitions, trajectories.live
        demonstration = inner.demonstration

        # Time-major [T, W, ...] as `gae` scans over time. Every episode has ended by the
        # horizon, so the bootstrap value is never used.
        batch = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), transitions)
        advantages, targets = gae(batch, jnp.zeros_like(batch.value[0]), options.gamma,
                                  options.gae_lambda)

        # Minibatches are sets of attempts (the batch axis of the time-major [T, W, ...]
        # arrays); with one, every step sees every attempt, taken as it is rather than gathered
        # in a shuffled order, so the default program (and the stored results of the sweeps)
        # stays what it was before the option. Steps after an episode ended are absorbing
        # padding, masked out of the loss.
        def loss(params: Params, indices: jax.Array) -> tuple[jax.Array, None]:
            if options.num_minibatches == 1:
                chosen = (batch, advantages, targets, live.T)
            else:
                chosen = jax.tree_util.tree_map(lambda x: x[:, indices],
                                                (batch, advantages, targets, live.T))
            total, _ = ppo_loss(self.policy, options, params, *chosen[:3], live=chosen[3])
            if options.imitation_coef > 0:
                total = total + options.imitation_coef * imitation_loss(
                    self.policy, params, demonstration, demonstrated)
            return total, None

        params, opt_state, _ = ppo_epochs(loss, self.optimizer, state.params, inner.opt_state,
                                          update_key, self.width, options.num_updates,
                                          options.num_minibatches)
        new_logits = self.policy.conditional_logits(params, batch.observation,
                                                    batch.action_mask, batch.action)
        finite = (trajectories.finite.all() & all_finite(params)
                  & legal_logits_finite(new_logits, batch.action_mask))
        # Refuse a non-finite update rather than search on with corrupted parameters.
        params, opt_state = jax.tree_util.tree_map(
            lambda new, old: jnp.where(finite, new, old),
            (params, opt_state), (state.params, inner.opt_state))
        return Batch(episodes, params=params,
                     inner=FineTuneInner(opt_state, demonstration, inner.finite & finite))

    def check(self, state: SearchState) -> None:
        """Raise if any batch met non-finite parameters or logits (the incumbent is intact)."""
        if not bool(jnp.all(state.inner.finite)):
            raise CeilingError(
                "fine-tuning produced non-finite parameters or logits, so the update was "
                "refused and the best solution found so far is kept; if the checkpoint's own "
                "parameters are finite, try a smaller learning_rate (got "
                f"{self.options.learning_rate:g}) or max_grad_norm (got "
                f"{self.options.max_grad_norm:g})"
            )
