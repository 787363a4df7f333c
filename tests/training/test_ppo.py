from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ceiling.errors import CeilingError
from ceiling.policies.checkpoint import load_checkpoint
from ceiling.policies.networks import NetworkConfig, Policy
from ceiling.policies.rollout import evaluate_batch
from ceiling.tasks import instances
from ceiling.training import ppo
from ceiling.training.config import PPOConfig
from ceiling.training.run import convergence_report, train

TINY = dict(num_envs=32, rollout_length=32, num_minibatches=2, learning_rate=1e-3,
            hidden_sizes=(32, 32))


def test_gae_matches_a_reference_loop() -> None:
    rng = np.random.default_rng(0)
    T, E, A = 7, 3, 2
    reward = rng.normal(size=(T, E)).astype(np.float32)
    value = rng.normal(size=(T, E, A)).astype(np.float32)
    done = rng.random((T, E)) < 0.3
    last = rng.normal(size=(E, A)).astype(np.float32)
    transitions = ppo.Transition(
        observation=jnp.zeros((T, E, A, 1)), action_mask=jnp.ones((T, E, A, 2), bool),
        global_state=jnp.zeros((T, E, 1)), action=jnp.zeros((T, E, A), jnp.int32),
        log_prob=jnp.zeros((T, E, A)), value=jnp.asarray(value), reward=jnp.asarray(reward),
        done=jnp.asarray(done),
    )
    advantages, targets = ppo.gae(transitions, jnp.asarray(last), 0.9, 0.8)
    expected = np.zeros((T, E, A), np.float32)
    running = np.zeros((E, A), np.float32)
    next_value = last
    for t in reversed(range(T)):
        not_done = 1.0 - done[t][:, None]
        delta = reward[t][:, None] + 0.9 * next_value * not_done - value[t]
        running = delta + 0.9 * 0.8 * not_done * running
        expected[t] = running
        next_value = value[t]
    np.testing.assert_allclose(np.asarray(advantages), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(targets), expected + value, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["ippo", "mappo"])
def test_tiny_ppo_run_improves_the_return(connector_task, algorithm) -> None:
    config = PPOConfig(algorithm=algorithm, total_steps=120_000, **TINY)
    policy = Policy(connector_task.spec, NetworkConfig(algorithm, config.hidden_sizes))
    runner = ppo.init_runner(connector_task, policy, config, jax.random.PRNGKey(0))
    keys = instances("connector:con-5x5x3a", "test", 32)

    def greedy_return(params) -> float:
        episodes = evaluate_batch(connector_task, policy, params, keys, jax.random.PRNGKey(0))
        return float(episodes.total_return.mean())

    before = greedy_return(runner.params)
    chunk = ppo.make_train_chunk(connector_task, policy, config, config.num_updates)
    runner, metrics = chunk(runner)
    after = greedy_return(runner.params)
    assert np.all(np.isfinite(np.asarray(metrics.policy_loss)))
    # A random-ish policy wanders into dead ends; a trained one connects most agents.
    assert after > before + 1.0, (before, after)
    train_returns = np.asarray(metrics.episode_return_sum / np.maximum(metrics.episodes, 1))
    assert train_returns[-5:].mean() > train_returns[:5].mean() + 0.5


@pytest.mark.slow
def test_auto_reset_restarts_only_finished_environments(connector_task) -> None:
    keys = instances("connector:con-5x5x3a", "test", 4)
    state, _ = jax.vmap(connector_task.reset)(keys)
    # Push environment 0 to its horizon; the others stay at step 0.
    state = state._replace(step=state.step.at[0].set(connector_task.spec.horizon - 1))
    action = jnp.zeros((4, connector_task.spec.num_agents), jnp.int32)
    new_state, transition, carried = ppo.step_with_reset(
        connector_task, state, action, jax.random.PRNGKey(1)
    )
    assert np.asarray(transition.done).tolist() == [True, False, False, False]
    assert np.asarray(new_state.step).tolist() == [0, 1, 1, 1]
    assert not bool(carried.done[0])
    assert not np.array_equal(np.asarray(new_state.key[0]), np.asarray(keys[0]))
    np.testing.assert_array_equal(np.asarray(new_state.key[1:]), np.asarray(keys[1:]))


