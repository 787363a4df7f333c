"""SABLE: exact autoregressive log-probabilities, masks, expansion, latents, checkpoints."""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ceiling.errors import CeilingError
from ceiling.policies.checkpoint import load_checkpoint, save_checkpoint
from ceiling.policies.networks import NetworkConfig, architectures, condition, make_policy
from ceiling.policies.sable import SablePolicy, retention_decay, sable_config

TASK = "connector:con-5x5x3a"  # 3 agents, 5 actions: 125 joint actions to enumerate


def jitted(policy, method: str, **static):
    """`policy.method` under jit (eager calls would compile every operation on its own)."""
    return jax.jit(functools.partial(getattr(policy, method), **static))


def sharpen(params, factor: float):
    """The policy head scaled up: far from uniform, so earlier agents' actions matter."""
    actor = jax.tree_util.tree_map(lambda x: x, params["actor"])
    head = actor["params"]["policy_head"]
    head["kernel"] = head["kernel"] * factor
    return {"actor": actor, "critic": params["critic"]}


@pytest.fixture(scope="module")
def sable(connector_task):
    policy = make_policy(connector_task.spec, sable_config(embed_dim=16))
    return policy, sharpen(jax.jit(policy.init)(jax.random.PRNGKey(0)), 300.0)


@pytest.fixture(scope="module")
def observed(connector_task):
    _, timestep = jax.jit(connector_task.reset)(jax.random.PRNGKey(3))
    # Mask a few more actions (every agent keeps at least one legal action).
    mask = np.asarray(timestep.action_mask).copy()
    mask[0, 0] = mask[1, 4] = False
    return timestep.observation, jnp.asarray(mask)


def brute_force_log_probs(policy, params, observation, mask, joint):
    """log prod_i pi(a_i | o, a_<i) for joint actions [N, A], one decoder pass per agent with
    random tokens after position i (causality: they must not matter)."""
    encoded = jitted(policy, "encode")(params, observation)
    decode = jitted(policy, "decode")
    num_agents, num_actions = mask.shape
    rng = np.random.default_rng(0)
    total = np.zeros(len(joint))
    for agent in range(num_agents):
        tokens = rng.integers(0, num_actions + 1, size=(len(joint), num_agents))
        tokens[:, 0] = num_actions  # the start token
        tokens[:, 1:agent + 1] = joint[:, :agent]
        logits = decode(params, jnp.broadcast_to(encoded, (len(joint), *encoded.shape)),
                        jnp.asarray(tokens, jnp.int32))[:, agent]
        logits = np.where(np.asarray(mask[agent]), np.asarray(logits, np.float64), -np.inf)
        log_softmax = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
        total += log_softmax[np.arange(len(joint)), joint[:, agent]]
    return total


@pytest.mark.slow
def test_joint_log_probabilities_are_exact_against_enumeration(sable, observed) -> None:
    policy, params = sable
    observation, mask = observed
    num_agents, num_actions = mask.shape
    joint = np.array(list(itertools.product(range(num_actions), repeat=num_agents)))
    batch = len(joint)
    reference = brute_force_log_probs(policy, params, observation, mask, joint)
    computed = np.asarray(jitted(policy, "log_prob")(
        params, jnp.broadcast_to(observation, (batch, *observation.shape)),
        jnp.broadcast_to(mask, (batch, *mask.shape)), jnp.asarray(joint, jnp.int32)).sum(-1))
    legal = np.asarray(mask)[np.arange(num_agents), joint].all(axis=1)
    np.testing.assert_allclose(computed[legal], reference[legal], atol=2e-5)
    assert np.all(computed[~legal] < -1e8) and np.all(np.isneginf(reference[~legal]))
    # A distribution over the joint actions: the product of conditionals sums to one ...
    assert np.exp(computed[legal]).sum() == pytest.approx(1.0, abs=1e-5)
    # ... that is not a product of independent marginals: agent 1's conditional depends on
    # agent 0's action.
    conditional_logits = jitted(policy, "conditional_logits")
    second = conditional_logits(
        params, jnp.broadcast_to(observation, (num_actions, *observation.shape)),
        jnp.broadcast_to(mask, (num_actions, *mask.shape)),
        jnp.stack([jnp.full((num_agents,), a, jnp.int32) for a in range(num_actions)]))[:, 1]
    finite = np.where(np.isfinite(second), second, 0.0)
    assert np.abs(finite - finite[:1]).max() > 1e-2

    # Acting draws from that distribution: the empirical frequencies of 20,000 sampled joint
    # actions match exp(log_prob), and each agent's logits are the teacher-forced ones.
    draws = 20_000
    actions, logits = jitted(policy, "decide", greedy=False)(
        params, jnp.broadcast_to(observation, (draws, *observation.shape)),
        jnp.broadcast_to(mask, (draws, *mask.shape)), jax.random.PRNGKey(1))
    index = np.ravel_multi_index(np.asarray(actions).T, (num_actions,) * num_agents)
    frequency = np.bincount(index, minlength=batch) / draws
    assert 0.5 * np.abs(frequency - np.exp(reference)).sum() < 0.03
    forced = conditional_logits(params, observation, mask, actions[0])
    np.testing.assert_allclose(np.asarray(logits[0]), np.asarray(forced), atol=1e-4)
    # Greedy: each agent's arg-max given the earlier agents' arg-max actions.
    greedy = np.asarray(jitted(policy, "greedy")(params, observation, mask))
    for agent in range(num_agents):
        row = conditional_logits(params, observation, mask, jnp.asarray(greedy))[agent]
        assert greedy[agent] == int(np.argmax(np.asarray(row)))


