"""Online fine-tuning: adapt the policy's parameters to the one instance being solved.

Each batch samples `width` stochastic rollouts of the instance from the current parameters,
keeps the best episode in the incumbent, then takes `num_updates` full-batch gradient steps
of the PPO training loss (`ceiling.training.ppo.ppo_loss`, advantages from its `gae`) on
those rollouts, on every parameter or, with `scope="head"`, on the last layer of the actor
and critic only. With `imitation_coef > 0` the loss also pulls the policy towards the
incumbent's actions along the incumbent's trajectory, as efficient active search does. A
guard inside the jitted step keeps the previous parameters whenever an update would make the
parameters or logits non-finite and clears `state.finite`; `FineTune.check`, which the driver
calls after every batch, turns that into a `CeilingError`, and the driver stops with the best
solution found so far.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ceiling.errors import CeilingError
from ceiling.policies.networks import Params, Policy, sample_action
from ceiling.policies.rollout import Episode
from ceiling.search.base import Incumbent, Strategy, empty_incumbent, improve
from ceiling.tasks.base import Task
from ceiling.training.config import PPOConfig
from ceiling.training.ppo import Transition, gae, make_optimizer, masked_log_softmax, ppo_loss

SCOPES = ("all", "head")
Rule = tuple[str, Callable[[float], bool]]  # (what is valid, in words; the test)


class Demonstration(NamedTuple):
    """The incumbent's trajectory, kept so that the imitation term needs no extra rollout."""

    observation: jax.Array  # [T, A, F] what the agents saw before each incumbent action
    action_mask: jax.Array  # [T, A, n]
    live: jax.Array  # [T] bool, the step was taken before the episode ended


class FineTuneState(NamedTuple):
    params: Params
    opt_state: optax.OptState
    instance_key: jax.Array
    key: jax.Array
    incumbent: Incumbent
    demonstration: Demonstration  # trajectory of `incumbent.actions`
    finite: jax.Array  # [] bool; False once an update was refused for non-finite values


def record_episode(
    task: Task,
    policy: Policy,
    params: Params,
    instance_key: jax.Array,
    key: jax.Array,
    temperature: float = 1.0,
    latent: jax.Array | None = None,
) -> tuple[Episode, Transition, jax.Array, jax.Array]:
    """One sampled episode and what the loss needs about each of its T = horizon steps.

    `latent` [d] conditions a COMPASS policy (COMPASS training records its winners with it).

    Returns the `Episode` (actions [T, A], exactly what replays), its transitions [T, ...],
    `live` [T] (the step was taken before the episode ended) and whether every legal logit
    was finite []. Actions are drawn as in `run_episode(greedy=False)`, key for key.
    """
    state, timestep = task.reset(instance_key)

    def body(carry: Any, step_key: jax.Array) -> tuple[Any, tuple[Transition, jax.Array]]:
        state, timestep = carry
        logits = policy.act(params, timestep.observation, timestep.action_mask, latent)
        action = sample_action(step_key, logits, temperature)
        # The log-probability under the untempered policy, the one the loss trains, so that
        # the PPO ratio starts at 1 whatever the sampling temperature.
        log_prob = jnp.take_along_axis(masked_log_softmax(logits), action[..., None], -1)[..., 0]
        value = policy.value(params, timestep.observation, timestep.global_state)
        state, next_timestep = task.step(state, action)
        transition = Transition(
            observation=timestep.observation, action_mask=timestep.action_mask,
            global_state=timestep.global_state, action=action, log_prob=log_prob, value=value,
            reward=next_timestep.reward, done=next_timestep.done,
        )
        finite = legal_logits_finite(logits, timestep.action_mask)
        return (state, next_timestep), (transition, jnp.stack([~timestep.done, finite]))

    step_keys = jax.random.split(key, task.spec.horizon)
    (state, timestep), (transitions, flags) = jax.lax.scan(body, (state, timestep), step_keys)
    episode = Episode(actions=transitions.action, total_return=transitions.reward.sum(),
                      won=timestep.won, length=state.step)
    return episode, transitions, flags[:, 0], flags[:, 1].all()


