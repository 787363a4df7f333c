"""The checkpoints shipped in the package load, verify, and beat a random policy by far."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from ceiling.errors import CeilingError
from ceiling.policies.checkpoint import load_checkpoint, read_manifest
from ceiling.policies.evaluation import evaluate_checkpoint
from ceiling.policies.labels import algorithm_label, label_base
from ceiling.policies.shipped import shipped_checkpoint, shipped_checkpoints

TASKS = ("rware:tiny-2ag-hard", "connector:con-5x5x3a", "smax:3m")
# Margin over the uniform random policy on the first 8 test instances, in return units.
MARGIN = {"rware:tiny-2ag-hard": 3.0, "connector:con-5x5x3a": 1.0, "smax:3m": 0.5}


@functools.cache
def _random(task: str) -> dict[str, Any]:
    """The uniform random policy on the first 8 test instances, once per task (this file runs
    in one worker): all-zero parameters give uniform logits over the legal actions whatever
    the network, so the task's shipped IPPO, the cheapest network to compile, plays it for
    every checkpoint of the task."""
    return evaluate_checkpoint(shipped_checkpoint(task, "ippo"), task, 8, stochastic=True,
                               seed=0, uniform_random=True)


def test_every_required_checkpoint_is_shipped() -> None:
    shipped = shipped_checkpoints()
    for task in TASKS:
        for algorithm in ("ippo", "mappo", "compass"):
            assert (task, algorithm) in shipped
            directory = shipped[(task, algorithm)]
            for name in ("config.yaml", "learning_curve.png", "metrics.jsonl",
                         "convergence.json"):
                assert (directory / name).is_file(), directory / name


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("algorithm", ["ippo", "mappo"])
def test_shipped_checkpoint_beats_random(task: str, algorithm: str) -> None:
    path = shipped_checkpoint(task, algorithm)
    checkpoint = load_checkpoint(path, task=task)
    assert checkpoint.manifest["training"]["convergence"]["total_steps"] > 1_000_000
    trained = evaluate_checkpoint(path, task, 8, stochastic=False, seed=0)
    random = _random(task)
    assert trained["mean_return"] > random["mean_return"] + MARGIN[task], (trained, random)
    if trained["win_rate"] is not None:
        assert trained["win_rate"] >= 0.5 > random["win_rate"]


@pytest.mark.slow
@pytest.mark.parametrize(("task", "label"), [(task, "compass") for task in TASKS]
                         + [("rware:tiny-2ag-hard", "compass-sable")])
def test_shipped_compass_checkpoints_have_specialised_latents(task: str, label: str) -> None:
    import jax
    import numpy as np

    from ceiling.search.compass import sample_prior
    from ceiling.tasks import instances, make
    from ceiling.training.compass import latent_returns

    checkpoint = load_checkpoint(shipped_checkpoint(task, label), task=task)
    config = checkpoint.policy.config
    assert config.conditioned and config.latent_dim == 16
    assert checkpoint.manifest["network"]["latent_prior"] == "uniform[-1, 1]"
    base = str(checkpoint.manifest["training"]["from"])
    assert base.endswith(f"/{config.algorithm}")
    # Different latents are different policies: their greedy returns differ on test instances.
    keys = instances(task, "test", 8)
    latents = sample_prior(jax.random.PRNGKey(1), (8, 16, 16))
    returns, _, _ = latent_returns(make(task), checkpoint.policy, checkpoint.params, keys,
                                   latents)
    assert float(np.asarray(returns).std(axis=1).max()) > 0.0


def _shipped(architecture: str) -> list[tuple[str, str]]:
    """The shipped (task, label) pairs whose network is `architecture`."""
    return sorted(key for key, path in shipped_checkpoints().items()
                  if read_manifest(path)["network"].get("architecture", "mlp") == architecture)


def test_a_compass_checkpoint_from_sable_ships_beside_the_one_from_mappo() -> None:
    """Shipped checkpoints are keyed by label: COMPASS trained from SABLE is `compass-sable`,
    in its own directory, and never shadows the COMPASS one trained from MAPPO."""
    shipped = shipped_checkpoints()
    for task in ("rware:tiny-2ag-hard", "rware:tiny-4ag-hard", "connector:con-10x10x10a",
                 "smax:smacv2_5_units"):
        for label, base in (("compass", "mappo"), ("compass-sable", "sable")):
            path = shipped[(task, label)]
            manifest = read_manifest(path)
            assert path.name == label == algorithm_label(manifest)
            assert manifest["algorithm"] == "compass"
            assert manifest["network"]["algorithm"] == base
            assert manifest["training"]["from"].endswith(f"/{base}")
            assert manifest["training"]["base_sha256"] == read_manifest(
                shipped[(task, base)])["sha256"]
    with pytest.raises(CeilingError, match="no shipped compass-ippo checkpoint"):
        shipped_checkpoint("smax:3m", "compass-ippo")


def test_labels() -> None:
    compass = {"algorithm": "compass", "network": {"algorithm": "mappo"}}
    assert algorithm_label(compass) == "compass"
    assert algorithm_label({**compass, "network": {"algorithm": "sable"}}) == "compass-sable"
    assert algorithm_label({"algorithm": "sable", "network": {"algorithm": "sable"}}) == "sable"
    assert [label_base(x) for x in ("compass", "compass-sable", "mappo", "sable")] == [
        "mappo", "sable", None, None]


@pytest.mark.slow
@pytest.mark.parametrize(("task", "algorithm"), _shipped("mlp"))
def test_shipped_checkpoint_acts_exactly_like_its_mlp(task: str, algorithm: str) -> None:
    """Loading through the registry gives the logits of the MLP modules built by hand."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import serialization

    from ceiling.policies.networks import MLP, ConditionedMLP, MLPPolicy
    from ceiling.tasks import instances, make

    path = shipped_checkpoint(task, algorithm)
    files_before = {p.name: p.read_bytes() for p in path.iterdir()}
    checkpoint = load_checkpoint(path, task=task)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == files_before  # never rewritten
    manifest = checkpoint.manifest
    network = manifest["network"]
    assert manifest["format_version"] in (1, 2)
    assert network.get("architecture", "mlp") == "mlp"
    assert type(checkpoint.policy) is MLPPolicy

    raw = serialization.msgpack_restore((path / "params.msgpack").read_bytes())
    hidden = tuple(network["hidden_sizes"])
    spec = make(task).spec
    _, timestep = jax.jit(make(task).reset)(instances(task, "test", 1)[0])
    obs, mask = timestep.observation, timestep.action_mask
    conditioned = "latent_dim" in network
    if conditioned:
        actor = ConditionedMLP(hidden, spec.num_actions, network["activation"], 0.01,
                               network["latent_rank"], network.get("latent_scale", 1.0))
    else:
        actor = MLP(hidden, spec.num_actions, network["activation"], 0.01)
    for z in ([None, 0.0, 0.5] if conditioned else [None]):
        if conditioned:
            latent = None if z is None else jnp.full((network["latent_dim"],), z, jnp.float32)
            z_agents = jnp.full((spec.num_agents, network["latent_dim"]), z or 0.0, jnp.float32)
            expected = actor.apply(raw["actor"], obs, z_agents)
        else:
            latent, expected = None, actor.apply(raw["actor"], obs)
        expected = jnp.where(mask, expected, -jnp.inf)
        logits = checkpoint.policy.act(checkpoint.params, obs, mask, latent)
        np.testing.assert_array_equal(np.asarray(logits), np.asarray(expected))
        np.testing.assert_array_equal(np.asarray(jnp.argmax(logits, -1)),
                                      np.asarray(jnp.argmax(expected, -1)))
    # Every parameter is the stored one, bit for bit.
    stored = jax.tree_util.tree_leaves(raw)
    loaded = jax.tree_util.tree_leaves(serialization.to_state_dict(checkpoint.params))
    assert len(stored) == len(loaded)
    for a, b in zip(stored, loaded, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


SABLE_SHIPPED = _shipped("sable")  # SABLE, and COMPASS trained from it


@pytest.mark.slow
@pytest.mark.parametrize(("task", "algorithm"), SABLE_SHIPPED)
def test_shipped_sable_checkpoint(task: str, algorithm: str) -> None:
    """A shipped SABLE checkpoint loads bit-exact, beats random (COMPASS from SABLE: is its
    base at z = 0), and acts consistently: the agent-by-agent decode that acts gives the
    logits of the one-pass decode along its action."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import serialization

    from ceiling.policies.sable import SablePolicy
    from ceiling.tasks import instances, make

    path = shipped_checkpoint(task, algorithm)
    checkpoint = load_checkpoint(path, task=task)
    assert type(checkpoint.policy) is SablePolicy
    assert checkpoint.manifest["training"]["convergence"]["total_steps"] > 1_000_000
    raw = serialization.msgpack_restore((path / "params.msgpack").read_bytes())
    stored = jax.tree_util.tree_leaves(raw)
    loaded = jax.tree_util.tree_leaves(serialization.to_state_dict(checkpoint.params))
    assert len(stored) == len(loaded)
    for a, b in zip(stored, loaded, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    _, timestep = jax.jit(make(task).reset)(instances(task, "test", 1)[0])
    obs, mask = timestep.observation, timestep.action_mask
    policy, params = checkpoint.policy, checkpoint.params
    # Jitted: run eagerly, the agent-by-agent decode dispatches (and compiles) op by op, which
    # took twice as long on 10 agents.
    logits = jax.jit(policy.act)(params, obs, mask)
    action = jnp.argmax(logits, -1)
    parallel = jax.jit(policy.conditional_logits)(params, obs, mask, action)
    np.testing.assert_allclose(np.asarray(jnp.where(mask, logits, 0.0)),
                               np.asarray(jnp.where(mask, parallel, 0.0)), atol=1e-4)

    base_label = label_base(algorithm)
    if base_label is not None:
        # COMPASS from SABLE: its trunk is SABLE's, frozen, and its latent map has no bias, so
        # at z = 0 it is its base exactly; the base's own case plays it against random.
        base = load_checkpoint(shipped_checkpoint(task, base_label), task=task)
        assert checkpoint.manifest["training"]["base_sha256"] == base.manifest["sha256"]
        base_logits = jax.jit(base.policy.act)(base.params, obs, mask)
        np.testing.assert_allclose(np.asarray(jnp.where(mask, logits, 0.0)),
                                   np.asarray(jnp.where(mask, base_logits, 0.0)), atol=1e-5)
        return
    trained = evaluate_checkpoint(path, task, 8, stochastic=False, seed=0)
    random = _random(task)
    assert trained["mean_return"] > random["mean_return"] + MARGIN.get(task, 1.0), (
        trained, random)