@pytest.mark.slow
def test_train_writes_run_directory_and_refuses_to_overwrite(tmp_path) -> None:
    config = PPOConfig(total_steps=8192, eval_every=4096, eval_instances=4, **TINY)
    out = tmp_path / "run"
    report = train("connector:con-5x5x3a", config, out)
    names = {p.name for p in out.iterdir()}
    assert {"config.yaml", "metrics.jsonl", "best", "last", "convergence.json",
            "learning_curve.png"} <= names
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["step"] == 0 and records[-1]["step"] == report["total_steps"] == 8192
    assert sum("eval_return" in r for r in records) >= 3
    last = load_checkpoint(out / "last", task="connector:con-5x5x3a")
    assert last.manifest["training"]["step"] == 8192
    assert last.manifest["training"]["config"]["num_envs"] == 32
    with pytest.raises(CeilingError, match="already exists"):
        train("connector:con-5x5x3a", config, out)
    assert (out / "metrics.jsonl").exists()


def plateau(total: int, every: int, level: float, noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [(s, level + noise * rng.standard_normal()) for s in range(every, total + 1, every)]


def test_convergence_report_passes_a_plateau_and_fails_a_rising_or_short_run() -> None:
    total = 10_000_000
    evals = plateau(total, 400_000, 1.78, 0.04)
    train = plateau(total, 100_000, 1.75, 0.005, seed=1)
    report = convergence_report(evals, total, train)
    assert report["converged"] is True, report["reason"]
    assert report["eval_return"]["points"] == 9 and report["train_return"]["points"] == 34
    low, high = report["train_return"]["ci95"]
    assert low <= report["train_return"]["relative_gain"] <= high

    # Still rising by 10 % over the last third on the training curve: refused, with the figure.
    rising = [(s, 1.5 + 0.3 * s / total) for s, _ in train]
    report = convergence_report(evals, total, rising)
    assert report["converged"] is False
    assert "training return may still be rising" in report["reason"]
    assert report["train_return"]["relative_gain"] == pytest.approx(0.1 / 1.7, rel=0.05)

    # A greedy curve that climbs clearly is refused even if the training curve is flat.
    climbing = [(s, 1.2 + 0.6 * s / total) for s, _ in evals]
    report = convergence_report(climbing, total, train)
    assert report["converged"] is False and "greedy test return still rising" in report["reason"]

    # The new-user run: 1.5 M steps, an evaluation every 400 k steps, a chunk every 100 k.
    short = 1_500_000
    report = convergence_report(plateau(short, 400_000, 1.64, 0.01),
                                short, plateau(short, 100_000, 1.6, 0.005))
    assert report["converged"] is False
    assert "greedy evaluations in the last third" in report["reason"]
    assert "training-return points" in report["reason"]
    # Same data, same verdict and interval: the bootstrap is seeded.
    assert convergence_report(evals, total, train) == convergence_report(evals, total, train)


@pytest.mark.slow
def test_ppo_loss_live_mask_equals_dropping_the_masked_steps(connector_task, small_policy):
    policy, params = small_policy
    rng = np.random.default_rng(1)
    state, timestep = jax.vmap(connector_task.reset)(instances("connector:con-5x5x3a", "test", 2))
    T, E, A = 4, 2, connector_task.spec.num_agents

    def tile(x):
        return jnp.broadcast_to(x, (T, *x.shape))

    batch = ppo.Transition(
        observation=tile(timestep.observation) + jnp.asarray(rng.normal(size=(T, E, A, 1)),
                                                              jnp.float32),
        action_mask=tile(timestep.action_mask), global_state=tile(timestep.global_state),
        action=jnp.zeros((T, E, A), jnp.int32), log_prob=jnp.full((T, E, A), -1.6),
        value=jnp.asarray(rng.normal(size=(T, E, A)), jnp.float32),
        reward=jnp.zeros((T, E)), done=jnp.zeros((T, E), bool),
    )
    advantages = jnp.asarray(rng.normal(size=(T, E, A)), jnp.float32)
    targets = jnp.asarray(rng.normal(size=(T, E, A)), jnp.float32)
    config = PPOConfig()
    live = jnp.asarray([[True, True], [True, True], [False, False], [False, False]])
    masked, _ = ppo.ppo_loss(policy, config, params, batch, advantages, targets, live=live)
    head = jax.tree_util.tree_map(lambda x: x[:2], batch)
    dropped, _ = ppo.ppo_loss(policy, config, params, head, advantages[:2], targets[:2])
    unmasked, _ = ppo.ppo_loss(policy, config, params, batch, advantages, targets)
    all_live, _ = ppo.ppo_loss(policy, config, params, batch, advantages, targets,
                               live=jnp.ones((T, E), bool))
    assert float(masked) == pytest.approx(float(dropped), rel=1e-5)
    assert float(all_live) == pytest.approx(float(unmasked), rel=1e-6)
    assert float(masked) != pytest.approx(float(unmasked), rel=1e-3)
