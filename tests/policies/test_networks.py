from __future__ import annotations

import pickle
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ceiling.errors import CeilingError
from ceiling.policies.networks import (
    ARCHITECTURES,
    MLPPolicy,
    NetworkConfig,
    Policy,
    architectures,
    condition,
    greedy_action,
    make_policy,
    policy_class,
    sample_action,
)
from ceiling.policies.rollout import evaluate_batch, summarise
from ceiling.tasks import instances


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_evaluation_compiles_one_program_for_both_modes_and_for_ippo_and_mappo(connector_task):
    """What keeps `ceiling evaluate` and the demo's table quick: greedy and sampled evaluation,
    of an IPPO and of a MAPPO checkpoint with the same actor, all run one compiled program, and
    the two checkpoints play alike."""
    from ceiling.policies import rollout

    spec = connector_task.spec
    mappo = Policy(spec, NetworkConfig("mappo", (24,), "tanh"))
    params = mappo.init(jax.random.PRNGKey(3))
    ippo = Policy(spec, NetworkConfig("ippo", (24,), "tanh"))
    ippo_params = {"actor": params["actor"], "critic": ippo.init(jax.random.PRNGKey(4))["critic"]}
    keys = instances("connector:con-5x5x3a", "test", 8)
    before = rollout._evaluate_batch._cache_size()
    results = {}
    for name, policy, weights in (("mappo", mappo, params), ("ippo", ippo, ippo_params)):
        for greedy in (True, False):
            episodes = evaluate_batch(connector_task, policy, weights, keys,
                                      jax.random.PRNGKey(5), greedy=greedy)
            results[name, greedy] = np.asarray(episodes.actions)
    assert rollout._evaluate_batch._cache_size() == before + 1
    for greedy in (True, False):
        np.testing.assert_array_equal(results["mappo", greedy], results["ippo", greedy])
    # That each flag value plays the static mode's actions key for key is checked on `decide`
    # (`tests/policies/test_sable.py`).
    assert not np.array_equal(results["mappo", True], results["mappo", False])


def test_summary_statistics():
    summary = summarise(np.array([1.0, 2.0, 3.0, 4.0]), np.array([True, False, True, True]))
    assert summary["mean_return"] == 2.5 and summary["num_instances"] == 4
    half = 1.96 * np.std([1, 2, 3, 4], ddof=1) / 2
    assert summary["ci95"] == pytest.approx([2.5 - half, 2.5 + half])
    assert summary["win_rate"] == 0.75
    assert summarise(np.array([1.0]), None)["win_rate"] is None


# -- the architecture registry ---------------------------------------------------------------

class _BiasPolicy(Policy):
    """A toy architecture: state-free logits, so nothing about the observation is assumed."""

    def init(self, key: jax.Array):
        return {"actor": {"bias": jnp.zeros(self.spec.num_actions)},
                "critic": {"bias": jnp.zeros(())}}

    def act(self, params, observation, action_mask, latent=None):
        logits = jnp.broadcast_to(params["actor"]["bias"], action_mask.shape)
        return jnp.where(action_mask, logits, -jnp.inf)

    def value(self, params, observation, global_state):
        return jnp.broadcast_to(params["critic"]["bias"], observation.shape[:-1])


@pytest.fixture
def toy_registry(monkeypatch):
    """A private copy of the registry with the toy architecture "bias" added."""
    from ceiling.policies import networks

    monkeypatch.setattr(networks, "ARCHITECTURES", dict(networks.ARCHITECTURES))
    networks.register_architecture("bias")(_BiasPolicy)
    return networks


def test_policy_is_make_policy_for_the_mlp(connector_task):
    config = NetworkConfig("ippo", (8,))
    assert config.architecture == "mlp"
    built, called = make_policy(connector_task.spec, config), Policy(connector_task.spec, config)
    assert type(built) is type(called) is MLPPolicy
    assert built == called and hash(built) == hash(called)
    assert architectures() == ("mlp", "sable") and ARCHITECTURES["mlp"] is MLPPolicy
    # Copies (and pickles) stay equal, so they hit the same compiled code as static arguments.
    assert pickle.loads(pickle.dumps(built)) == built
    params = built.init(jax.random.PRNGKey(0))
    assert built.num_parameters(params) == called.num_parameters(called.init(jax.random.PRNGKey(0)))


