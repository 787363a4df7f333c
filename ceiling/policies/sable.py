"""SABLE: an encoder-decoder sequence model over agents that acts autoregressively.

Our implementation, from the description in Mahjoub et al. 2025 ("Sable: a performant,
efficient and scalable sequence model for MARL"), of its feed-forward variant: one timestep at
a time, the agents are the sequence.

- **Encoder.** Each agent's observation [F] (normalised, then embedded to `embed_dim` E with a
  GELU) is a token; `num_blocks` retention blocks mix the tokens of all agents, with no mask
  and no decay across agents (agents have no order here, and the encoder has no positional
  input, so it is permutation-equivariant: agents are told apart by the agent-id one-hot in
  their observations). A block is `x + MSR(RMSNorm(x))`, then `x + SwiGLU(RMSNorm(x))`.
  A per-agent value head (the policy's critic) reads each encoded agent.
- **Decoder.** Position i holds the embedding of agent i-1's action (a start token for agent
  0). A block is causal multi-scale retention over those action tokens (decay γ_h^(i-j) for
  j <= i, nothing from later positions), then retention with agent i's encoding as the query
  over the decoder tokens j <= i (its residual stream restarts from the encoding, as in the
  multi-agent transformer), then a SwiGLU feed-forward. RMSNorm and a linear head give agent
  i's logits, conditioned on every observation and on the actions of agents 0..i-1 only.
- **Acting** (`decide`): the decoder one position at a time, one agent after another, each
  agent's action (arg-max or sampled from its masked logits) fed to the next, with the
  earlier positions' keys and values cached; one position's work per agent. The first decoder
  block's self-retention sees an action token's embedding alone, so its projections of the
  n + 1 tokens are a table computed once per decision and looked up agent by agent. The probability
  of a joint action is the product of these conditionals, so `log_prob` (one teacher-forced
  decoder pass over all agents) is exact. `expand` (SGBS's children) is the greedy joint
  action and K - 1 sampled ones, duplicates dropped: the K best of an autoregressive policy
  cannot be merged agent by agent.

Multi-scale retention (MSR) is RetNet's: per head h, `(Q K^T ⊙ D_h) V` with queries, keys and
values from linear maps without bias, each row of the retention scores divided by
max(|row sum|, 1), a per-head normalisation of the output, a swish gate and an output map.
No rotation of queries and keys: agent positions carry no meaning. Linear maps of one input
run as one product with their weights side by side (`Kernel`, `project`: on a CPU the loop over
agents is bound by the number of kernels it launches; BENCHMARKS.md, "SABLE beside MAPPO").
A latent z (COMPASS) enters the observation embedding's pre-activation exactly as it enters
the MLP's first layer (`ConditionedMLP`), so z = 0 is the base policy. Defaults from the
paper: 1 block, embedding 64, 1 head; the SwiGLU's hidden width is twice the embedding
(`FEED_FORWARD_FACTOR`).
Not built: the recurrent variant (retention across timesteps with decayed hidden states).
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ceiling.errors import CeilingError
from ceiling.policies.joint import action_log_prob, first_occurrences
from ceiling.policies.networks import NetworkConfig, Params, Policy, register_architecture
from ceiling.tasks.base import TaskSpec

FEED_FORWARD_FACTOR = 2  # SwiGLU hidden width, in units of embed_dim (BENCHMARKS.md)


def decay_rates(num_heads: int) -> np.ndarray:
    """[H] the decoder's per-head decay across agents, γ_h = 1 - 2^(-5-h) (RetNet's scales)."""
    return (1.0 - 2.0 ** (-5.0 - np.arange(num_heads))).astype(np.float32)


def retention_decay(num_agents: int, num_heads: int, causal: bool) -> np.ndarray:
    """The retention mask [H, A, A]: all ones (encoder), or causal with decay γ_h^(i-j)
    (decoder); each row divided by the square root of its sum."""
    if not causal:
        decay = np.ones((num_heads, num_agents, num_agents))
    else:
        distance = np.arange(num_agents)[:, None] - np.arange(num_agents)[None, :]
        decay = np.where(distance >= 0,
                         decay_rates(num_heads)[:, None, None] ** np.maximum(distance, 0), 0.0)
    return (decay / np.sqrt(decay.sum(-1, keepdims=True))).astype(np.float32)


class RetentionCache(NamedTuple):
    """The keys and values of the positions a causal retention has seen, in order."""

    keys: jax.Array  # [..., P, H, E/H], P positions so far
    values: jax.Array  # [..., P, H, E/H]


class Kernel(nn.Module):
    """The weights [in, out] of a bias-free linear map, named and initialised as
    `nn.Dense(out, use_bias=False)`'s are, so that several maps of one input can run as one
    matrix product (`project`) with the parameters a `Dense` layer would have."""

    features_in: int
    features_out: int

    @nn.compact
    def __call__(self) -> jax.Array:
        return cast(jax.Array, self.param("kernel", nn.initializers.lecun_normal(),
                                          (self.features_in, self.features_out)))


def project(x: jax.Array, kernels: tuple[Kernel, ...]) -> tuple[jax.Array, ...]:
    """`x @ W` for each kernel W, as one product with the kernels side by side: on a CPU a few
    wide products of a small batch run much faster than many narrow ones."""
    weights = [kernel() for kernel in kernels]
    joined = x @ jnp.concatenate(weights, axis=1)
    ends = np.cumsum([w.shape[1] for w in weights])[:-1]
    return tuple(jnp.split(joined, ends, axis=-1))


class Projections(NamedTuple):
    """A retention's four projections of its input [..., E] each (the gate before its swish)."""

    query: jax.Array
    gate: jax.Array
    key: jax.Array
    value: jax.Array