def test_acting_agent_by_agent_matches_the_parallel_decoder_with_more_blocks_and_heads(
    connector_task, observed
) -> None:
    """Acting looks the first block's token projections up in a table and computes the
    others agent by agent; with two blocks and two heads each agent's logits are still the
    teacher-forced ones given the earlier agents' sampled actions."""
    policy = make_policy(connector_task.spec, sable_config(embed_dim=16, num_blocks=2,
                                                          num_heads=2))
    params = sharpen(jax.jit(policy.init)(jax.random.PRNGKey(1)), 30.0)
    observation, mask = observed
    draws = 16
    actions, logits = jitted(policy, "decide", greedy=False)(
        params, jnp.broadcast_to(observation, (draws, *observation.shape)),
        jnp.broadcast_to(mask, (draws, *mask.shape)), jax.random.PRNGKey(2))
    assert len({tuple(row) for row in np.asarray(actions).tolist()}) > 1
    forced = jitted(policy, "conditional_logits")(
        params, jnp.broadcast_to(observation, (draws, *observation.shape)),
        jnp.broadcast_to(mask, (draws, *mask.shape)), actions)
    np.testing.assert_allclose(np.asarray(logits), np.asarray(forced), atol=1e-4)


def test_zero_parameters_are_the_uniform_random_policy_over_legal_actions(
        connector_task, observed) -> None:
    """What the random baselines rely on (`evaluate_checkpoint(uniform_random=True)`, the
    bench's normalisation minimum): all-zero parameters give every legal action of every agent
    the same logit, whatever earlier agents chose, for SABLE as for an MLP."""
    observation, mask = observed
    for config in (sable_config(embed_dim=16), NetworkConfig()):
        policy = make_policy(connector_task.spec, config)
        zeros = jax.tree_util.tree_map(jnp.zeros_like, jax.jit(policy.init)(
            jax.random.PRNGKey(0)))
        logits = np.asarray(jitted(policy, "act")(zeros, observation, mask))
        legal = np.asarray(mask)
        assert np.all(np.isneginf(logits[~legal]) | (logits[~legal] < -1e8)), config
        for agent in range(legal.shape[0]):
            assert np.ptp(logits[agent][legal[agent]]) == 0.0, (config, agent)


