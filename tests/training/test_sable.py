"""SABLE training: agent orders, PPO ratios of the conditionals, `ceiling train --algo sable`,
and COMPASS on a SABLE base."""

from __future__ import annotations

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

from ceiling.cli import main
from ceiling.errors import CeilingError
from ceiling.policies.checkpoint import load_checkpoint, save_checkpoint
from ceiling.policies.networks import make_policy
from ceiling.policies.sable import sable_config
from ceiling.tasks import instances, make
from ceiling.training import loop, ppo
from ceiling.training.config import PPOConfig, resolve_config
from ceiling.training.run import train
from ceiling.training.sable import (
    agent_orders,
    make_sable_update,
    permute_agents,
    restore_agents,
    sable_network,
)

TASK = "connector:con-5x5x3a"
TINY = dict(algorithm="sable", architecture="sable", num_envs=16, rollout_length=16,
            num_minibatches=2, embed_dim=16)


@pytest.mark.slow
def test_agent_orders_are_permutations_and_restore_inverts_them() -> None:
    orders = np.asarray(agent_orders(jax.random.PRNGKey(0), 64, 4, shuffle=True))
    assert all(sorted(row) == [0, 1, 2, 3] for row in orders)
    assert len({tuple(row) for row in orders}) > 5  # different environments, different orders
    np.testing.assert_array_equal(agent_orders(jax.random.PRNGKey(0), 3, 4, shuffle=False),
                                  np.tile(np.arange(4), (3, 1)))
    x = jax.random.normal(jax.random.PRNGKey(1), (64, 4, 7))
    permuted = permute_agents(x, jnp.asarray(orders))
    np.testing.assert_array_equal(permuted[5, 2], x[5, orders[5, 2]])
    np.testing.assert_array_equal(restore_agents(permuted, jnp.asarray(orders)), x)
    # Leading time axis, per-agent scalars: [T, E, A].
    values = jax.random.normal(jax.random.PRNGKey(2), (3, 64, 4))
    time_orders = jnp.broadcast_to(jnp.asarray(orders), (3, 64, 4))
    np.testing.assert_array_equal(
        restore_agents(permute_agents(values, time_orders), time_orders), values)


def test_sable_config_fields_stay_out_of_other_algorithms_headers() -> None:
    # IPPO/MAPPO/COMPASS run headers (and so resuming them) are what they were before SABLE.
    assert "embed_dim" not in PPOConfig().to_dict()
    assert "shuffle_agents" not in resolve_config(TASK, "mappo").to_dict()
    sable = resolve_config(TASK, "sable", overrides={"embed_dim": 32})
    assert sable.architecture == "sable" and sable.to_dict()["embed_dim"] == 32
    assert sable_network(sable).embed_dim == 32
    with pytest.raises(CeilingError, match="does not fit architecture"):
        PPOConfig(algorithm="sable").validate()


@pytest.mark.slow
def test_stored_log_probs_are_the_conditionals_the_loss_scores(connector_task) -> None:
    # With a vanishing learning rate the parameters stay put, so every PPO ratio must be 1:
    # each agent's log-probability was stored in the order it acted (a shuffled one) and the
    # loss recomputes it from the same order. Storing any agent out of place breaks this.
    config = PPOConfig(**TINY, learning_rate=1e-12, total_steps=512)
    policy = make_policy(connector_task.spec, sable_network(config))
    runner = ppo.init_runner(connector_task, policy, config, jax.random.PRNGKey(0))
    chunk = ppo.make_train_chunk(connector_task, policy, config, 1, make=make_sable_update)
    _, metrics = chunk(runner)
    assert float(np.abs(np.asarray(metrics.approx_kl)).max()) < 1e-6
    assert np.isfinite(np.asarray(metrics.value_loss)).all()


def greedy_returns_in_orders(task, policy, params, keys, orders) -> np.ndarray:
    """Greedy episode returns [len(orders), N], the agents acting in each order instead of
    0..A-1 (one compiled program for every order: the order is an argument)."""

    def episode(order, key):
        inverse = jnp.argsort(order)
        state, _ = task.reset(key)

        def body(state, _):
            timestep = state.timestep
            action = policy.greedy(params, timestep.observation[order],
                                   timestep.action_mask[order])[inverse]
            state, timestep = task.step(state, action)
            return state, timestep.reward

        return jax.lax.scan(body, state, None, task.spec.horizon)[1].sum()

    per_order = jax.vmap(jax.vmap(episode, in_axes=(None, 0)), in_axes=(0, None))
    return np.asarray(jax.jit(per_order)(jnp.asarray(orders), keys))


