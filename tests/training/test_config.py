from __future__ import annotations

import pytest

from ceiling.errors import CeilingError
from ceiling.training.config import PPOConfig, parse_scalar, resolve_config


def test_defaults_follow_the_literature() -> None:
    config = PPOConfig()
    assert (config.learning_rate, config.rollout_length, config.num_epochs) == (2.5e-4, 128, 4)
    assert (config.gamma, config.gae_lambda, config.clip_eps) == (0.99, 0.95, 0.2)
    assert (config.entropy_coef, config.hidden_sizes) == (0.01, (128, 128))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": -1e-3}, "learning_rate"),
        ({"num_envs": 10, "num_minibatches": 4}, "num_envs"),
        ({"gamma": 1.5}, "gamma"),
        ({"clip_eps": -0.1}, "clip_eps"),
        ({"num_epochs": 0}, "num_epochs"),
        ({"hidden_sizes": [0, 4]}, "hidden_sizes"),
        ({"activation": "swish"}, "activation"),
        ({"total_steps": 100}, "total_steps"),
        ({"num_envs": "many"}, "num_envs"),
        ({"learing_rate": 1e-3}, "learing_rate"),
        ({"compass_temperature": 0.0}, "compass_temperature"),
    ],
)
def test_invalid_hyperparameters_name_the_field(overrides, field) -> None:
    with pytest.raises(CeilingError, match=field):
        resolve_config("connector:con-5x5x3a", "ippo", overrides=overrides)


def test_unknown_algorithm() -> None:
    with pytest.raises(CeilingError, match="ippo, mappo"):
        resolve_config("smax:3m", "vdn")


def test_layering_defaults_shipped_file_and_overrides(tmp_path) -> None:
    shipped = resolve_config("connector:con-5x5x3a", "mappo")
    assert shipped.total_steps == 5_000_000 and shipped.algorithm == "mappo"
    user = tmp_path / "ppo.yaml"
    user.write_text("num_envs: 32\nlearning_rate: 1.0e-3\nhidden_sizes: [64, 64]\n")
    config = resolve_config("connector:con-5x5x3a", "ippo", user, {"num_envs": 16})
    assert (config.num_envs, config.learning_rate, config.hidden_sizes) == (16, 1e-3, (64, 64))
    assert config.total_steps == 5_000_000
    with pytest.raises(CeilingError, match="does not exist"):
        resolve_config("smax:3m", "ippo", tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("- just\n- a list\n")
    with pytest.raises(CeilingError, match="mapping"):
        resolve_config("smax:3m", "ippo", tmp_path / "bad.yaml")


def test_parse_scalar() -> None:
    assert parse_scalar("20M") == 20_000_000
    assert parse_scalar("1.5k") == 1500
    assert parse_scalar("2.5e-4") == 2.5e-4
    assert parse_scalar("true") is True
    assert parse_scalar("64,64") == [64, 64]
