"""COMPASS search: CMA-ES over the latent of a latent-conditioned policy, and its ablation.

A COMPASS checkpoint (`ceiling train --algo compass`) is a policy conditioned on a latent z in
[-1, 1]^d whose latents were trained to specialise: different z are best on different
instances. At inference the instance is fixed, so finding a good policy for it is a search
over z, a space of a few dimensions where every point is a whole, coherent policy.

`compass` runs CMA-ES (evosax's `CMA_ES`: elites are the better half of the population,
log-rank recombination weights) with population `width`. It keeps `num_distributions` search
distributions, started at well-spread centres of the prior (k-means centroids of uniform
samples) with step size `sigma_init` and used in turn, one generation per batch: several
distributions hedge against one of them converging early to a poor region. Each candidate
latent, repaired into the prior's box, is scored by one rollout (arg-max actions by default,
sampled at `temperature` > 0). The best rollout over all generations is the solution, replayed
and verified by the driver like every strategy's.

`latent-sampling` scores `width` latents drawn uniformly from the prior per batch: what
COMPASS's policy gives without the search, the ablation that shows what CMA-ES adds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from evosax.algorithms import CMA_ES

from ceiling.errors import CeilingError
from ceiling.policies.networks import LATENT_HIGH, LATENT_LOW, Params, Policy
from ceiling.policies.rollout import Episode, run_episode
from ceiling.search.base import Incumbent, Strategy, empty_incumbent, improve
from ceiling.tasks.base import Task

MIN_POPULATION = 4  # CMA-ES needs a few samples per generation to estimate a covariance
TRAIN_HINT = "ceiling train --algo compass --from CHECKPOINT --task TASK --out DIR"


def require_conditioned(policy: Policy, strategy: str) -> None:
    if not policy.config.conditioned:
        raise CeilingError(
            f"strategy {strategy!r} needs a latent-conditioned (COMPASS) checkpoint, but this "
            f"is a {policy.config.label} policy with no latent input; train one from it with "
            f"`{TRAIN_HINT}`")


def _temperature(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise CeilingError(f"temperature must be >= 0 (0 means arg-max actions), got {value!r}")
    return float(value)


def score_latents(
    task: Task,
    policy: Policy,
    params: Params,
    instance_key: jax.Array,
    latents: jax.Array,
    key: jax.Array,
    temperature: float,
) -> Episode:
    """One episode of the instance per latent in `latents` [W, d]: arg-max if temperature 0."""
    keys = jax.random.split(key, latents.shape[0])
    return jax.vmap(lambda z, k: run_episode(
        task, policy, params, instance_key, k, greedy=temperature == 0.0,
        temperature=max(temperature, 1e-6), latent=z))(latents, keys)


def sample_prior(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    return jax.random.uniform(key, shape, minval=LATENT_LOW, maxval=LATENT_HIGH)


@functools.lru_cache(maxsize=32)
def prior_centres(dim: int, count: int, samples: int = 4096, iterations: int = 30) -> np.ndarray:
    """`count` well-spread points of the prior box: k-means centroids of uniform samples.

    Deterministic (fixed seed), k-means++ seeding, then Lloyd iterations.
    """
    rng = np.random.default_rng(0)
    points = rng.uniform(LATENT_LOW, LATENT_HIGH, size=(samples, dim))
    centres = [points[rng.integers(samples)]]
    for _ in range(1, count):
        distance = np.min([((points - c) ** 2).sum(-1) for c in centres], axis=0)
        centres.append(points[rng.choice(samples, p=distance / distance.sum())])
    centre_array = np.array(centres)
    for _ in range(iterations):
        nearest = np.argmin(((points[:, None] - centre_array[None]) ** 2).sum(-1), axis=1)
        for index in range(count):
            members = points[nearest == index]
            if len(members):
                centre_array[index] = members.mean(0)
    return centre_array.astype(np.float32)


def cma_generation(
    es: CMA_ES,
    es_params: Any,
    es_state: Any,
    key: jax.Array,
    score: Callable[[jax.Array, jax.Array], tuple[jax.Array, Any]],
) -> tuple[Any, jax.Array, jax.Array, Any]:
    """One CMA-ES generation maximising `score(latents [W, d], key) -> (values [W], aux)`.

    The policy was trained on the prior's box, so candidates outside it are repaired to the
    nearest point inside, and CMA-ES is told about the repaired points, the ones scored. (Told
    the raw samples instead, its mean can drift out of the box where every sample clips to the
    same face and scores alike, and it stalls there.) Returns the new ES state, the latents
    scored, their values and the score's aux output.
    """
    ask_key, score_key, tell_key = jax.random.split(key, 3)
    population, es_state = es.ask(ask_key, es_state, es_params)
    latents = jnp.clip(population, LATENT_LOW, LATENT_HIGH)
    values, aux = score(latents, score_key)
    es_state, _ = es.tell(tell_key, latents, -values, es_state, es_params)  # it minimises
    return es_state, latents, values, aux


class CompassState(NamedTuple):
    params: Params
    instance_key: jax.Array
    key: jax.Array
    es_states: Any  # evosax CMA-ES states stacked over distributions [K, ...]
    generation: jax.Array  # [] int32 batches done; distribution generation % K runs next
    incumbent: Incumbent
    best_latent: jax.Array  # [d] the latent of the incumbent


class Compass(Strategy):
    """CMA-ES in the latent space of a COMPASS policy (see the module docstring)."""

    name = "compass"

    def __init__(
        self,
        task: Task,
        policy: Policy,
        width: int,
        num_distributions: int = 3,
        sigma_init: float = 1.0,
        temperature: float = 0.0,
    ) -> None:
        require_conditioned(policy, self.name)
        if isinstance(width, bool) or not isinstance(width, int) or width < MIN_POPULATION:
            raise CeilingError(f"compass needs a population (width) of at least "
                               f"{MIN_POPULATION}, got {width!r}")
        if isinstance(num_distributions, bool) or not isinstance(num_distributions, int) \
                or num_distributions < 1:
            raise CeilingError(f"num_distributions must be an integer >= 1, "
                               f"got {num_distributions!r}")
        if isinstance(sigma_init, bool) or not isinstance(sigma_init, int | float) \
                or not sigma_init > 0:
            raise CeilingError(f"sigma_init must be > 0, got {sigma_init!r}")
        self.task, self.policy, self.width = task, policy, width
        self.num_distributions = num_distributions
        self.temperature = _temperature(temperature)
        dim = policy.config.latent_dim
        self.es = CMA_ES(population_size=width, solution=jnp.zeros(dim))
        self.es_params = self.es.default_params.replace(std_init=jnp.asarray(float(sigma_init)))
        self.centres = prior_centres(dim, num_distributions)

    def init(self, key: jax.Array, params: Params, instance_key: jax.Array) -> CompassState:
        key, init_key = jax.random.split(key)
        es_states = jax.vmap(lambda k, mean: self.es.init(k, mean, self.es_params))(
            jax.random.split(init_key, self.num_distributions), jnp.asarray(self.centres))
        return CompassState(params, instance_key, key, es_states, jnp.zeros((), jnp.int32),
                            empty_incumbent(self.task),
                            jnp.zeros(self.policy.config.latent_dim, jnp.float32))

    def step(self, state: CompassState) -> CompassState:
        """One CMA-ES generation of the next distribution in turn."""
        key, generation_key = jax.random.split(state.key)
        index = state.generation % self.num_distributions
        es_state = jax.tree_util.tree_map(lambda x: x[index], state.es_states)

        def score(latents: jax.Array, score_key: jax.Array) -> tuple[jax.Array, Episode]:
            episodes = score_latents(self.task, self.policy, state.params, state.instance_key,
                                     latents, score_key, self.temperature)
            return episodes.total_return, episodes

        es_state, latents, _, episodes = cma_generation(
            self.es, self.es_params, es_state, generation_key, score)
        es_states = jax.tree_util.tree_map(lambda all_, one: all_.at[index].set(one),
                                           state.es_states, es_state)
        incumbent = improve(state.incumbent, episodes)
        better = incumbent.total_return > state.incumbent.total_return
        best_latent = jnp.where(better, latents[jnp.argmax(episodes.total_return)],
                                state.best_latent)
        return CompassState(state.params, state.instance_key, key, es_states,
                            state.generation + 1, incumbent, best_latent)


class LatentSamplingState(NamedTuple):
    params: Params
    instance_key: jax.Array
    key: jax.Array
    incumbent: Incumbent
    best_latent: jax.Array  # [d]


class LatentSampling(Strategy):
    """`width` uniform prior latents per batch, one rollout each; the ablation of `compass`."""

    name = "latent-sampling"

    def __init__(self, task: Task, policy: Policy, width: int, temperature: float = 0.0) -> None:
        require_conditioned(policy, self.name)
        self.task, self.policy, self.width = task, policy, width
        self.temperature = _temperature(temperature)

    def init(self, key: jax.Array, params: Params, instance_key: jax.Array) -> LatentSamplingState:
        return LatentSamplingState(params, instance_key, key, empty_incumbent(self.task),
                                   jnp.zeros(self.policy.config.latent_dim, jnp.float32))

    def step(self, state: LatentSamplingState) -> LatentSamplingState:
        key, latent_key, rollout_key = jax.random.split(state.key, 3)
        latents = sample_prior(latent_key, (self.width, self.policy.config.latent_dim))
        episodes = score_latents(self.task, self.policy, state.params, state.instance_key,
                                 latents, rollout_key, self.temperature)
        incumbent = improve(state.incumbent, episodes)
        better = incumbent.total_return > state.incumbent.total_return
        best_latent = jnp.where(better, latents[jnp.argmax(episodes.total_return)],
                                state.best_latent)
        return LatentSamplingState(state.params, state.instance_key, key, incumbent,
                                   best_latent)
