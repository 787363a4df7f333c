"""COMPASS training end to end on a tiny config, and its bad-input paths."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ceiling.cli import main
from ceiling.errors import CeilingError
from ceiling.policies.checkpoint import load_checkpoint, save_checkpoint
from ceiling.policies.networks import condition
from ceiling.tasks import instances
from ceiling.training.compass import (
    compass_policy,
    contrastive_advantage,
    select_and_record,
    winners_take_all,
)
from ceiling.training.config import resolve_config

TASK = "connector:con-5x5x3a"
# Per update: 4 instances x (4 latents + 1 winner rollout) x horizon 25 = 500 steps.
TINY = ["--set", "num_envs=4", "--set", "num_latents=4", "--set", "num_minibatches=2",
        "--set", "total_steps=1500", "--set", "eval_every=1000", "--set", "eval_instances=3",
        "--set", "latent_dim=4", "--set", "learning_rate=0.01"]


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory, small_policy):
    policy, params = small_policy
    return save_checkpoint(tmp_path_factory.mktemp("base") / "ippo", policy, params)


@pytest.mark.slow
def test_compass_training_writes_a_conditioned_checkpoint(tmp_path, base_checkpoint) -> None:
    out = tmp_path / "compass"
    code = main(["train", "--task", TASK, "--algo", "compass", "--from", str(base_checkpoint),
                 "--out", str(out), "--quiet", *TINY])
    assert code == 0
    for name in ("config.yaml", "metrics.jsonl", "convergence.json", "learning_curve.png"):
        assert (out / name).is_file()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    trained = [r for r in records if r["update"] > 0]
    assert len(trained) == 3
    for record in trained:
        assert record["best_latent_return"] >= record["mean_latent_return"] - 1e-6
        assert record["latent_range"] >= 0 and record["latent_spread"] >= 0
    for field in ("eval_zero_latent_return", "eval_sampled_best_return", "eval_tie_share",
                  "eval_winner_spread", "eval_base_sampled_best_return"):
        assert field in records[0]
    # The winner is trained on the very rollout that won.
    assert all(record["replay_match"] == 1.0 for record in trained)

    checkpoint = load_checkpoint(out / "last", task=TASK)
    assert checkpoint.manifest["algorithm"] == "compass"
    assert checkpoint.manifest["network"]["latent_dim"] == 4
    assert checkpoint.manifest["network"]["latent_prior"] == "uniform[-1, 1]"
    base = load_checkpoint(base_checkpoint)
    # Only the latent pathway learned: a full-rank map, non-zero; the trunk and the critic are
    # the base's, so z = 0 acts exactly like the base policy.
    actor = checkpoint.params["actor"]["params"]
    assert np.abs(np.asarray(actor["latent_full"]["kernel"])).max() > 0
    for layer, weights in base.params["actor"]["params"].items():
        for name, value in weights.items():
            np.testing.assert_array_equal(np.asarray(actor[layer][name]), np.asarray(value))
    observation = jax.random.normal(jax.random.PRNGKey(0), (3, *base.policy.spec.observation_shape))
    mask = np.ones((3, base.policy.spec.num_actions), bool)
    np.testing.assert_array_equal(
        np.asarray(checkpoint.policy.act(checkpoint.params, observation, mask)),
        np.asarray(base.policy.act(base.params, observation, mask)))

    # The result searches with compass from the command line, verified.
    result_path = tmp_path / "result.json"
    assert main(["solve", "--checkpoint", str(out / "last"), "--task", TASK, "--strategy",
                 "compass", "--rollouts", "16", "--width", "8", "--out", str(result_path)]) == 0
    result = json.loads(result_path.read_text())
    assert result["solution"]["verified"] == pytest.approx(result["solution"]["return"])


def test_compass_training_bad_input(tmp_path, base_checkpoint, capsys) -> None:
    out = str(tmp_path / "run")
    assert main(["train", "--task", TASK, "--algo", "compass", "--out", out]) == 2
    assert "pass --from CHECKPOINT" in capsys.readouterr().err
    assert main(["train", "--task", TASK, "--algo", "ippo", "--from", str(base_checkpoint),
                 "--out", out]) == 2
    assert "--from is only for --algo compass" in capsys.readouterr().err
    assert main(["train", "--task", "smax:3m", "--algo", "compass", "--from",
                 str(base_checkpoint), "--out", out]) == 2
    assert "was trained for 'connector:con-5x5x3a', not 'smax:3m'" in capsys.readouterr().err
    assert main(["train", "--task", TASK, "--algo", "compass", "--from", str(base_checkpoint),
                 "--out", out, "--set", "num_latents=0"]) == 2
    assert "num_latents must be positive" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_latent_size_mismatch_is_an_error(small_policy) -> None:
    policy, params = small_policy
    conditioned, conditioned_params = condition(policy, params, 8, jax.random.PRNGKey(0))

    class Fake:
        pass

    checkpoint = Fake()
    checkpoint.policy, checkpoint.params, checkpoint.path = conditioned, conditioned_params, "x"
    config = resolve_config(TASK, "compass", overrides={"latent_dim": 16})
    with pytest.raises(CeilingError, match="latent size 8, but the config asks for latent_dim 16"):
        compass_policy(checkpoint, config, jax.random.PRNGKey(0))
    same = resolve_config(TASK, "compass", overrides={"latent_dim": 8})
    kept_policy, kept_params = compass_policy(checkpoint, same, jax.random.PRNGKey(0))
    assert kept_policy == conditioned and kept_params is conditioned_params


def test_contrastive_advantage_skips_ties_or_compares_with_the_mean() -> None:
    returns = jnp.array([[1.0, 3.0, 2.0], [2.0, 2.0, 0.0], [5.0, 1.0, 0.0]])
    np.testing.assert_allclose(contrastive_advantage(returns), [1.0, 0.0, 4.0])
    np.testing.assert_allclose(contrastive_advantage(returns, "mean"),
                               [1.0, 2.0 - 4.0 / 3.0, 3.0], rtol=1e-6)


def test_second_early_breaks_ties_by_the_earlier_rewards() -> None:
    returns = jnp.array([[1.0, 3.0, 2.0], [2.0, 2.0, 0.0], [5.0, 1.0, 0.0], [4.0, 4.0, 4.0]])
    early = jnp.array([[0.9, 1.0, 1.9], [1.2, 1.5, 0.0], [2.0, 0.9, 0.0], [3.0, 3.0, 1.0]])
    latents = jnp.arange(12.0).reshape(4, 3, 1)
    # Untied instances keep their gap; the tie on instance 1 goes to the earlier latent with
    # the mean untied gap (1 and 4: 2.5); instance 3's earliest two tie again: no gradient.
    np.testing.assert_allclose(contrastive_advantage(returns, "second-early", early),
                               [1.0, 2.5, 4.0, 0.0])
    winner, chosen = winners_take_all(returns, latents, early)
    np.testing.assert_array_equal(winner, [1, 1, 0, 0])
    np.testing.assert_array_equal(chosen[:, 0], [1.0, 4.0, 6.0, 9.0])
    # Without early returns the first of the tied wins, as before.
    np.testing.assert_array_equal(winners_take_all(returns, latents)[0], [1, 0, 0, 0])
    all_tied = contrastive_advantage(jnp.ones((2, 3)), "second-early",
                                     jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(all_tied, [1.0, 0.0])  # no untied instance: a win counts 1


@pytest.mark.slow
def test_the_winner_is_trained_on_the_rollout_that_won(connector_task, small_policy) -> None:
    base_policy, base_params = small_policy
    policy, params = condition(base_policy, base_params, 8, jax.random.PRNGKey(1), 0, 10.0, 0.05)
    keys = instances(TASK, "train", 3, key=jax.random.PRNGKey(5))
    latents = jax.random.uniform(jax.random.PRNGKey(6), (3, 6, 8), minval=-1, maxval=1)
    chosen, returns, _, episodes, batch, live = select_and_record(
        connector_task, policy, params, keys, latents, jax.random.PRNGKey(7))
    best = np.argmax(np.asarray(returns), axis=1)
    np.testing.assert_array_equal(chosen, np.asarray(latents)[np.arange(3), best])
    # The recorded episode is the winning sampled rollout itself, replayed from its key.
    np.testing.assert_allclose(np.asarray(episodes.total_return),
                               np.asarray(returns).max(axis=1), atol=1e-5)
    # Its log-probabilities are those of the winner's latent, not another one's.
    logits = policy.act(params, batch.observation, batch.action_mask, chosen)
    log_prob = jnp.take_along_axis(jax.nn.log_softmax(jnp.where(
        jnp.isfinite(logits), logits, -1e9)), batch.action[..., None], -1)[..., 0]
    weight = np.asarray(live)[..., None]
    np.testing.assert_allclose(np.asarray(log_prob) * weight,
                               np.asarray(batch.log_prob) * weight, atol=1e-5)
    loser = np.asarray(latents)[np.arange(3), (best + 1) % 6]
    other = policy.act(params, batch.observation, batch.action_mask, jnp.asarray(loser))
    assert not np.allclose(np.asarray(other), np.asarray(logits))


@pytest.mark.slow
def test_winners_are_picked_and_replayed_at_the_training_temperature(connector_task,
                                                                     small_policy) -> None:
    from ceiling.training.compass import latent_returns

    base_policy, base_params = small_policy
    policy, params = condition(base_policy, base_params, 8, jax.random.PRNGKey(1), 0, 10.0, 0.05)
    keys = instances(TASK, "train", 3, key=jax.random.PRNGKey(5))
    latents = jax.random.uniform(jax.random.PRNGKey(6), (3, 6, 8), minval=-1, maxval=1)
    greedy, _, _ = latent_returns(connector_task, policy, params, keys, latents)
    cold = select_and_record(connector_task, policy, params, keys, latents,
                             jax.random.PRNGKey(7), temperature=1e-4)
    warm = select_and_record(connector_task, policy, params, keys, latents,
                             jax.random.PRNGKey(7))
    # Near zero temperature a latent's sampled rollout is its arg-max one (up to logits that
    # tie within the temperature); at 1, with the same keys, far fewer are.
    cold_same = np.isclose(np.asarray(cold[1]), np.asarray(greedy), atol=1e-5).mean()
    warm_same = np.isclose(np.asarray(warm[1]), np.asarray(greedy), atol=1e-5).mean()
    assert cold_same >= 0.8 and cold_same > warm_same + 0.2, (cold_same, warm_same)
    # The winner's record replays its rollout at that temperature.
    np.testing.assert_allclose(np.asarray(cold[3].total_return),
                               np.asarray(cold[1]).max(axis=1), atol=1e-5)


def test_latent_scores_of_a_zero_latent_map_are_the_base_policy(connector_task,
                                                                small_policy) -> None:
    # With the latent map at zero every latent is the base policy, so each latent's arg-max
    # return is z = 0's, and its sampled rollout (same action key) is the base's l-th sample;
    # the benchmark's paired "best latent minus the base's best sample" rests on that pairing.
    from ceiling.policies.latent import sample_prior
    from ceiling.training.compass import make_latent_scores

    policy, params = small_policy
    conditioned, cparams = condition(policy, params, 4, jax.random.PRNGKey(1), 0, 10.0, 0.0)
    keys = instances(TASK, "test", 3)
    latents = sample_prior(jax.random.PRNGKey(2), (5, 4))
    found = make_latent_scores(connector_task, conditioned, keys, latents,
                               (policy, params))(cparams)
    assert found.greedy.shape == found.sampled.shape == found.base_sampled.shape == (3, 5)
    np.testing.assert_allclose(found.greedy, np.repeat(found.zero[:, None], 5, axis=1),
                               atol=1e-5)
    np.testing.assert_allclose(found.sampled, found.base_sampled, atol=1e-5)
    # Sampled rollouts differ between action keys (the pairing is not trivially constant).
    assert len(np.unique(found.base_sampled.round(4))) > 1


def test_early_return_weights_each_reward_by_how_early_it_came(connector_task,
                                                                small_policy) -> None:
    from ceiling.policies.rollout import record_episode

    policy, params = small_policy
    key = instances(TASK, "train", 1, key=jax.random.PRNGKey(3))[0]
    episode, trajectory = record_episode(connector_task, policy, params, key,
                                         jax.random.PRNGKey(4))
    rewards = np.asarray(trajectory.transitions.reward, np.float64)
    horizon = rewards.shape[0]
    assert np.count_nonzero(rewards) > 1  # something to weigh
    weights = 1.0 - np.arange(horizon) / horizon
    np.testing.assert_allclose(float(episode.early_return), (rewards * weights).sum(),
                               rtol=1e-5)
    np.testing.assert_allclose(float(episode.total_return), rewards.sum(), rtol=1e-5)