def legal_logits_finite(logits: jax.Array, action_mask: jax.Array) -> jax.Array:
    """Whether every legal action's logit is finite (masked ones are -inf by design)."""
    return jnp.where(action_mask, jnp.isfinite(logits), True).all()


def all_finite(tree: Any) -> jax.Array:
    return jnp.stack([jnp.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(tree)]).all()


def imitation_loss(
    policy: Policy, params: Params, demonstration: Demonstration, actions: jax.Array
) -> jax.Array:
    """Mean negative log-likelihood of the incumbent's actions [T, A] along its live steps."""
    logits = policy.act(params, demonstration.observation, demonstration.action_mask)
    log_prob = jnp.take_along_axis(masked_log_softmax(logits), actions[..., None], -1)[..., 0]
    weight = jnp.broadcast_to(demonstration.live[:, None], log_prob.shape).astype(jnp.float32)
    return -(log_prob * weight).sum() / jnp.maximum(weight.sum(), 1.0)


def _number(name: str, value: Any, rule: str, test: Callable[[float], bool]) -> float:
    """`value` as a float, or a CeilingError naming the option and its valid range."""
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or not test(value):
        raise CeilingError(f"finetune option {name} must be a finite number {rule}, "
                           f"got {value!r}")
    return float(value)


class FineTune(Strategy):
    """Fine-tuning search. The defaults (learning rate 3e-4, 4 updates per batch, all
    parameters, no imitation) tied with every alternative tried in a sweep on
    rware:tiny-2ag-hard (BENCHMARKS.md, "Fine-tuning defaults")."""

    name = "finetune"

    def __init__(
        self,
        task: Task,
        policy: Policy,
        width: int,
        learning_rate: float = 3e-4,
        num_updates: int = 4,  # gradient steps on each batch of rollouts
        scope: str = "all",  # "all" parameters, or only the last layer ("head")
        imitation_coef: float = 0.0,  # weight of the behaviour-cloning term to the incumbent
        temperature: float = 1.0,
        clip_eps: float = 0.2,
        entropy_coef: float = 0.01,
        value_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
    ) -> None:
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise CeilingError(f"width (parallel attempts) must be an integer >= 1, got {width!r}")
        if isinstance(num_updates, bool) or not isinstance(num_updates, int) or num_updates < 1:
            raise CeilingError(f"finetune option num_updates must be an integer >= 1, "
                               f"got {num_updates!r}")
        if scope not in SCOPES:
            raise CeilingError(f"finetune option scope must be one of {', '.join(SCOPES)}, "
                               f"got {scope!r}")
        positive: Rule = ("> 0", lambda v: v > 0)
        non_negative: Rule = (">= 0", lambda v: v >= 0)
        unit: Rule = ("in [0, 1]", lambda v: 0 <= v <= 1)
        checks: dict[str, tuple[Any, Rule]] = {
            "learning_rate": (learning_rate, positive), "temperature": (temperature, positive),
            "max_grad_norm": (max_grad_norm, positive),
            "imitation_coef": (imitation_coef, non_negative),
            "clip_eps": (clip_eps, non_negative), "entropy_coef": (entropy_coef, non_negative),
            "value_coef": (value_coef, non_negative),
            "gamma": (gamma, unit), "gae_lambda": (gae_lambda, unit),
        }
        values = {field: _number(field, value, *rule) for field, (value, rule) in checks.items()}
        self.task, self.policy, self.width = task, policy, width
        self.num_updates, self.scope = num_updates, scope
        self.imitation_coef, self.temperature = values["imitation_coef"], values["temperature"]
        # The training loss and optimiser read their coefficients from a PPOConfig.
        self.config = PPOConfig(
            algorithm=policy.config.algorithm, learning_rate=values["learning_rate"],
            clip_eps=values["clip_eps"], entropy_coef=values["entropy_coef"],
            value_coef=values["value_coef"], max_grad_norm=values["max_grad_norm"],
            gamma=values["gamma"], gae_lambda=values["gae_lambda"],
        )
        self.optimizer = self._make_optimizer()

    def _make_optimizer(self) -> optax.GradientTransformation:
        optimizer = make_optimizer(self.config)
        if self.scope == "all":
            return optimizer
        head = f"Dense_{len(self.policy.config.hidden_sizes)}"  # the MLP's output layer

        def labels(params: Params) -> Any:
            return jax.tree_util.tree_map_with_path(
                lambda path, _: "head" if any(getattr(k, "key", None) == head for k in path)
                else "body", params)

        # Frozen leaves get exact zero updates, and gradient clipping sees only the head.
        return optax.multi_transform({"head": optimizer, "body": optax.set_to_zero()}, labels)

    def init(self, key: jax.Array, params: Params, instance_key: jax.Array) -> FineTuneState:
        spec = self.task.spec
        demonstration = Demonstration(
            observation=jnp.zeros((spec.horizon, spec.num_agents, *spec.observation_shape),
                                  jnp.float32),
            action_mask=jnp.ones((spec.horizon, spec.num_agents, spec.num_actions), bool),
            live=jnp.zeros(spec.horizon, bool),  # nothing to imitate before the first batch
        )
        return FineTuneState(params, self.optimizer.init(params), instance_key, key,
                             empty_incumbent(self.task), demonstration, jnp.ones((), bool))

    def step(self, state: FineTuneState) -> FineTuneState:
        """Sample `width` episodes, keep the best, then `num_updates` gradient steps on them."""
        key, batch_key = jax.random.split(state.key)
        episodes, transitions, live, rollout_finite = jax.vmap(
            lambda k: record_episode(self.task, self.policy, state.params, state.instance_key,
                                     k, self.temperature)
        )(jax.random.split(batch_key, self.width))
        incumbent = improve(state.incumbent, episodes)
        # Same choice as `improve`: the first best episode, only if strictly better.
        best = jnp.argmax(episodes.total_return)
        demonstration = jax.tree_util.tree_map(
            lambda new, old: jnp.where(incumbent.total_return > state.incumbent.total_return,
                                       new, old),
            Demonstration(transitions.observation[best], transitions.action_mask[best],
                          live[best]),
            state.demonstration,
        )

        # Time-major [T, W, ...] as `gae` scans over time. Every episode has ended by the
        # horizon, so the bootstrap value is never used.
        batch = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), transitions)
        advantages, targets = gae(batch, jnp.zeros_like(batch.value[0]), self.config.gamma,
                                  self.config.gae_lambda)
        # Steps after an episode ended are absorbing padding: masked out of the loss.
        def loss(params: Params) -> jax.Array:
            total, _ = ppo_loss(self.policy, self.config, params, batch, advantages, targets,
                                live=live.T)
            if self.imitation_coef > 0:
                total = total + self.imitation_coef * imitation_loss(
                    self.policy, params, demonstration, incumbent.actions)
            return total

        def update(carry: tuple[Params, optax.OptState], _: None) -> Any:
            params, opt_state = carry
            updates, opt_state = self.optimizer.update(jax.grad(loss)(params), opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        (params, opt_state), _ = jax.lax.scan(
            update, (state.params, state.opt_state), None, self.num_updates)
        new_logits = self.policy.act(params, batch.observation, batch.action_mask)
        finite = (rollout_finite.all() & all_finite(params)
                  & legal_logits_finite(new_logits, batch.action_mask))
        # Refuse a non-finite update rather than search on with corrupted parameters.
        params, opt_state = jax.tree_util.tree_map(
            lambda new, old: jnp.where(finite, new, old),
            (params, opt_state), (state.params, state.opt_state))
        return FineTuneState(params, opt_state, state.instance_key, key, incumbent,
                             demonstration, state.finite & finite)

    def check(self, state: FineTuneState) -> None:
        """Raise if any batch met non-finite parameters or logits (the incumbent is intact)."""
        if not bool(jnp.all(state.finite)):
            raise CeilingError(
                "fine-tuning produced non-finite parameters or logits, so the update was "
                "refused and the best solution found so far is kept; if the checkpoint's own "
                "parameters are finite, try a smaller learning_rate (got "
                f"{self.config.learning_rate:g}) or max_grad_norm (got "
                f"{self.config.max_grad_norm:g})"
            )