def test_unknown_architecture_names_the_valid_ones(connector_task):
    config = NetworkConfig("ippo", (8,), architecture="transformer")
    message = "unknown architecture 'transformer'; valid: mlp, sable"
    for build in (make_policy, Policy):
        with pytest.raises(CeilingError, match=message):
            build(connector_task.spec, config)
    with pytest.raises(CeilingError, match=message):
        policy_class("transformer")


def test_a_class_builds_only_its_own_architecture(connector_task, toy_registry):
    with pytest.raises(CeilingError, match="builds the 'mlp' architecture, not 'bias'"):
        MLPPolicy(connector_task.spec, NetworkConfig(architecture="bias"))


def test_registered_architecture_round_trips(connector_task, toy_registry, tmp_path):
    from ceiling.policies.checkpoint import load_checkpoint, save_checkpoint

    config = NetworkConfig("ippo", (8,), architecture="bias")
    assert toy_registry.architectures() == ("bias", "mlp", "sable")
    policy = Policy(connector_task.spec, config)
    assert type(policy) is _BiasPolicy and policy == make_policy(connector_task.spec, config)
    assert policy != make_policy(connector_task.spec, NetworkConfig("ippo", (8,)))
    assert NetworkConfig.from_dict(config.to_dict()) == config
    params = policy.init(jax.random.PRNGKey(0))
    path = save_checkpoint(tmp_path / "ckpt", policy, params)
    loaded = load_checkpoint(path)
    assert loaded.manifest["network"]["architecture"] == "bias"
    assert loaded.policy == policy and type(loaded.policy) is _BiasPolicy
    _, ts = connector_task.reset(jax.random.PRNGKey(0))
    logits = loaded.policy.act(loaded.params, ts.observation, ts.action_mask)
    assert logits.shape == ts.action_mask.shape
    with pytest.raises(CeilingError, match="implemented for the 'mlp', 'sable' architectures, "
                                           "not 'bias'"):
        condition(policy, params, 4, jax.random.PRNGKey(0))


def test_architecture_in_another_module_is_imported_on_demand(
    connector_task, toy_registry, monkeypatch, tmp_path
):
    (tmp_path / "toy_architecture.py").write_text(
        "from ceiling.policies.networks import register_architecture\n"
        "from tests.policies.test_networks import _BiasPolicy\n"
        "class Lazy(_BiasPolicy):\n    pass\n"
        "register_architecture('lazy')(Lazy)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "toy_architecture", raising=False)
    monkeypatch.setitem(toy_registry.ARCHITECTURE_MODULES, "lazy", "toy_architecture")
    assert "lazy" in toy_registry.architectures()
    policy = make_policy(connector_task.spec, NetworkConfig("ippo", (8,), architecture="lazy"))
    assert type(policy).__name__ == "Lazy" and policy.architecture == "lazy"
    monkeypatch.delitem(sys.modules, "toy_architecture", raising=False)


def test_the_base_class_does_not_assume_flat_observations(connector_task, toy_registry):
    spec = connector_task.spec._replace(observation_shape=(3, 69))
    assert type(Policy(spec, NetworkConfig(architecture="bias"))) is _BiasPolicy
    with pytest.raises(CeilingError, match="MLP policies need flat observations"):
        Policy(spec, NetworkConfig())


def test_network_config_dicts_record_the_architecture():
    config = NetworkConfig("mappo", (16, 16), "tanh", latent_dim=4)
    data = config.to_dict()
    assert data["architecture"] == "mlp" and NetworkConfig.from_dict(data) == config
    del data["architecture"]  # a format-1 manifest
    assert NetworkConfig.from_dict(data) == config
