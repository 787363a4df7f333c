"""Policy networks: the architecture registry, the `Policy` contract, and the MLP actor-critic.

A `Policy` is a set of pure functions over an explicit params pytree: `init(key)`,
`act(params, observation, action_mask, latent=None)` -> masked logits for all agents at once,
and `value(params, observation, global_state)`. Joint actions are chosen, scored and expanded
through the policy too (`decide`, `sample`, `greedy`, `conditional_logits`, `log_prob`,
`expand`): the defaults treat `act`'s logits as independent per-agent distributions, and an
autoregressive policy (SABLE, `ceiling.policies.sable`), whose agents act one after another
each conditioned on the actions before it, overrides them; no consumer assumes either kind.
Which network computes them is named by `NetworkConfig.architecture` and looked up in a
registry (`register_architecture`, `make_policy`), so trainers, search strategies and
checkpoints never name a network class.
`Policy(spec, config)` is the same as `make_policy(spec, config)`: called on the base class, it
builds the registered class. The base class assumes nothing about the network's inputs beyond
the task spec; a sequence model over agents or an attention encoder over the named observation
fields (`TaskSpec.observation_fields`) fits the same contract.

The "mlp" architecture is the actor-critic shared by IPPO and MAPPO. One set of actor
parameters serves all agents (parameter sharing); agents are told apart by the agent-id one-hot
that every task appends to its observations. The critic sees the agent's own observation (IPPO)
or the global state plus the agent id (MAPPO). Masked actions get `-inf` logits, so sampling
and arg-max never pick an illegal action.

An MLP policy may also be conditioned on a latent vector z (COMPASS, `ceiling.training.compass`):
one z per attempt, shared by all agents, enters the actor's first hidden layer through a
low-rank map `latent_out(latent_in(z))`. `latent_out` starts at zero, so a freshly conditioned
policy acts exactly like its base policy for every z, and the rank keeps the added parameters
small (rank 4 with a 16-d latent and 128 hidden units: 576 parameters, about 1 % of the
shipped networks). The prior over z is uniform on [-1, 1]^d.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Self, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ceiling.errors import CeilingError
from ceiling.policies.joint import (
    action_log_prob,
    first_occurrences,
    greedy_action,
    sample_action,
    top_k_joint_actions,
)
from ceiling.tasks.base import TaskSpec

# The trained policies: the critic of an MLP (own observation: ippo; global state: mappo), or
# the SABLE sequence model with its own per-agent value head (architecture "sable").
ALGORITHMS = ("ippo", "mappo", "sable")
ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh, "gelu": nn.gelu}

Params = Any  # a pytree {"actor": ..., "critic": ...}
LATENT_LOW, LATENT_HIGH = -1.0, 1.0
LATENT_PRIOR = "uniform[-1, 1]"  # the prior over latents, recorded in manifests


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


class ConditionedMLP(nn.Module):
    """`MLP` whose first hidden pre-activation (or its first `latent_layers`, full rank) also
    receives a map of a latent z.

    `latent_rank` > 0: a low-rank map `latent_out(latent_in(z))` whose output weights start at
    zero (the first COMPASS design, kept so its checkpoints load). `latent_rank` = 0: a
    full-rank map `latent_full(latent_scale * z)`, no bias, so z = 0 adds nothing; the input
    scale makes each Adam step move the latent pathway `latent_scale` times further; with
    `latent_layers` > 1 the next hidden layers get maps of their own (`latent_full_1`, ...).
    The layer names of `MLP` are kept (Dense_0, Dense_1, ...), so a base actor's parameters
    slot in unchanged next to the new ones.
    """

    hidden_sizes: Sequence[int]
    out_size: int
    activation: str
    head_scale: float
    latent_rank: int
    latent_scale: float = 1.0
    latent_layers: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, z: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for index, size in enumerate(self.hidden_sizes):
            h = nn.Dense(size, kernel_init=_orthogonal(np.sqrt(2)), name=f"Dense_{index}")(x)
            if index == 0 and self.latent_rank > 0:
                code = nn.Dense(self.latent_rank, use_bias=False,
                                kernel_init=_orthogonal(1.0), name="latent_in")(z)
                h = h + nn.Dense(size, use_bias=False, kernel_init=nn.initializers.zeros,
                                 name="latent_out")(code)
            elif index < self.latent_layers and self.latent_rank == 0:
                name = "latent_full" if index == 0 else f"latent_full_{index}"
                h = h + nn.Dense(size, use_bias=False, kernel_init=nn.initializers.zeros,
                                 name=name)(self.latent_scale * z)
            x = act(h)
        return nn.Dense(self.out_size, kernel_init=_orthogonal(self.head_scale),
                        name=f"Dense_{len(self.hidden_sizes)}")(x)


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Everything needed to rebuild a policy's modules; stored in checkpoint manifests."""

    algorithm: str = "ippo"  # the critic: own observation (ippo) or global state (mappo)
    hidden_sizes: tuple[int, ...] = (128, 128)
    activation: str = "relu"
    latent_dim: int = 0  # > 0: a COMPASS latent-conditioned actor
    latent_rank: int = 4  # rank of the latent's input map (when latent_dim > 0); 0: full rank
    architecture: str = "mlp"  # a name in the architecture registry (`architectures()`)
    latent_scale: float = 1.0  # the latent's input scale (full-rank map)
    latent_layers: int = 1  # MLP hidden layers that receive the latent (full-rank map)
    # SABLE only (hidden_sizes and activation are the MLP's):
    embed_dim: int = 64  # width of every token (observation and action embeddings)
    num_blocks: int = 1  # retention blocks in the encoder, and again in the decoder
    num_heads: int = 1  # retention heads, each with its own decay across agents

    @property
    def conditioned(self) -> bool:
        return self.latent_dim > 0

    @property
    def label(self) -> str:
        """What manifests and tables call the policy: ippo, mappo or compass."""
        return "compass" if self.conditioned else self.algorithm

    def validate(self) -> None:
        if self.architecture not in architectures():
            raise CeilingError(f"unknown architecture {self.architecture!r}; "
                               f"valid: {', '.join(architectures())}")
        if self.algorithm not in ALGORITHMS:
            raise CeilingError(
                f"unknown algorithm {self.algorithm!r}; valid: {', '.join(ALGORITHMS)}"
            )
        if (self.algorithm == "sable") != (self.architecture == "sable"):
            raise CeilingError(f"algorithm {self.algorithm!r} does not fit architecture "
                               f"{self.architecture!r}: the sable algorithm is the sable "
                               "architecture, and ippo/mappo name an MLP critic")
        if min(self.embed_dim, self.num_blocks, self.num_heads) < 1 or (
                self.embed_dim % self.num_heads):
            raise CeilingError(f"embed_dim, num_blocks and num_heads must be positive and "
                               f"num_heads must divide embed_dim, got {self.embed_dim}, "
                               f"{self.num_blocks} and {self.num_heads}")
        if self.activation not in ACTIVATIONS:
            raise CeilingError(
                f"unknown activation {self.activation!r}; valid: {', '.join(ACTIVATIONS)}"
            )
        if not self.hidden_sizes or any(int(h) < 1 for h in self.hidden_sizes):
            raise CeilingError(f"hidden_sizes must be positive integers, got {self.hidden_sizes}")
        if self.latent_dim < 0 or self.latent_rank < 0 or not self.latent_scale > 0:
            raise CeilingError(f"latent_dim and latent_rank must be >= 0 (rank 0: full rank) "
                               f"and latent_scale > 0, got {self.latent_dim}, "
                               f"{self.latent_rank} and {self.latent_scale}")
        deepest = len(self.hidden_sizes) if self.architecture == "mlp" and (
            self.latent_rank == 0) else 1
        if not 1 <= self.latent_layers <= deepest:
            raise CeilingError(f"latent_layers must be in [1, {deepest}] here, got "
                               f"{self.latent_layers}: a latent reaches up to every hidden "
                               "layer of a full-rank conditioned MLP, and the first layer "
                               "only of a low-rank map or of SABLE")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "architecture": self.architecture,
            "algorithm": self.algorithm,
            "hidden_sizes": list(self.hidden_sizes),
            "activation": self.activation,
        }
        if self.architecture == "sable":
            data.update(embed_dim=self.embed_dim, num_blocks=self.num_blocks,
                        num_heads=self.num_heads)
        if self.conditioned:
            data.update(latent_dim=self.latent_dim, latent_rank=self.latent_rank,
                        latent_prior=LATENT_PRIOR)
            if self.latent_rank == 0:
                data["latent_scale"] = self.latent_scale
            if self.latent_layers != 1:
                data["latent_layers"] = self.latent_layers
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkConfig:
        """The inverse of `to_dict`; a dict without `architecture` (format 1) means "mlp"."""
        return cls(
            algorithm=str(data["algorithm"]),
            hidden_sizes=tuple(int(h) for h in data["hidden_sizes"]),
            activation=str(data["activation"]),
            latent_dim=int(data.get("latent_dim", 0)),
            latent_rank=int(data.get("latent_rank", 4)),
            architecture=str(data.get("architecture", "mlp")),
            latent_scale=float(data.get("latent_scale", 1.0)),
            latent_layers=int(data.get("latent_layers", 1)),
            embed_dim=int(data.get("embed_dim", 64)),
            num_blocks=int(data.get("num_blocks", 1)),
            num_heads=int(data.get("num_heads", 1)),
        )


