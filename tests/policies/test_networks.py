from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ceiling.errors import CeilingError
from ceiling.policies.networks import NetworkConfig, Policy, greedy_action, sample_action
from ceiling.policies.rollout import evaluate_batch, summarise
from ceiling.tasks import instances


def test_masked_actions_get_minus_infinity_and_are_never_chosen(connector_task, small_policy):
    policy, params = small_policy
    state, timestep = connector_task.reset(jax.random.PRNGKey(0))
    mask = timestep.action_mask.at[:, 1:3].set(False)
    logits = policy.act(params, timestep.observation, mask)
    assert logits.shape == (connector_task.spec.num_agents, connector_task.spec.num_actions)
    assert bool(jnp.all(jnp.isneginf(logits[:, 1:3])))
    samples = sample_action(jax.random.PRNGKey(1), jnp.broadcast_to(logits, (500, *logits.shape)))
    assert not bool(jnp.any((samples == 1) | (samples == 2)))
    assert not bool(jnp.any(greedy_action(logits) == 1))


def test_mappo_critic_sees_the_global_state(connector_task):
    spec = connector_task.spec
    ippo = Policy(spec, NetworkConfig("ippo", (16,), "tanh"))
    mappo = Policy(spec, NetworkConfig("mappo", (16,), "tanh"))
    p_i, p_m = ippo.init(jax.random.PRNGKey(0)), mappo.init(jax.random.PRNGKey(0))
    critic_in = p_m["critic"]["params"]["Dense_0"]["kernel"].shape[0]
    assert critic_in == spec.global_state_shape[0] + spec.num_agents
    assert p_i["critic"]["params"]["Dense_0"]["kernel"].shape[0] == spec.observation_shape[0]
    _, ts = connector_task.reset(jax.random.PRNGKey(0))
    values = mappo.value(p_m, ts.observation, ts.global_state)
    assert values.shape == (spec.num_agents,)
    batched = mappo.value(
        p_m, ts.observation[None].repeat(4, 0), ts.global_state[None].repeat(4, 0)
    )
    np.testing.assert_allclose(np.asarray(batched[2]), np.asarray(values), rtol=1e-6)


def test_bad_network_config_is_rejected(connector_task):
    with pytest.raises(CeilingError, match="unknown algorithm 'qmix'"):
        Policy(connector_task.spec, NetworkConfig("qmix"))
    with pytest.raises(CeilingError, match="activation"):
        Policy(connector_task.spec, NetworkConfig("ippo", (8,), "swish"))
    with pytest.raises(CeilingError, match="not latent-conditioned"):
        policy = Policy(connector_task.spec, NetworkConfig("ippo", (8,)))
        _, ts = connector_task.reset(jax.random.PRNGKey(0))
        policy.act(policy.init(jax.random.PRNGKey(0)), ts.observation, ts.action_mask,
                   latent=jnp.zeros(4))


def test_greedy_evaluation_is_deterministic_and_replays(connector_task, small_policy):
    policy, params = small_policy
    keys = instances("connector:con-5x5x3a", "test", 4)
    first = evaluate_batch(connector_task, policy, params, keys, jax.random.PRNGKey(0))
    second = evaluate_batch(connector_task, policy, params, keys, jax.random.PRNGKey(9))
    np.testing.assert_array_equal(np.asarray(first.total_return), np.asarray(second.total_return))
    # Replaying the recorded actions through task.step gives the reported return.
    state, _ = connector_task.reset(keys[1])
    total = 0.0
    step = jax.jit(connector_task.step)
    for action in np.asarray(first.actions[1]):
        state, ts = step(state, jnp.asarray(action))
        total += float(ts.reward)
    assert total == pytest.approx(float(first.total_return[1]), abs=1e-5)


def test_summary_statistics():
    summary = summarise(np.array([1.0, 2.0, 3.0, 4.0]), np.array([True, False, True, True]))
    assert summary["mean_return"] == 2.5 and summary["num_instances"] == 4
    half = 1.96 * np.std([1, 2, 3, 4], ddof=1) / 2
    assert summary["ci95"] == pytest.approx([2.5 - half, 2.5 + half])
    assert summary["win_rate"] == 0.75
    assert summarise(np.array([1.0]), None)["win_rate"] is None
