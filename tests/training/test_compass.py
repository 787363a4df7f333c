"""COMPASS training end to end on a tiny config, and its bad-input paths."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from ceiling.cli import main
from ceiling.errors import CeilingError
from ceiling.policies.checkpoint import load_checkpoint, save_checkpoint
from ceiling.policies.networks import condition
from ceiling.training.compass import compass_policy
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
    assert "eval_zero_latent_return" in records[0]

    checkpoint = load_checkpoint(out / "last", task=TASK)
    assert checkpoint.manifest["algorithm"] == "compass"
    assert checkpoint.manifest["network"]["latent_dim"] == 4
    assert checkpoint.manifest["network"]["latent_prior"] == "uniform[-1, 1]"
    base = load_checkpoint(base_checkpoint)
    # Training moved the latent weights away from zero and kept the base network's shapes.
    latent_out = np.asarray(checkpoint.params["actor"]["params"]["latent_out"]["kernel"])
    assert np.abs(latent_out).max() > 0
    assert checkpoint.params["actor"]["params"]["Dense_0"]["kernel"].shape == \
        base.params["actor"]["params"]["Dense_0"]["kernel"].shape

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