# -- the architecture registry -------------------------------------------------------------

ARCHITECTURES: dict[str, type[Policy]] = {}
# Architectures defined in other modules, imported on first use so that `make_policy` finds
# them without its caller importing them: {name: module that registers it}.
ARCHITECTURE_MODULES: dict[str, str] = {"sable": "ceiling.policies.sable"}


def register_architecture(name: str) -> Callable[[type[Policy]], type[Policy]]:
    """Class decorator: `make_policy` builds `config.architecture == name` with this class."""

    def register(cls: type[Policy]) -> type[Policy]:
        if name in ARCHITECTURES and ARCHITECTURES[name] is not cls:
            raise CeilingError(f"architecture {name!r} is already registered to "
                               f"{ARCHITECTURES[name].__qualname__}")
        cls.architecture = name
        ARCHITECTURES[name] = cls
        return cls

    return register


def architectures() -> tuple[str, ...]:
    """Every architecture name `make_policy` accepts, sorted."""
    return tuple(sorted(set(ARCHITECTURES) | set(ARCHITECTURE_MODULES)))


def policy_class(architecture: str) -> type[Policy]:
    """The class registered for `architecture`; a `CeilingError` naming the valid ones if none."""
    if architecture not in ARCHITECTURES and architecture in ARCHITECTURE_MODULES:
        importlib.import_module(ARCHITECTURE_MODULES[architecture])
    if architecture not in ARCHITECTURES:
        raise CeilingError(f"unknown architecture {architecture!r}; "
                           f"valid: {', '.join(architectures())}")
    return ARCHITECTURES[architecture]


