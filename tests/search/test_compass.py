"""COMPASS: conditioning, winner-takes-all selection, CMA-ES, and the two latent strategies."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ceiling.errors import CeilingError
from ceiling.policies.networks import NetworkConfig, Policy, condition
from ceiling.search import make_strategy
from ceiling.search.compass import CMA_ES, cma_generation, prior_centres
from ceiling.tasks import instances, make
from ceiling.training.compass import winners_take_all

KEYS = instances("connector:con-5x5x3a", "test", 2)


def spread(policy: Policy, params, key: jax.Array, scale: float = 1.0):
    """Give a freshly conditioned policy a non-zero latent input, so latents differ."""
    actor = dict(params["actor"]["params"])
    shape = actor["latent_out"]["kernel"].shape
    actor["latent_out"] = {"kernel": scale * jax.random.normal(key, shape)}
    return {"actor": {"params": actor}, "critic": params["critic"]}


@pytest.fixture(scope="module")
def conditioned(small_policy):
    policy, params = small_policy
    compass_policy, compass_params = condition(policy, params, 8, jax.random.PRNGKey(1))
    return compass_policy, spread(compass_policy, compass_params, jax.random.PRNGKey(2), 3.0)


@pytest.mark.slow
@pytest.mark.parametrize("task_name", ["rware:tiny-2ag-hard", "connector:con-5x5x3a", "smax:3m"])
def test_fresh_conditioning_leaves_the_policy_unchanged(task_name) -> None:
    spec = make(task_name).spec
    base = Policy(spec, NetworkConfig("mappo", (128, 128), "relu"))
    base_params = base.init(jax.random.PRNGKey(0))
    policy, params = condition(base, base_params, 16, jax.random.PRNGKey(1))
    obs = jax.random.normal(jax.random.PRNGKey(2), (5, spec.num_agents, *spec.observation_shape))
    mask = jax.random.bernoulli(jax.random.PRNGKey(3), 0.7,
                                (5, spec.num_agents, spec.num_actions)).at[..., 0].set(True)
    expected = base.act(base_params, obs, mask)
    for seed in range(3):
        z = jax.random.uniform(jax.random.PRNGKey(10 + seed), (5, 16), minval=-1, maxval=1)
        np.testing.assert_array_equal(policy.act(params, obs, mask, z), expected)
    np.testing.assert_array_equal(policy.act(params, obs, mask), expected)  # z = 0
    added = policy.num_parameters(params) - base.num_parameters(base_params)
    assert 0 < added < 0.02 * base.num_parameters(base_params)
    # Once the latent weights move, the latent does change the policy.
    moved = spread(policy, params, jax.random.PRNGKey(4))
    z = jnp.ones((5, 16))
    assert not np.allclose(policy.act(moved, obs, mask, z), policy.act(moved, obs, mask, -z))


def test_a_latent_reaches_every_hidden_layer_asked_for(small_policy) -> None:
    base, base_params = small_policy
    spec = base.spec
    policy, params = condition(base, base_params, 4, jax.random.PRNGKey(1), 0, 10.0, 0.05,
                               latent_layers=2)
    actor = params["actor"]["params"]
    assert actor["latent_full"]["kernel"].shape == (4, base.config.hidden_sizes[0])
    assert actor["latent_full_1"]["kernel"].shape == (4, base.config.hidden_sizes[1])
    obs = jax.random.normal(jax.random.PRNGKey(2), (3, spec.num_agents, *spec.observation_shape))
    mask = jnp.ones((3, spec.num_agents, spec.num_actions), bool)
    # z = 0 is the base policy; with only the second layer's map moving, z still matters.
    np.testing.assert_allclose(policy.act(params, obs, mask), base.act(base_params, obs, mask),
                               atol=1e-6)
    first_off = {"actor": {"params": {**actor, "latent_full": {
        "kernel": jnp.zeros_like(actor["latent_full"]["kernel"])}}}, "critic": params["critic"]}
    z = jnp.ones((3, 4))
    assert not np.allclose(policy.act(first_off, obs, mask, z),
                           policy.act(first_off, obs, mask, -z))
    # It round-trips through the manifest's network config, and what cannot take it says so.
    assert NetworkConfig.from_dict(policy.config.to_dict()) == policy.config
    for layers, rank in ((3, 0), (0, 0), (2, 4)):
        with pytest.raises(CeilingError, match="latent_layers must be in"):
            condition(base, base_params, 4, jax.random.PRNGKey(1), rank, latent_layers=layers)


def test_winner_takes_all_on_a_toy_batch() -> None:
    returns = jnp.array([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0], [3.0, 3.0, 3.0]])
    latents = jnp.arange(3 * 3 * 2, dtype=jnp.float32).reshape(3, 3, 2)
    winner, chosen = winners_take_all(returns, latents)
    np.testing.assert_array_equal(winner, [1, 0, 0])  # ties: the first latent
    np.testing.assert_array_equal(chosen, latents[jnp.arange(3), jnp.array([1, 0, 0])])


@pytest.mark.slow
def test_cma_es_improves_a_latent_objective_over_generations() -> None:
    target = jnp.linspace(-0.8, 0.8, 8)

    def score(latents, _key):
        return -((latents - target) ** 2).sum(-1), None

    es = CMA_ES(population_size=16, solution=jnp.zeros(8))
    params = es.default_params.replace(std_init=jnp.asarray(1.0))
    state = es.init(jax.random.PRNGKey(0), jnp.zeros(8), params)
    step = jax.jit(lambda s, k: cma_generation(es, params, s, k, score)[::2])
    best = []
    for key in jax.random.split(jax.random.PRNGKey(1), 60):
        state, values = step(state, key)
        best.append(float(values.max()))
    assert np.mean(best[-5:]) > np.mean(best[:5]) + 1.0
    assert best[-1] > -0.01  # within 0.1 of the target
    assert float(np.linalg.norm(np.asarray(state.mean) - np.asarray(target))) < 0.1


def test_prior_centres_are_spread_inside_the_box() -> None:
    centres = prior_centres(16, 3)
    assert centres.shape == (3, 16) and np.all(np.abs(centres) <= 1.0)
    distances = [np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i)]
    assert min(distances) > 0.5
    np.testing.assert_array_equal(centres, prior_centres(16, 3))  # deterministic


def test_bad_latent_strategy_input(connector_task, small_policy, conditioned) -> None:
    policy, _ = small_policy
    for name in ("compass", "latent-sampling"):
        with pytest.raises(CeilingError, match="ceiling train --algo compass"):
            make_strategy(name, connector_task, policy, 8)
    compass_policy, _ = conditioned
    with pytest.raises(CeilingError, match=r"integer >= 4, got 3"):
        make_strategy("compass", connector_task, compass_policy, 3)
    with pytest.raises(CeilingError, match="temperature must be a finite number >= 0"):
        make_strategy("compass", connector_task, compass_policy, 8, temperature=-1.0)
    with pytest.raises(CeilingError, match="num_distributions"):
        make_strategy("compass", connector_task, compass_policy, 8, num_distributions=0)
    with pytest.raises(CeilingError, match="valid options: num_distributions"):
        make_strategy("compass", connector_task, compass_policy, 8, sigma=1.0)
    with pytest.raises(CeilingError, match="already latent-conditioned"):
        condition(compass_policy, None, 8, jax.random.PRNGKey(0))


def test_warm_start_begins_with_a_prior_batch_and_centres_on_its_best(
        connector_task, conditioned) -> None:
    policy, params = conditioned
    strategy = make_strategy("compass", connector_task, policy, 8, num_distributions=3,
                             warm_start=True)
    state = strategy.init(jax.random.PRNGKey(0), params, KEYS[0])
    first = strategy.batch(state, jax.random.PRNGKey(1))
    latents = np.asarray(first.tags)
    values = np.asarray(first.episodes.total_return)
    # Drawn from the prior: inside the box and never clipped onto a face (CMA-ES's first
    # generation at sigma_init 1 would put about a third of the coordinates on one).
    assert latents.shape == (8, policy.config.latent_dim) and np.all(np.abs(latents) < 1.0)
    means = np.asarray(first.inner.es_states.mean)
    best = np.argsort(-values, kind="stable")[:3]
    np.testing.assert_allclose(means, latents[best])
    assert int(first.inner.generation) == 1
    # Later batches are CMA-ES generations of those distributions, in turn.
    second = strategy.batch(state._replace(inner=first.inner), jax.random.PRNGKey(2))
    moved = np.asarray(second.inner.es_states.mean)
    assert not np.allclose(moved[0], means[0])
    np.testing.assert_array_equal(moved[1:], means[1:])
    with pytest.raises(CeilingError, match=r"num_distributions <= width \(8\)"):
        make_strategy("compass", connector_task, policy, 8, num_distributions=9,
                      warm_start=True)
