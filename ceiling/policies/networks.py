"""Actor-critic networks shared by IPPO and MAPPO, and the `act` function every consumer uses.

One set of actor parameters serves all agents (parameter sharing); agents are told apart by
the agent-id one-hot that every task appends to its observations. The critic sees the agent's
own observation (IPPO) or the global state plus the agent id (MAPPO). Masked actions get
`-inf` logits, so sampling and arg-max never pick an illegal action.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ceiling.errors import CeilingError
from ceiling.tasks.base import TaskSpec

ALGORITHMS = ("ippo", "mappo")
ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh, "gelu": nn.gelu}

Params = Any  # a pytree {"actor": ..., "critic": ...}


def _orthogonal(scale: float) -> nn.initializers.Initializer:
    return nn.initializers.orthogonal(scale)


class MLP(nn.Module):
    """Hidden layers with orthogonal init, then a linear head of `out_size` units."""

    hidden_sizes: Sequence[int]
    out_size: int
    activation: str
    head_scale: float

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for size in self.hidden_sizes:
            x = act(nn.Dense(size, kernel_init=_orthogonal(np.sqrt(2)))(x))
        return nn.Dense(self.out_size, kernel_init=_orthogonal(self.head_scale))(x)


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Everything needed to rebuild a policy's modules; stored in checkpoint manifests."""

    algorithm: str = "ippo"
    hidden_sizes: tuple[int, ...] = (128, 128)
    activation: str = "relu"

    def validate(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise CeilingError(
                f"unknown algorithm {self.algorithm!r}; valid: {', '.join(ALGORITHMS)}"
            )
        if self.activation not in ACTIVATIONS:
            raise CeilingError(
                f"unknown activation {self.activation!r}; valid: {', '.join(ACTIVATIONS)}"
            )
        if not self.hidden_sizes or any(int(h) < 1 for h in self.hidden_sizes):
            raise CeilingError(f"hidden_sizes must be positive integers, got {self.hidden_sizes}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            "hidden_sizes": list(self.hidden_sizes),
            "activation": self.activation,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkConfig:
        return cls(
            algorithm=str(data["algorithm"]),
            hidden_sizes=tuple(int(h) for h in data["hidden_sizes"]),
            activation=str(data["activation"]),
        )


class Policy:
    """A task's actor-critic: pure functions over an explicit params pytree."""

    def __init__(self, spec: TaskSpec, config: NetworkConfig) -> None:
        config.validate()
        if len(spec.observation_shape) != 1 or len(spec.global_state_shape) != 1:
            raise CeilingError(f"MLP policies need flat observations; {spec.name} has "
                               f"{spec.observation_shape} and {spec.global_state_shape}")
        self.spec = spec
        self.config = config
        self.actor = MLP(config.hidden_sizes, spec.num_actions, config.activation, 0.01)
        self.critic = MLP(config.hidden_sizes, 1, config.activation, 1.0)

    # Policies are static arguments of jitted functions: equal by value, so reloading the same
    # kind of checkpoint reuses compiled code instead of recompiling.
    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Policy) and type(other) is type(self)
                and (self.spec, self.config) == (other.spec, other.config))

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.spec, self.config))

    def init(self, key: jax.Array) -> Params:
        actor_key, critic_key = jax.random.split(key)
        obs = jnp.zeros((self.spec.num_agents, *self.spec.observation_shape), jnp.float32)
        critic_in = self.critic_input(obs, jnp.zeros(self.spec.global_state_shape, jnp.float32))
        return {
            "actor": self.actor.init(actor_key, obs),
            "critic": self.critic.init(critic_key, critic_in),
        }

    def act(
        self,
        params: Params,
        observation: jax.Array,
        action_mask: jax.Array,
        latent: jax.Array | None = None,
    ) -> jax.Array:
        """Masked logits [..., A, num_actions] for observations [..., A, obs_dim]."""
        if latent is not None:
            raise CeilingError("this policy is not latent-conditioned; pass latent=None")
        logits = cast(jax.Array, self.actor.apply(params["actor"], observation))
        return jnp.where(action_mask, logits, -jnp.inf)

    def critic_input(self, observation: jax.Array, global_state: jax.Array) -> jax.Array:
        """[..., A, F] critic features: own observation (IPPO) or global state + agent id."""
        if self.config.algorithm == "ippo":
            return observation
        num_agents = self.spec.num_agents
        batch = observation.shape[:-2]
        state = jnp.broadcast_to(
            global_state[..., None, :], (*batch, num_agents, global_state.shape[-1])
        )
        ids = jnp.broadcast_to(
            jnp.eye(num_agents, dtype=jnp.float32), (*batch, num_agents, num_agents)
        )
        return jnp.concatenate([state, ids], axis=-1)

    def value(self, params: Params, observation: jax.Array, global_state: jax.Array) -> jax.Array:
        """Per-agent value estimates [..., A] from observations [..., A, F] and state [..., G]."""
        features = self.critic_input(observation, global_state)
        return cast(jax.Array, self.critic.apply(params["critic"], features))[..., 0]

    def num_parameters(self, params: Params) -> int:
        return int(sum(np.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(params)))


def greedy_action(logits: jax.Array) -> jax.Array:
    """Arg-max joint action [..., A] from masked logits."""
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def sample_action(key: jax.Array, logits: jax.Array, temperature: float = 1.0) -> jax.Array:
    """A joint action [..., A] sampled from the masked categorical at `temperature`."""
    return jax.random.categorical(key, logits / temperature, axis=-1).astype(jnp.int32)