def make_policy(spec: TaskSpec, config: NetworkConfig) -> Policy:
    """The policy network `config.architecture` for the task `spec`."""
    return policy_class(config.architecture)(spec, config)


class Policy:
    """A task's actor-critic: pure functions over an explicit params pytree.

    Subclasses register with `register_architecture(name)` and implement `init`, `act` and
    `value`; this class owns construction, validation and value equality. `Policy(spec,
    config)` builds the class registered for `config.architecture` (as `make_policy` does).

    The joint-action methods (`decide` and the rest) default to a factorised policy: `act`'s
    logits are independent per-agent distributions. An autoregressive policy overrides them
    and sets `autoregressive`; `conditionable` says whether `condition` can add a latent input.
    """

    architecture: ClassVar[str] = ""  # set by `register_architecture`
    autoregressive: ClassVar[bool] = False  # agents act in turn, each seeing earlier actions
    conditionable: ClassVar[bool] = False  # `condition` can add a COMPASS latent input

    def __new__(cls, spec: TaskSpec | None = None, config: NetworkConfig | None = None) -> Self:
        # Both default to None so that copy and pickle, which call `cls.__new__(cls)`, work.
        target: type[Policy] = cls
        if cls is Policy and config is not None:
            target = policy_class(config.architecture)
        return cast(Self, object.__new__(target))

    def __init__(self, spec: TaskSpec, config: NetworkConfig) -> None:
        config.validate()
        if config.architecture != self.architecture:
            raise CeilingError(f"{type(self).__name__} builds the {self.architecture!r} "
                               f"architecture, not {config.architecture!r}; use make_policy")
        self.spec = spec
        self.config = config

    # Policies are static arguments of jitted functions: equal by value, so reloading the same
    # kind of checkpoint reuses compiled code instead of recompiling.
    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Policy) and type(other) is type(self)
                and (self.spec, self.config) == (other.spec, other.config))

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.spec, self.config))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.name!r}, {self.config})"

    def init(self, key: jax.Array) -> Params:
        """Fresh parameters {"actor": ..., "critic": ...} drawn from `key`."""
        raise NotImplementedError

    def act(
        self,
        params: Params,
        observation: jax.Array,
        action_mask: jax.Array,
        latent: jax.Array | None = None,
    ) -> jax.Array:
        """Masked logits [..., A, num_actions] for all agents' observations [..., A, *obs].

        Masked actions get `-inf`. A latent-conditioned policy takes `latent` [..., latent_dim]
        (one per attempt, shared by its agents); None means the centre of the prior.
        """
        raise NotImplementedError

    def value(self, params: Params, observation: jax.Array, global_state: jax.Array) -> jax.Array:
        """Per-agent values [..., A] from observations [..., A, *obs] and state [..., *G]."""
        raise NotImplementedError

    def num_parameters(self, params: Params) -> int:
        return int(sum(np.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(params)))

    def acting(self, params: Params) -> tuple[Policy, Params]:
        """This policy and its parameters reduced to what acting reads (`decide`, never
        `value`), so that programs that only act compile once for policies whose actors are
        alike: zero-shot evaluation of an IPPO and a MAPPO checkpoint shares one program. The
        default keeps everything."""
        return self, params

    def head_layers(self) -> tuple[str, ...]:
        """Names of the output layers (policy logits, value), what fine-tuning's `head` scope
        trains: any parameter whose path contains one of them."""
        raise NotImplementedError

    # -- joint actions -------------------------------------------------------------------------
    def decide(
        self,
        params: Params,
        observation: jax.Array,
        action_mask: jax.Array,
        key: jax.Array | None,
        greedy: bool | jax.Array,
        temperature: float = 1.0,
        latent: jax.Array | None = None,
    ) -> tuple[jax.Array, jax.Array]:
        """A joint action [..., A] and the masked logits [..., A, n] each agent chose from.

        Arg-max if `greedy` (`key` unused), else sampled from `key` at `temperature`. Row i of
        the logits is agent i's untempered distribution given what it conditions on (for an
        autoregressive policy, the chosen actions of agents 0..i-1), so the joint action's
        log-probability is `action_log_prob(logits, action).sum(-1)`. `greedy` may also be a
        traced boolean scalar (one compiled program for both modes; `key` then needed): the
        action is then exactly the one the Python bool would give.
        """
        logits = self.act(params, observation, action_mask, latent)
        if isinstance(greedy, bool) and greedy:
            return greedy_action(logits), logits
        assert key is not None, "sampling needs a key"
        sampled = sample_action(key, logits, temperature)
        if isinstance(greedy, bool):
            return sampled, logits
        return jnp.where(greedy, greedy_action(logits), sampled), logits

    def sample(
        self,
        params: Params,
        observation: jax.Array,
        action_mask: jax.Array,
        key: jax.Array,
        temperature: float = 1.0,
        latent: jax.Array | None = None,
    ) -> jax.Array:
        """A sampled joint action [..., A]."""
        return self.decide(params, observation, action_mask, key, False, temperature, latent)[0]

    def greedy(
        self,
        params: Params,
        observation: jax.Array,
        action_mask: jax.Array,
        latent: jax.Array | None = None,
    ) -> jax.Array:
        """The arg-max joint action [..., A] (for an autoregressive policy: each agent's
        arg-max given the earlier agents' arg-max actions)."""
        return self.decide(params, observation, action_mask, None, True, latent=latent)[0]

    def conditional_logits(
        self,
        params: Params,
        observation: jax.Array,
        action_mask: jax.Array,
        action: jax.Array,
        latent: jax.Array | None = None,
    ) -> jax.Array:
        """Masked logits [..., A, n] of every agent given the joint action [..., A] of the
        agents before it (teacher forcing); a factorised policy ignores `action`."""
        del action
        return self.act(params, observation, action_mask, latent)

    def log_prob(
        self,
        params: Params,
        observation: jax.Array,
        action_mask: jax.Array,
        action: jax.Array,
        latent: jax.Array | None = None,
    ) -> jax.Array:
        """Per-agent conditional log-probabilities [..., A] of the joint action [..., A]; their
        sum over agents is the joint action's exact log-probability."""
        logits = self.conditional_logits(params, observation, action_mask, action, latent)
        return action_log_prob(logits, action)

    def expand(
        self,
        params: Params,
        observation: jax.Array,
        action_mask: jax.Array,
        key: jax.Array,
        k: int,
        latent: jax.Array | None = None,
    ) -> tuple[jax.Array, jax.Array]:
        """`k` distinct joint actions [..., k, A] of each node and their log-probabilities
        [..., k] (SGBS's children). Entry 0 is the greedy joint action; an entry with
        log-probability -inf is no child (too few legal joint actions, or a duplicate).

        Factorised policy: the exact K best (`top_k_joint_actions`); `key` is unused.
        """
        del key
        logits = self.act(params, observation, action_mask, latent)
        flat = logits.reshape(-1, *logits.shape[-2:])
        actions, log_probs = jax.vmap(top_k_joint_actions, (0, None))(flat, k)
        # Child 0 must be exactly the greedy rollout's action even if float rounding
        # reordered a near-tie in the K-best merge.
        actions = actions.at[:, 0].set(greedy_action(flat))
        batch = logits.shape[:-2]
        return actions.reshape(*batch, *actions.shape[1:]), log_probs.reshape(*batch, k)

    def sample_children(
        self,
        params: Params,
        observation: jax.Array,
        action_mask: jax.Array,
        key: jax.Array,
        k: int,
        latent: jax.Array | None = None,
    ) -> tuple[jax.Array, jax.Array]:
        """Like `expand`, but entries 1..k-1 are joint actions sampled from the policy (at
        temperature 1) instead of the next most probable ones: the greedy joint action and
        `k - 1` samples [..., k, A], with their log-probabilities [..., k]; a repeat of an
        earlier entry gets -inf (no child). SGBS's restarts expand with these, so that each
        pass from the root explores other children."""
        logits = self.act(params, observation, action_mask, latent)  # [..., A, n]
        wide = jnp.broadcast_to(logits[..., None, :, :],
                                (*logits.shape[:-2], k, *logits.shape[-2:]))
        actions = sample_action(key, wide)
        actions = actions.at[..., 0, :].set(greedy_action(logits))
        log_probs = action_log_prob(wide, actions).sum(-1)
        return actions, jnp.where(first_occurrences(actions), log_probs, -jnp.inf)