def test_a_traced_greedy_flag_gives_exactly_the_static_modes_actions(
        connector_task, sable, observed) -> None:
    """Zero-shot evaluation compiles greedy and sampled play as one program (`greedy` traced):
    for SABLE and an MLP, each flag value must give the very actions of the static mode, key
    for key, at a temperature other than 1 too."""
    observation, mask = observed
    draws = 256
    observations = jnp.broadcast_to(observation, (draws, *observation.shape))
    masks = jnp.broadcast_to(mask, (draws, *mask.shape))
    mlp = make_policy(connector_task.spec, NetworkConfig())
    for policy, params in (sable, (mlp, jax.jit(mlp.init)(jax.random.PRNGKey(1)))):
        traced = jax.jit(lambda p, k, g, t, policy=policy: policy.decide(
            p, observations, masks, k, g, t))
        for temperature in (1.0, 2.0):
            key = jax.random.PRNGKey(7)
            static_greedy = jitted(policy, "decide", greedy=True)(
                params, observations, masks, key)
            static_sampled = jitted(policy, "decide", greedy=False, temperature=temperature)(
                params, observations, masks, key)
            for flag, static in ((True, static_greedy), (False, static_sampled)):
                actions, logits = traced(params, key, jnp.asarray(flag), temperature)
                np.testing.assert_array_equal(np.asarray(actions), np.asarray(static[0]))
                # Two programs may round differently (fused differently), so the logits match
                # to float precision, not bit for bit.
                np.testing.assert_allclose(np.asarray(logits), np.asarray(static[1]),
                                           rtol=1e-5, atol=1e-5)
            # The two modes differ, so the flag is not ignored.
            assert np.any(np.asarray(static_greedy[0]) != np.asarray(static_sampled[0]))


@pytest.mark.slow
def test_no_illegal_action_in_a_hundred_thousand_draws(connector_task) -> None:
    policy = make_policy(connector_task.spec, sable_config(embed_dim=8))
    params = sharpen(jax.jit(policy.init)(jax.random.PRNGKey(1)), 100.0)
    draws = 100_000
    spec = connector_task.spec
    rng = np.random.default_rng(0)
    mask = rng.random((draws, spec.num_agents, spec.num_actions)) < 0.4
    mask[np.arange(draws), :, rng.integers(0, spec.num_actions, draws)] = True  # >= 1 legal
    observation = jnp.asarray(rng.normal(size=(draws, spec.num_agents,
                                               *spec.observation_shape)), jnp.float32)
    mask = jnp.asarray(mask)
    for greedy, temperature in ((False, 1.0), (False, 3.0), (True, 1.0)):
        actions, _ = jitted(policy, "decide", greedy=greedy)(
            params, observation, mask, jax.random.PRNGKey(2), temperature=temperature)
        chosen = np.take_along_axis(np.asarray(mask), np.asarray(actions)[..., None], -1)
        assert chosen.all(), (greedy, temperature)
    children, log_probs = jitted(policy, "expand", k=6)(params, observation[:2000], mask[:2000],
                                                        jax.random.PRNGKey(3))
    legal = np.take_along_axis(np.asarray(mask[:2000])[:, None],
                               np.asarray(children)[..., None], -1)[..., 0].all(-1)
    assert legal.all() and np.isfinite(np.asarray(log_probs)[:, 0]).all()


@pytest.mark.slow
def test_expansion_is_greedy_then_distinct_samples_with_exact_log_probs(sable, observed):
    policy, params = sable
    observation, mask = observed
    k = 12
    actions, log_probs = jitted(policy, "expand", k=k)(params, observation, mask,
                                                       jax.random.PRNGKey(4))
    actions, log_probs = np.asarray(actions), np.asarray(log_probs)
    assert actions.shape == (k, 3) and log_probs.shape == (k,)
    np.testing.assert_array_equal(actions[0],
                                  jitted(policy, "greedy")(params, observation, mask))
    kept = np.isfinite(log_probs)
    assert len({tuple(a) for a in actions[kept]}) == kept.sum()  # distinct children
    assert len({tuple(a) for a in actions}) == kept.sum()  # every repeat was dropped
    assert kept.sum() < k  # the sharpened policy repeats itself, so dropping is exercised
    exact = jitted(policy, "log_prob")(
        params, jnp.broadcast_to(observation, (k, *observation.shape)),
        jnp.broadcast_to(mask, (k, *mask.shape)), jnp.asarray(actions)).sum(-1)
    np.testing.assert_allclose(log_probs[kept], np.asarray(exact)[kept], atol=1e-4)