class Retention(nn.Module):
    """Multi-scale retention of queries from `x` [..., A, E] over keys and values from
    `context` [..., A, E]; `causal`: position i sees positions j <= i only, with decay.

    `__call__` is the parallel form (all positions at once); `step` computes one position of a
    causal retention from a cache of the earlier positions' keys and values (the same row of
    the same formula), so acting costs one position's work per agent. (RetNet's recurrent form
    would carry a [E/H, E/H] state per head instead; with a handful of agents the cache is
    smaller.) Both forms take their products as batched matrix products (`einsum`, `@`):
    XLA's CPU backend runs the same arithmetic written as a broadcast product and a sum
    through a reduction kernel many times slower at these shapes (BENCHMARKS.md, "SABLE
    beside MAPPO")."""

    embed_dim: int
    num_heads: int
    causal: bool

    def setup(self) -> None:
        kernel = lambda: Kernel(self.embed_dim, self.embed_dim)  # noqa: E731
        self.query, self.key, self.value, self.gate = (kernel() for _ in range(4))
        self.output = nn.Dense(self.embed_dim, use_bias=False)
        self.head_scale = self.param("head_scale", nn.initializers.ones, (self.embed_dim,))

    def _heads(self, x: jax.Array) -> jax.Array:  # [..., E] -> [..., H, E/H]
        return x.reshape(*x.shape[:-1], self.num_heads, self.embed_dim // self.num_heads)

    def projections(self, x: jax.Array) -> Projections:
        """Queries, gates, keys and values of `x` [..., E] (self-retention), in one product."""
        return Projections(*project(x, (self.query, self.gate, self.key, self.value)))

    def queries(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """What the query side contributes, [..., E] each: the queries and the swish gate."""
        query, gate = project(x, (self.query, self.gate))
        return query, nn.swish(gate)

    def keys_values(self, context: jax.Array) -> tuple[jax.Array, jax.Array]:
        key, value = project(context, (self.key, self.value))
        return key, value

    def _finish(self, gate: jax.Array, retained: jax.Array) -> jax.Array:
        """Per-head normalisation (RetNet's group norm, per position: heads decay differently,
        so their outputs have different scales), the gate and the output map."""
        centred = retained - retained.mean(-1, keepdims=True)
        normed = centred * jax.lax.rsqrt(retained.var(-1, keepdims=True) + 1e-5)
        normed = normed.reshape(*normed.shape[:-2], self.embed_dim) * self.head_scale
        return cast(jax.Array, self.output(gate * normed))

    def __call__(self, x: jax.Array, context: jax.Array) -> jax.Array:
        """Queries from `x`, keys and values from `context` (pass the same array twice for a
        self-retention: its four projections are then one product)."""
        width = self.embed_dim // self.num_heads
        if x is context:
            query, gate, key, value = self.projections(x)
            gate = nn.swish(gate)
        else:
            query, gate = self.queries(x)
            key, value = self.keys_values(context)
        # Head-major [..., H, A, E/H] operands: both products are then plain batched matrix
        # products whose results need no transposition (a strided copy on a CPU).
        query, key, value = (jnp.swapaxes(self._heads(part), -2, -3)
                             for part in (query, key, value))
        scores = query @ jnp.swapaxes(key, -1, -2) * width ** -0.5
        scores = scores * retention_decay(x.shape[-2], self.num_heads, self.causal)
        scores = scores / jnp.maximum(jnp.abs(scores.sum(-1, keepdims=True)), 1.0)
        return self._finish(gate, jnp.swapaxes(scores @ value, -2, -3))

    def step(
        self,
        query: jax.Array,
        gate: jax.Array,
        key: jax.Array,
        value: jax.Array,
        cache: RetentionCache | None,
    ) -> tuple[jax.Array, RetentionCache]:
        """The next position of a causal retention (the cache holds the positions before it;
        None before the first), from its query, swish gate, key and value [..., E]; returns
        [..., E] and the cache with this position's key and value appended."""
        width = self.embed_dim // self.num_heads
        here = RetentionCache(self._heads(key)[..., None, :, :],
                              self._heads(value)[..., None, :, :])
        cache = here if cache is None else RetentionCache(
            *(jnp.concatenate([seen, new], axis=-3)
              for seen, new in zip(cache, here, strict=True)))
        position = cache.keys.shape[-3] - 1
        # Row `position` of the decay: its normalisation sums the positions up to it only.
        row = retention_decay(position + 1, self.num_heads, True)[:, position, :].T  # [P, H]
        scores = jnp.einsum("...hd,...ahd->...ah", self._heads(query), cache.keys)
        scores = scores * width ** -0.5 * row
        scores = scores / jnp.maximum(jnp.abs(scores.sum(-2, keepdims=True)), 1.0)
        retained = jnp.einsum("...ah,...ahd->...hd", scores, cache.values)  # [..., H, E/H]
        return self._finish(gate, retained), cache


class SwiGLU(nn.Module):
    """The feed-forward layer `(swish(x W) ⊙ x V) U` [..., E] (W and V as one product)."""

    embed_dim: int

    def setup(self) -> None:
        hidden = FEED_FORWARD_FACTOR * self.embed_dim
        self.gate = Kernel(self.embed_dim, hidden)
        self.up = Kernel(self.embed_dim, hidden)
        self.down = nn.Dense(self.embed_dim, use_bias=False)

    def __call__(self, x: jax.Array) -> jax.Array:
        gate, up = project(x, (self.gate, self.up))
        return cast(jax.Array, self.down(nn.swish(gate) * up))


class EncoderBlock(nn.Module):
    """Retention across all agents (no mask, no decay), then a feed-forward; pre-norm."""

    embed_dim: int
    num_heads: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        normed = nn.RMSNorm(name="retention_norm")(x)
        x = x + Retention(self.embed_dim, self.num_heads, causal=False, name="retention")(
            normed, normed)
        return x + SwiGLU(self.embed_dim, name="feed_forward")(nn.RMSNorm(name="ffn_norm")(x))


class DecoderBlock(nn.Module):
    """Causal retention over action tokens, causal retention of each agent's encoding over
    them, then a feed-forward; pre-norm. `step` is one position of the same, recurrently."""

    embed_dim: int
    num_heads: int

    def setup(self) -> None:
        self.self_norm, self.query_norm, self.cross_norm, self.ffn_norm = (
            nn.RMSNorm() for _ in range(4))
        self.self_retention = Retention(self.embed_dim, self.num_heads, causal=True)
        self.cross_retention = Retention(self.embed_dim, self.num_heads, causal=True)
        self.feed_forward = SwiGLU(self.embed_dim)

    def __call__(self, y: jax.Array, encoded: jax.Array) -> jax.Array:
        normed = self.self_norm(y)
        y = y + self.self_retention(normed, normed)
        y = encoded + self.cross_retention(self.query_norm(encoded), self.cross_norm(y))
        return y + self.feed_forward(self.ffn_norm(y))

    def cross_queries(self, encoded: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The cross retention's query side for encodings [..., A, E]: it depends on the
        observations only, so acting computes it for all agents at once, before the loop."""
        return self.cross_retention.queries(self.query_norm(encoded))

    def self_projections(self, y: jax.Array) -> Projections:
        """The self-retention's projections of token embeddings y [..., E]."""
        return self.self_retention.projections(self.self_norm(y))

    def step(
        self,
        y: jax.Array,
        own: Projections,
        encoded: jax.Array,
        cross_queries: tuple[jax.Array, jax.Array],
        caches: tuple[RetentionCache | None, RetentionCache | None],
    ) -> tuple[jax.Array, tuple[RetentionCache, RetentionCache]]:
        """The next position from its token embedding y, `own` = `self_projections(y)`, its
        encoding [..., E] and `cross_queries` [..., E] (this position's), given the caches of
        the earlier positions."""
        retained, self_cache = self.self_retention.step(
            own.query, nn.swish(own.gate), own.key, own.value, caches[0])
        y = y + retained
        key, value = self.cross_retention.keys_values(self.cross_norm(y))
        retained, cross_cache = self.cross_retention.step(*cross_queries, key, value, caches[1])
        y = encoded + retained
        return y + self.feed_forward(self.ffn_norm(y)), (self_cache, cross_cache)


class SableNetwork(nn.Module):
    """The actor: `encode` observations [..., A, F] (and a latent [..., A, d]) into [..., A, E];
    `decode` encodings and action tokens [..., A] into logits [..., A, n]."""

    num_actions: int
    embed_dim: int
    num_blocks: int
    num_heads: int
    latent_dim: int = 0  # > 0: COMPASS latent-conditioned
    latent_rank: int = 0  # 0: full-rank latent map (as `ConditionedMLP`)
    latent_scale: float = 1.0

    def setup(self) -> None:
        self.observation_norm = nn.LayerNorm()
        self.observation_embed = nn.Dense(self.embed_dim)
        if self.latent_dim > 0 and self.latent_rank > 0:
            self.latent_in = nn.Dense(self.latent_rank, use_bias=False,
                                      kernel_init=nn.initializers.orthogonal(1.0))
            self.latent_out = nn.Dense(self.embed_dim, use_bias=False,
                                       kernel_init=nn.initializers.zeros)
        elif self.latent_dim > 0:
            self.latent_full = nn.Dense(self.embed_dim, use_bias=False,
                                        kernel_init=nn.initializers.zeros)
        self.encoder_blocks = [EncoderBlock(self.embed_dim, self.num_heads)
                               for _ in range(self.num_blocks)]
        self.encoder_norm = nn.RMSNorm()
        # Tokens 0..n-1 are actions; token n starts the sequence (agent 0 sees no action).
        self.action_embed = nn.Embed(self.num_actions + 1, self.embed_dim)
        self.decoder_blocks = [DecoderBlock(self.embed_dim, self.num_heads)
                               for _ in range(self.num_blocks)]
        self.decoder_norm = nn.RMSNorm()
        self.policy_head = nn.Dense(self.num_actions,
                                    kernel_init=nn.initializers.orthogonal(0.01))

    def encode(self, observation: jax.Array, z: jax.Array | None = None) -> jax.Array:
        x = self.observation_embed(self.observation_norm(observation))
        if self.latent_dim > 0 and z is not None:
            if self.latent_rank > 0:
                x = x + self.latent_out(self.latent_in(z))
            else:
                x = x + self.latent_full(self.latent_scale * z)
        x = nn.gelu(x)
        for block in self.encoder_blocks:
            x = block(x)
        return cast(jax.Array, self.encoder_norm(x))

    def decode(self, encoded: jax.Array, tokens: jax.Array) -> jax.Array:
        y = self.action_embed(tokens)
        for block in self.decoder_blocks:
            y = block(y, encoded)
        return cast(jax.Array, self.policy_head(self.decoder_norm(y)))

    def cross_queries(self, encoded: jax.Array) -> Any:
        """Every decoder block's cross-retention queries and gates [..., A, E]."""
        return tuple(block.cross_queries(encoded) for block in self.decoder_blocks)

    def token_projections(self) -> Projections:
        """The first decoder block's self-retention projections of every token [n + 1, E]:
        its input is the token's embedding alone, so acting looks them up instead of
        computing them agent by agent."""
        tokens = jnp.arange(self.num_actions + 1)
        return self.decoder_blocks[0].self_projections(self.action_embed(tokens))

    def decode_step(
        self, encoded: jax.Array, cross_queries: Any, token: jax.Array, caches: Any,
        token_table: Projections,
    ) -> tuple[jax.Array, Any]:
        """Logits [..., n] of the next agent from its encoding [..., E], its blocks' cross
        queries, the previous agent's action token [...], the blocks' retention caches of the
        earlier agents and `token_projections()`; returns the caches with this agent added."""
        y = self.action_embed(token)
        new_caches = []
        for index, (block, queries, cache) in enumerate(
                zip(self.decoder_blocks, cross_queries, caches, strict=True)):
            own = (Projections(*(table[token] for table in token_table)) if index == 0
                   else block.self_projections(y))
            y, cache = block.step(y, own, encoded, queries, cache)
            new_caches.append(cache)
        return cast(jax.Array, self.policy_head(self.decoder_norm(y))), tuple(new_caches)

    def __call__(
        self, observation: jax.Array, tokens: jax.Array, z: jax.Array | None = None
    ) -> jax.Array:
        return self.decode(self.encode(observation, z), tokens)


class ValueHead(nn.Module):
    """The critic: a per-agent value [...] from an encoded agent [..., E]."""

    embed_dim: int

    @nn.compact
    def __call__(self, encoded: jax.Array) -> jax.Array:
        hidden = nn.gelu(nn.Dense(self.embed_dim, name="value_hidden")(encoded))
        value = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0), name="value_head")(hidden)
        return value[..., 0]


@register_architecture("sable")
class SablePolicy(Policy):
    """SABLE's encoder, per-agent value head and autoregressive decoder (see the module)."""

    autoregressive = True
    conditionable = True

    def __init__(self, spec: TaskSpec, config: NetworkConfig) -> None:
        super().__init__(spec, config)
        if len(spec.observation_shape) != 1:
            raise CeilingError(f"SABLE needs flat observations; {spec.name} has "
                               f"{spec.observation_shape}")
        self.network = SableNetwork(
            spec.num_actions, config.embed_dim, config.num_blocks, config.num_heads,
            config.latent_dim, config.latent_rank, config.latent_scale)
        self.critic = ValueHead(config.embed_dim)

    def init(self, key: jax.Array) -> Params:
        actor_key, critic_key = jax.random.split(key)
        num_agents = self.spec.num_agents
        obs = jnp.zeros((num_agents, *self.spec.observation_shape), jnp.float32)
        tokens = jnp.full((num_agents,), self.spec.num_actions, jnp.int32)
        z = (jnp.zeros((num_agents, self.config.latent_dim), jnp.float32)
             if self.config.conditioned else None)
        return {
            "actor": self.network.init(actor_key, obs, tokens, z),
            "critic": self.critic.init(critic_key, jnp.zeros((num_agents,
                                                              self.config.embed_dim))),
        }

    def head_layers(self) -> tuple[str, ...]:
        return ("policy_head", "value_head")

    # -- the two halves ------------------------------------------------------------------------
    def encode(
        self, params: Params, observation: jax.Array, latent: jax.Array | None = None
    ) -> jax.Array:
        """Encoded agents [..., A, E] of observations [..., A, F]; `latent` [..., d] (one per
        attempt, leading dims broadcast against the observation's; None: z = 0)."""
        z = None
        if self.config.conditioned:
            d = self.config.latent_dim
            z = jnp.zeros((d,), jnp.float32) if latent is None else latent
            z = jnp.broadcast_to(z[..., None, :], (*observation.shape[:-1], d))
        elif latent is not None:
            raise CeilingError("this policy is not latent-conditioned; pass latent=None")
        return cast(jax.Array, self.network.apply(params["actor"], observation, z,
                                                  method=SableNetwork.encode))

    def decode(self, params: Params, encoded: jax.Array, tokens: jax.Array) -> jax.Array:
        """Unmasked logits [..., A, n] for each agent from encodings [..., A, E] and action
        tokens [..., A] (token i: agent i-1's action; token 0 is the start token)."""
        return cast(jax.Array, self.network.apply(params["actor"], encoded, tokens,
                                                  method=SableNetwork.decode))

    def shifted_tokens(self, action: jax.Array) -> jax.Array:
        """Decoder input [..., A] for joint action [..., A]: start token, then a_0..a_{A-2}."""
        start = jnp.full((*action.shape[:-1], 1), self.spec.num_actions, action.dtype)
        return jnp.concatenate([start, action[..., :-1]], axis=-1)


    def autoregress(
        self,
        params: Params,
        encoded: jax.Array,
        action_mask: jax.Array,
        noise: jax.Array | None = None,
        temperature: float | jax.Array = 1.0,
    ) -> tuple[jax.Array, jax.Array]:
        """Act agent by agent: arg-max of each agent's masked logits, or, with Gumbel `noise`
        [..., A, n], of `logits / temperature + noise` (a sample at `temperature`).

        Step i feeds agent i-1's chosen action through the decoder, one position, with the
        earlier positions' keys and values cached (the same causal retention that
        `conditional_logits` runs in parallel), so each agent costs one position's work; the
        noise for every agent is drawn before the loop, in one call. The loop over agents is
        unrolled (a Python loop, not `lax.scan`): per-step work, not arithmetic, bounds it on a
        CPU, and straight-line code needs no cache of fixed size, no update of it in place and
        no loop carry, and searches faster for a longer compile (BENCHMARKS.md, "SABLE beside
        MAPPO", third pass). Returns the joint action [..., A] and each agent's masked
        conditional logits [..., A, n].
        """
        batch = encoded.shape[:-2]
        cross_queries = self.network.apply(params["actor"], encoded,
                                           method=SableNetwork.cross_queries)
        token_table = self.network.apply(params["actor"], method=SableNetwork.token_projections)
        token = jnp.full(batch, self.spec.num_actions, jnp.int32)  # the start token
        # No cache before the first agent (rather than an empty array: no zero-size operands).
        caches: Any = tuple((None, None) for _ in range(self.config.num_blocks))
        actions, logits = [], []
        for agent in range(encoded.shape[-2]):
            queries = jax.tree_util.tree_map(lambda x, i=agent: x[..., i, :], cross_queries)
            row, caches = self.network.apply(params["actor"], encoded[..., agent, :], queries,
                                             token, caches, token_table,
                                             method=SableNetwork.decode_step)
            row = jnp.where(action_mask[..., agent, :], row, -jnp.inf)
            score = row if noise is None else row / temperature + noise[..., agent, :]
            token = jnp.argmax(score, axis=-1).astype(jnp.int32)
            actions.append(token)
            logits.append(row)
        return jnp.stack(actions, axis=-1), jnp.stack(logits, axis=-2)

    # -- the Policy contract -----------------------------------------------------------------
    def act(
        self,
        params: Params,
        observation: jax.Array,
        action_mask: jax.Array,
        latent: jax.Array | None = None,
    ) -> jax.Array:
        """Masked logits [..., A, n] along the greedy joint action: agent i's given the
        arg-max actions of agents 0..i-1 (so their arg-max is `greedy`'s joint action)."""
        return self.decide(params, observation, action_mask, None, True, latent=latent)[1]

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
        encoded = self.encode(params, observation, latent)
        if isinstance(greedy, bool) and greedy:
            return self.autoregress(params, encoded, action_mask)
        assert key is not None, "sampling needs a key"
        # Gumbel-max: the arg-max of logits / T + Gumbel noise is a sample at temperature T.
        noise = jax.random.gumbel(key, action_mask.shape, encoded.dtype)
        if not isinstance(greedy, bool):
            # A traced flag: greedy scores are logits / 1 + 0, which are the logits exactly
            # (-inf stays -inf), so the arg-max is the greedy one.
            noise = jnp.where(greedy, jnp.zeros_like(noise), noise)
            return self.autoregress(params, encoded, action_mask, noise,
                                    jnp.where(greedy, 1.0, temperature))
        return self.autoregress(params, encoded, action_mask, noise, temperature)

    def conditional_logits(
        self,
        params: Params,
        observation: jax.Array,
        action_mask: jax.Array,
        action: jax.Array,
        latent: jax.Array | None = None,
    ) -> jax.Array:
        """Masked logits [..., A, n] of agent i given the actions [..., :i] (one pass)."""
        encoded = self.encode(params, observation, latent)
        logits = self.decode(params, encoded, self.shifted_tokens(action))
        return jnp.where(action_mask, logits, -jnp.inf)

    def expand(
        self,
        params: Params,
        observation: jax.Array,
        action_mask: jax.Array,
        key: jax.Array,
        k: int,
        latent: jax.Array | None = None,
    ) -> tuple[jax.Array, jax.Array]:
        """The greedy joint action and `k - 1` sampled ones [..., k, A] with their exact
        log-probabilities [..., k]; a repeat of an earlier entry gets -inf (no child)."""
        encoded = self.encode(params, observation, latent)
        wide = jnp.broadcast_to(encoded[..., None, :, :],
                                (*encoded.shape[:-2], k, *encoded.shape[-2:]))
        mask = jnp.broadcast_to(action_mask[..., None, :, :],
                                (*action_mask.shape[:-2], k, *action_mask.shape[-2:]))
        # Candidate 0 gets no noise: its arg-max is the greedy joint action.
        noise = jax.random.gumbel(key, mask.shape, encoded.dtype)
        noise = jnp.where((jnp.arange(k) == 0)[:, None, None], 0.0, noise)
        actions, logits = self.autoregress(params, wide, mask, noise)
        log_probs = action_log_prob(logits, actions).sum(-1)
        return actions, jnp.where(first_occurrences(actions), log_probs, -jnp.inf)

    # SABLE's K best cannot be merged agent by agent, so `expand` already samples.
    sample_children = expand

    def value(self, params: Params, observation: jax.Array, global_state: jax.Array) -> jax.Array:
        """Per-agent values [..., A] from the encoded observations (z = 0 for a conditioned
        policy); the global state is not used: the encoder already sees every agent."""
        del global_state
        encoded = self.encode(params, observation, None)
        return cast(jax.Array, self.critic.apply(params["critic"], encoded))


def sable_config(
    embed_dim: int = 64, num_blocks: int = 1, num_heads: int = 1
) -> NetworkConfig:
    """The network config of a SABLE policy (paper defaults: 1 block, embedding 64, 1 head)."""
    return NetworkConfig("sable", architecture="sable", embed_dim=embed_dim,
                         num_blocks=num_blocks, num_heads=num_heads)

