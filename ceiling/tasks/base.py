"""The Task contract: a cooperative multi-agent Dec-POMDP as pure, jittable JAX functions.

Every family (RWARE, Connector, SMAX) is wrapped into the same shape so that trainers and
search strategies never look at a family's own types. The random key lives in the state, so a
state is a plain pytree that can be copied, stored in a beam or vmapped; stepping is
deterministic given the state (the step key is `fold_in(instance_key, step_index)`). Episodes
end on the family's own termination or on the task horizon, after which the state is
*absorbing*: further steps change nothing and give zero reward, so a fixed-length `lax.scan`
over `horizon` steps always computes the exact episode return. A spec also names the parts of
the flat per-agent observation (`observation_fields`; `split_observation` cuts a vector into
them) for networks that read the parts apart, such as attention over units or cells.
"""

from __future__ import annotations

import abc
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ceiling.errors import CeilingError

# (name, per-agent shape) of each named part of a flat observation, in the vector's order.
ObservationFields = tuple[tuple[str, tuple[int, ...]], ...]


class TaskSpec(NamedTuple):
    """Static description of a task. Shapes are per agent unless said otherwise."""

    name: str  # "family:task", e.g. "rware:tiny-2ag-hard"
    num_agents: int
    observation_shape: tuple[int, ...]  # per agent, agent-id one-hot included
    num_actions: int
    global_state_shape: tuple[int, ...]  # one vector for the whole team
    horizon: int  # maximum episode length in steps
    has_win: bool  # whether `TimeStep.won` means anything
    # What the flat observation is made of: named fields whose flattened sizes add up to
    # observation_shape[0], each stored row-major in the given order. Empty: undescribed.
    observation_fields: ObservationFields = ()

    @property
    def family(self) -> str:
        return self.name.split(":", 1)[0]

    @property
    def fields(self) -> ObservationFields:
        """`observation_fields`, or one field "observation" when the task describes none."""
        return self.observation_fields or (("observation", self.observation_shape),)


def split_observation(spec: TaskSpec, observation: Any) -> dict[str, Any]:
    """Observation [..., obs_dim] -> {field name: [..., *field shape]}, in the spec's order.

    Works on JAX and NumPy arrays alike; concatenating the fields, each flattened over its own
    shape, gives back `observation`.
    """
    sizes = [math.prod(shape) for _, shape in spec.fields]
    if len(spec.observation_shape) != 1 or sum(sizes) != spec.observation_shape[0]:
        raise CeilingError(f"{spec.name}'s observation fields add up to {sum(sizes)} features, "
                           f"but its observation shape is {spec.observation_shape}")
    if observation.shape[-1:] != spec.observation_shape:
        raise CeilingError(f"observation of shape {observation.shape} does not end in "
                           f"{spec.name}'s observation shape {spec.observation_shape}")
    batch = observation.shape[:-1]
    parts: dict[str, Any] = {}
    start = 0
    for (name, shape), size in zip(spec.fields, sizes, strict=True):
        parts[name] = observation[..., start:start + size].reshape(*batch, *shape)
        start += size
    return parts


class TimeStep(NamedTuple):
    """What the agents see after a reset or a step."""

    observation: jax.Array  # [A, *observation_shape] float32
    action_mask: jax.Array  # [A, num_actions] bool; every agent has at least one legal action
    reward: jax.Array  # [] float32, team reward of the last transition (0 after a reset)
    done: jax.Array  # [] bool, the episode has ended (termination or horizon)
    global_state: jax.Array  # [*global_state_shape] float32, for centralised critics
    won: jax.Array  # [] bool; always False where the task has no win condition


class TaskState(NamedTuple):
    """A complete, copyable search node."""

    env: Any  # the wrapped family's own state pytree
    key: jax.Array  # the instance key; step randomness is fold_in(key, step)
    step: jax.Array  # [] int32 steps taken so far
    timestep: TimeStep  # the latest timestep, repeated while the state is absorbing


class Observed(NamedTuple):
    """What a family adapter returns about a state: the parts of a TimeStep it owns."""

    observation: jax.Array
    action_mask: jax.Array
    global_state: jax.Array


class Task(abc.ABC):
    """Base class: subclasses implement `_reset` and `_step`; this class owns the contract."""

    spec: TaskSpec

    # -- what a family adapter implements ------------------------------------------------
    @abc.abstractmethod
    def _reset(self, key: jax.Array) -> tuple[Any, Observed]:
        """A fresh instance drawn from `key`."""

    @abc.abstractmethod
    def _step(
        self, env_state: Any, action: jax.Array, key: jax.Array
    ) -> tuple[Any, Observed, jax.Array, jax.Array, jax.Array]:
        """One transition: (env_state, observed, team_reward [], terminated [], won [])."""

    # -- the contract --------------------------------------------------------------------
    def reset(self, key: jax.Array) -> tuple[TaskState, TimeStep]:
        """Start the instance identified by `key` (a raw uint32[2] PRNG key)."""
        env_state, observed = self._reset(key)
        timestep = TimeStep(
            observation=observed.observation.astype(jnp.float32),
            action_mask=observed.action_mask.astype(bool),
            reward=jnp.zeros((), jnp.float32),
            done=jnp.zeros((), bool),
            global_state=observed.global_state.astype(jnp.float32),
            won=jnp.zeros((), bool),
        )
        state = TaskState(env=env_state, key=key, step=jnp.zeros((), jnp.int32), timestep=timestep)
        return state, timestep

    def step(self, state: TaskState, action: jax.Array) -> tuple[TaskState, TimeStep]:
        """Apply the joint action `action` [A] int32. A done state is absorbing."""
        step_key = jax.random.fold_in(state.key, state.step)
        env_state, observed, reward, terminated, won = self._step(state.env, action, step_key)
        step = state.step + 1
        fresh = TimeStep(
            observation=observed.observation.astype(jnp.float32),
            action_mask=observed.action_mask.astype(bool),
            reward=jnp.asarray(reward, jnp.float32),
            done=jnp.asarray(terminated, bool) | (step >= self.spec.horizon),
            global_state=observed.global_state.astype(jnp.float32),
            won=jnp.asarray(won, bool),
        )
        finished = state.timestep.done
        frozen = state.timestep._replace(reward=jnp.zeros((), jnp.float32))
        timestep = _select(finished, frozen, fresh)
        env_state = _select(finished, state.env, env_state)
        step = jnp.where(finished, state.step, step)
        return TaskState(env=env_state, key=state.key, step=step, timestep=timestep), timestep

    def __repr__(self) -> str:
        return f"Task({self.spec.name!r})"


def _select(pred: jax.Array, on_true: Any, on_false: Any) -> Any:
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def agent_ids(num_agents: int) -> jax.Array:
    """[A, A] one-hot agent identities appended to every observation."""
    return jnp.eye(num_agents, dtype=jnp.float32)


def with_agent_ids(features: jax.Array) -> jax.Array:
    """[A, F] per-agent features -> [A, F + A] with the agent-id one-hot appended."""
    return jnp.concatenate([features.astype(jnp.float32), agent_ids(features.shape[0])], axis=-1)