@register_architecture("mlp")
class MLPPolicy(Policy):
    """Parameter-shared MLP actor (optionally latent-conditioned) and MLP critic."""

    conditionable = True

    def __init__(self, spec: TaskSpec, config: NetworkConfig) -> None:
        super().__init__(spec, config)
        if len(spec.observation_shape) != 1 or len(spec.global_state_shape) != 1:
            raise CeilingError(f"MLP policies need flat observations; {spec.name} has "
                               f"{spec.observation_shape} and {spec.global_state_shape}")
        self.actor: nn.Module
        if config.conditioned:
            self.actor = ConditionedMLP(config.hidden_sizes, spec.num_actions, config.activation,
                                        0.01, config.latent_rank, config.latent_scale,
                                        config.latent_layers)
        else:
            self.actor = MLP(config.hidden_sizes, spec.num_actions, config.activation, 0.01)
        self.critic = MLP(config.hidden_sizes, 1, config.activation, 1.0)

    def init(self, key: jax.Array) -> Params:
        actor_key, critic_key = jax.random.split(key)
        obs = jnp.zeros((self.spec.num_agents, *self.spec.observation_shape), jnp.float32)
        critic_in = self.critic_input(obs, jnp.zeros(self.spec.global_state_shape, jnp.float32))
        actor_inputs = (obs, jnp.zeros((self.spec.num_agents, self.config.latent_dim)))
        return {
            "actor": self.actor.init(actor_key, *actor_inputs[:1 + self.config.conditioned]),
            "critic": self.critic.init(critic_key, critic_in),
        }

    def act(
        self,
        params: Params,
        observation: jax.Array,
        action_mask: jax.Array,
        latent: jax.Array | None = None,
    ) -> jax.Array:
        """Masked logits [..., A, num_actions] for observations [..., A, obs_dim].

        A conditioned policy takes `latent` [..., latent_dim] (one per attempt, shared by its
        agents; leading dims broadcast against the observation's); None means z = 0, the
        centre of the prior.
        """
        if not self.config.conditioned:
            if latent is not None:
                raise CeilingError("this policy is not latent-conditioned; pass latent=None")
            logits = cast(jax.Array, self.actor.apply(params["actor"], observation))
        else:
            d = self.config.latent_dim
            z = jnp.zeros((d,), jnp.float32) if latent is None else latent
            z = jnp.broadcast_to(z[..., None, :], (*observation.shape[:-1], d))
            logits = cast(jax.Array, self.actor.apply(params["actor"], observation, z))
        return jnp.where(action_mask, logits, -jnp.inf)

    def acting(self, params: Params) -> tuple[Policy, Params]:
        # The algorithm names the critic only: IPPO's and MAPPO's actors are the same network.
        return (make_policy(self.spec, dataclasses.replace(self.config, algorithm="ippo")),
                {"actor": params["actor"]})

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

    def head_layers(self) -> tuple[str, ...]:
        return (f"Dense_{len(self.config.hidden_sizes)}",)  # the actor's and critic's last