@pytest.mark.slow
def test_encoder_and_values_are_permutation_equivariant(sable, observed, connector_task):
    policy, params = sable
    observation, _ = observed
    state = jnp.zeros(connector_task.spec.global_state_shape)
    order = jnp.asarray([2, 0, 1])
    value = jitted(policy, "value")
    np.testing.assert_allclose(
        np.asarray(value(params, observation[order], state)),
        np.asarray(value(params, observation, state))[np.asarray(order)], atol=1e-5)


def test_retention_masks() -> None:
    encoder = retention_decay(3, 2, causal=False)
    np.testing.assert_allclose(encoder, np.full((2, 3, 3), 1 / np.sqrt(3)), rtol=1e-6)
    decoder = retention_decay(4, 2, causal=True)
    assert np.all(np.triu(decoder[0], 1) == 0)  # nothing from later agents
    assert np.all(decoder[:, :, 0] > 0)  # every agent sees the first one
    gamma = 1 - 2.0 ** -5
    assert decoder[0, 2, 0] / decoder[0, 2, 2] == pytest.approx(gamma ** 2, rel=1e-5)


def test_registry_and_config_rules(connector_task) -> None:
    assert "sable" in architectures()
    policy = make_policy(connector_task.spec, sable_config())
    assert isinstance(policy, SablePolicy) and policy.autoregressive
    assert policy.config.label == "sable"
    assert NetworkConfig.from_dict(policy.config.to_dict()) == policy.config
    with pytest.raises(CeilingError, match="does not fit architecture 'sable'"):
        make_policy(connector_task.spec, NetworkConfig("mappo", architecture="sable"))
    with pytest.raises(CeilingError, match="does not fit architecture 'mlp'"):
        make_policy(connector_task.spec, NetworkConfig("sable"))
    with pytest.raises(CeilingError, match="num_heads must divide embed_dim"):
        make_policy(connector_task.spec, sable_config(embed_dim=10, num_heads=4))


@pytest.mark.slow
def test_checkpoint_round_trip_is_bit_exact(tmp_path, connector_task, sable, observed) -> None:
    policy, params = sable
    observation, mask = observed
    conditioned, conditioned_params = condition(
        policy, params, 4, jax.random.PRNGKey(5), latent_rank=0, latent_scale=10.0,
        latent_init=0.05)
    for name, (pol, par) in {"base": (policy, params),
                             "compass": (conditioned, conditioned_params)}.items():
        loaded = load_checkpoint(save_checkpoint(tmp_path / name, pol, par), task=TASK)
        assert loaded.policy == pol and isinstance(loaded.policy, SablePolicy)
        assert loaded.manifest["network"]["architecture"] == "sable"
        assert loaded.manifest["network"]["embed_dim"] == 16
        assert loaded.manifest["algorithm"] == ("sable" if name == "base" else "compass")
        for a, b in zip(jax.tree_util.tree_leaves(par), jax.tree_util.tree_leaves(loaded.params),
                        strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
            assert np.asarray(a).dtype == np.asarray(b).dtype
        decide = jitted(pol, "decide", greedy=False)  # loaded.policy == pol: one compile
        before = decide(par, observation, mask, jax.random.PRNGKey(6))
        after = decide(loaded.params, observation, mask, jax.random.PRNGKey(6))
        for a, b in zip(before, after, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_latent_conditioned_sable_is_the_base_policy_at_zero(sable, observed) -> None:
    policy, params = sable
    observation, mask = observed
    conditioned, conditioned_params = condition(policy, params, 4, jax.random.PRNGKey(5), 0,
                                                10.0, 0.05)
    assert conditioned.config.conditioned and conditioned.config.architecture == "sable"
    assert "latent_full" in conditioned_params["actor"]["params"]
    base = jitted(policy, "act")(params, observation, mask)
    act = jitted(conditioned, "act")
    np.testing.assert_array_equal(np.asarray(act(conditioned_params, observation, mask)),
                                  np.asarray(base))
    np.testing.assert_array_equal(
        np.asarray(act(conditioned_params, observation, mask, jnp.zeros(4))), np.asarray(base))
    moved = act(conditioned_params, observation, mask, jnp.ones(4))
    assert not np.allclose(np.asarray(moved), np.asarray(base))
    with pytest.raises(CeilingError, match="not latent-conditioned"):
        policy.act(params, observation, mask, jnp.zeros(4))