@pytest.mark.slow
def test_ceiling_train_sable_learns_and_does_not_depend_on_the_agent_order(tmp_path) -> None:
    out = tmp_path / "run"
    settings = {"num_envs": 32, "rollout_length": 32, "num_minibatches": 2,
                "learning_rate": 0.001, "embed_dim": 32, "eval_every": 10240,
                "eval_instances": 32}
    code = main(["train", "--task", TASK, "--algo", "sable", "--steps", "30720", "--out",
                 str(out), "--quiet", *itertools.chain.from_iterable(
                     ("--set", f"{k}={v}") for k, v in settings.items())])
    assert code == 0
    for name in ("config.yaml", "metrics.jsonl", "convergence.json", "learning_curve.png"):
        assert (out / name).is_file()
    header = yaml.safe_load((out / "config.yaml").read_text())
    assert header["algorithm"] == header["architecture"] == "sable"
    assert header["shuffle_agents"] is True and header["embed_dim"] == 32
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r["eval_return"] for r in records if "eval_return" in r]
    # From a random policy (about -0.8 on these instances) to most agents connected.
    assert evals[-1] > evals[0] + 1.5, evals
    checkpoint = load_checkpoint(out / "last", task=TASK)
    assert checkpoint.manifest["algorithm"] == "sable"
    assert checkpoint.manifest["network"]["architecture"] == "sable"
    # Trained on random agent orders, the greedy policy is about as good in every order.
    task, keys = make(TASK), instances(TASK, "test", 32)
    orders = list(itertools.permutations(range(task.spec.num_agents)))
    means = list(greedy_returns_in_orders(task, checkpoint.policy, checkpoint.params, keys,
                                          orders).mean(axis=1))
    assert max(means) - min(means) < 0.5, means
    assert min(means) > evals[0] + 1.0, means


@pytest.mark.slow
def test_an_interrupted_sable_run_resumes_to_the_uninterrupted_result(tmp_path,
                                                                     monkeypatch) -> None:
    # The SABLE trainer carries the IPPO/MAPPO `Runner`, so the shared loop's resume state
    # covers it: agent orders are drawn from the runner's key like every other draw.
    monkeypatch.setattr(loop, "SAVE_EVERY_SECONDS", 0.0)
    config = PPOConfig(**TINY, total_steps=1024, eval_every=512, eval_instances=2)
    whole = train(TASK, config, tmp_path / "whole")

    def stop(record: dict) -> None:
        if record["step"] >= 512:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TASK, config, tmp_path / "cut", on_progress=stop)
    resumed = train(TASK, config, tmp_path / "cut", resume=True)
    assert resumed["final_eval"] == whole["final_eval"]
    for a, b in zip(jax.tree_util.tree_leaves(load_checkpoint(tmp_path / "whole" / "last").params),
                    jax.tree_util.tree_leaves(load_checkpoint(tmp_path / "cut" / "last").params),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_compass_trains_latents_on_a_sable_base(tmp_path, connector_task) -> None:
    policy = make_policy(connector_task.spec, sable_config(embed_dim=16))
    base = save_checkpoint(tmp_path / "sable", policy, jax.jit(policy.init)(
        jax.random.PRNGKey(0)))
    out = tmp_path / "compass"
    tiny = ["num_envs=4", "num_latents=4", "num_minibatches=2", "total_steps=1000",
            "eval_every=500", "eval_instances=3", "latent_dim=4", "learning_rate=0.01"]
    assert main(["train", "--task", TASK, "--algo", "compass", "--from", str(base), "--out",
                 str(out), "--quiet", *itertools.chain.from_iterable(
                     ("--set", item) for item in tiny)]) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    trained = [r for r in records if r["update"] > 0]
    assert trained and all(r["replay_match"] == 1.0 for r in trained)
    checkpoint = load_checkpoint(out / "last", task=TASK)
    assert checkpoint.manifest["algorithm"] == "compass"
    assert checkpoint.policy.config.architecture == "sable"
    latent = np.asarray(checkpoint.params["actor"]["params"]["latent_full"]["kernel"])
    assert np.abs(latent).max() > 0
    # The trunk did not move (trunk_lr_scale 0): z = 0 is still the base policy.
    _, timestep = jax.jit(connector_task.reset)(jax.random.PRNGKey(1))
    loaded = load_checkpoint(base)
    np.testing.assert_array_equal(
        np.asarray(jax.jit(checkpoint.policy.act)(checkpoint.params, timestep.observation,
                                                  timestep.action_mask)),
        np.asarray(jax.jit(loaded.policy.act)(loaded.params, timestep.observation,
                                              timestep.action_mask)))