def condition(
    policy: Policy,
    params: Params,
    latent_dim: int,
    key: jax.Array,
    latent_rank: int = 4,
    latent_scale: float = 1.0,
    latent_init: float = 0.0,
    latent_layers: int = 1,
) -> tuple[Policy, Params]:
    """A latent-conditioned copy of an unconditioned policy (MLP or SABLE) that acts exactly
    like it at z = 0 (and, with `latent_init` = 0, for every z).

    The base actor's and critic's parameters are kept as they are; the latent map is a
    top-level layer of the actor. With `latent_rank` > 0 the new `latent_in` is random and
    `latent_out` zero; with `latent_rank` = 0 the full-rank `latent_full` map (and one per
    further hidden layer up to `latent_layers`, MLP only) starts at zero, or at normal weights
    of std `latent_init` so that different latents act a little differently from the first
    update on.
    """
    if not policy.conditionable:
        conditionable = [name for name in architectures() if policy_class(name).conditionable]
        raise CeilingError(f"latent conditioning is implemented for the "
                           f"{', '.join(map(repr, conditionable))} architectures, not "
                           f"{policy.config.architecture!r}")
    if policy.config.conditioned:
        raise CeilingError("this policy is already latent-conditioned "
                           f"(latent_dim {policy.config.latent_dim})")
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
        raise CeilingError(f"latent_dim must be an integer >= 1, got {latent_dim!r}")
    if latent_init < 0:
        raise CeilingError(f"latent_init must be >= 0, got {latent_init!r}")
    config = dataclasses.replace(policy.config, latent_dim=latent_dim, latent_rank=latent_rank,
                                 latent_scale=float(latent_scale), latent_layers=latent_layers)
    conditioned = make_policy(policy.spec, config)
    fresh = conditioned.init(key)
    actor = dict(fresh["actor"]["params"])
    actor.update(params["actor"]["params"])
    if latent_rank == 0 and latent_init > 0:
        for index in range(latent_layers):
            name = "latent_full" if index == 0 else f"latent_full_{index}"
            kernel = actor[name]["kernel"]
            actor[name] = {"kernel": latent_init * jax.random.normal(
                jax.random.fold_in(key, 1 + index), kernel.shape, kernel.dtype)}
    return conditioned, {"actor": {"params": actor}, "critic": params["critic"]}
