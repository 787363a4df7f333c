"""COMPASS search: CMA-ES over the latent of a latent-conditioned policy, and its ablation.

A COMPASS checkpoint (`ceiling train --algo compass`) is a policy conditioned on a latent z in
[-1, 1]^d whose latents were trained to specialise: different z are best on different
instances. At inference the instance is fixed, so finding a good policy for it is a search
over z, a space of a few dimensions where every point is a whole, coherent policy.

`compass` runs CMA-ES (evosax's `CMA_ES`: elites are the better half of the population,
log-rank recombination weights) with population `width`. It keeps `num_distributions` search
distributions, started at well-spread centres of the prior (k-means centroids of uniform
samples) with step size `sigma_init` and used in turn, one generation per batch: several
distributions hedge against one of them converging early to a poor region. With `warm_start`,
the first batch is instead `width` latents drawn from the prior (what latent sampling would
score), and each distribution restarts at one of that batch's best latents, the best first;
after that batch the search can only add to what latent sampling's first batch found. Each
candidate latent, repaired into the prior's box, is scored by one rollout (arg-max actions by
default, sampled at `temperature` > 0). The best rollout over all generations is the
solution, replayed and verified by the driver like every strategy's.

`latent-sampling` scores `width` latents drawn uniformly from the prior per batch: what
COMPASS's policy gives without the search, the ablation that shows what CMA-ES adds.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from evosax.algorithms import CMA_ES

from ceiling.errors import CeilingError
from ceiling.policies.latent import clip_to_prior
from ceiling.policies.latent import sample_prior as sample_prior
from ceiling.policies.networks import LATENT_HIGH, LATENT_LOW, Params, Policy
from ceiling.policies.rollout import Episode, run_episode
from ceiling.search.base import Batch, SearchState, Strategy
from ceiling.search.options import NON_NEGATIVE, POSITIVE, StrategyOptions, at_least, option
from ceiling.tasks.base import Task

MIN_POPULATION = 4  # CMA-ES needs a few samples per generation to estimate a covariance


TEMPERATURE_HELP = "0: arg-max actions; > 0: actions sampled at this temperature"


@dataclasses.dataclass(frozen=True)
class CompassOptions(StrategyOptions):
    num_distributions: int = option(3, at_least(1), "CMA-ES search distributions, in turn")
    sigma_init: float = option(1.0, POSITIVE, "initial CMA-ES step size")
    temperature: float = option(0.0, NON_NEGATIVE, TEMPERATURE_HELP)
    warm_start: bool = option(
        False, help="first batch: latents drawn from the prior, as latent sampling; each "
        "distribution then starts at one of that batch's best latents")


@dataclasses.dataclass(frozen=True)
class LatentSamplingOptions(StrategyOptions):
    temperature: float = option(0.0, NON_NEGATIVE, TEMPERATURE_HELP)


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
    latents = clip_to_prior(population)
    values, aux = score(latents, score_key)
    es_state, _ = es.tell(tell_key, latents, -values, es_state, es_params)  # it minimises
    return es_state, latents, values, aux


class CompassInner(NamedTuple):
    es_states: Any  # evosax CMA-ES states stacked over distributions [K, ...]
    generation: jax.Array  # [] int32 batches done; distribution generation % K runs next


class Compass(Strategy):
    """one CMA-ES generation over the latent of a COMPASS checkpoint, each candidate scored by one rollout"""  # noqa: E501

    name = "compass"
    Options = CompassOptions
    options: CompassOptions
    needs_latent = True
    min_width = MIN_POPULATION

    def setup(self) -> None:
        dim = self.tag_size
        self.es = CMA_ES(population_size=self.width, solution=jnp.zeros(dim))
        self.es_params = self.es.default_params.replace(
            std_init=jnp.asarray(self.options.sigma_init))
        self.centres = prior_centres(dim, self.options.num_distributions)
        if self.options.warm_start and self.options.num_distributions > self.width:
            raise CeilingError(
                f"warm_start starts each of num_distributions={self.options.num_distributions} "
                f"distributions at a different latent of the first batch, so it needs "
                f"num_distributions <= width ({self.width})")

    @property
    def tag_size(self) -> int:
        return int(self.policy.config.latent_dim)

    def init_inner(self, key: jax.Array, params: Params, instance_key: jax.Array) -> CompassInner:
        del params, instance_key
        return CompassInner(self.init_distributions(key, jnp.asarray(self.centres)),
                            jnp.zeros((), jnp.int32))

    def init_distributions(self, key: jax.Array, means: jax.Array) -> Any:
        """CMA-ES states [K, ...] centred at `means` [K, d], step size `sigma_init`."""
        return jax.vmap(lambda k, mean: self.es.init(k, mean, self.es_params))(
            jax.random.split(key, means.shape[0]), means)

    def batch(self, state: SearchState, key: jax.Array) -> Batch:
        """One CMA-ES generation of the next distribution in turn (with `warm_start`, the
        first batch samples the prior instead and restarts the distributions from it)."""
        inner: CompassInner = state.inner

        def score(latents: jax.Array, score_key: jax.Array) -> tuple[jax.Array, Episode]:
            episodes = score_latents(self.task, self.policy, state.params, state.instance_key,
                                     latents, score_key, self.options.temperature)
            return episodes.total_return, episodes

        def generation(es_states: Any) -> tuple[Any, jax.Array, Episode]:
            # After a warm start, the distribution at the best latent goes first.
            index = (inner.generation - int(self.options.warm_start)) \
                % self.options.num_distributions
            es_state = jax.tree_util.tree_map(lambda x: x[index], es_states)
            es_state, latents, _, episodes = cma_generation(
                self.es, self.es_params, es_state, key, score)
            es_states = jax.tree_util.tree_map(lambda all_, one: all_.at[index].set(one),
                                               es_states, es_state)
            return es_states, latents, episodes

        def from_prior(es_states: Any) -> tuple[Any, jax.Array, Episode]:
            del es_states
            latent_key, score_key, init_key = jax.random.split(key, 3)
            latents = sample_prior(latent_key, (self.width, self.tag_size))
            values, episodes = score(latents, score_key)
            # The best latents, one per distribution (stable order: ties go to the first).
            best = jnp.argsort(-values, stable=True)[:self.options.num_distributions]
            return self.init_distributions(init_key, latents[best]), latents, episodes

        if self.options.warm_start:
            es_states, latents, episodes = jax.lax.cond(
                inner.generation == 0, from_prior, generation, inner.es_states)
        else:
            es_states, latents, episodes = generation(inner.es_states)
        return Batch(episodes, inner=CompassInner(es_states, inner.generation + 1),
                     tags=latents)


class LatentSampling(Strategy):
    """`width` latents drawn uniformly from the prior, one rollout each: COMPASS without the search (the ablation)"""  # noqa: E501

    name = "latent-sampling"
    Options = LatentSamplingOptions
    options: LatentSamplingOptions
    needs_latent = True

    @property
    def tag_size(self) -> int:
        return int(self.policy.config.latent_dim)

    def batch(self, state: SearchState, key: jax.Array) -> Batch:
        latent_key, rollout_key = jax.random.split(key)
        latents = sample_prior(latent_key, (self.width, self.tag_size))
        episodes = score_latents(self.task, self.policy, state.params, state.instance_key,
                                 latents, rollout_key, self.options.temperature)
        return Batch(episodes, tags=latents)
