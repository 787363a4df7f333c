"""PPO hyperparameters: defaults from the literature, per-task overrides from a YAML file.

Every knob is a named field with its default visible here. `resolve_config` layers, in order:
the defaults, the shipped per-task overrides (`ceiling/configs/train.yaml`), a user's config
file, then `--set key=value` pairs; `validate` rejects bad values before anything compiles,
naming the field.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ceiling.errors import CeilingError
from ceiling.policies.networks import ACTIVATIONS, ALGORITHMS, architectures

# What `ceiling train --algo` accepts: the base trainers (IPPO, MAPPO, SABLE), and COMPASS,
# which starts from a base checkpoint (`--from`) and keeps that checkpoint's network and critic.
TRAIN_ALGORITHMS = (*ALGORITHMS, "compass")
# the baseline the winning latent is compared with (ceiling.training.compass.contrastive_advantage)
COMPASS_ADVANTAGES = ("second", "mean", "second-early")
# Fields only SABLE reads: written to run headers and manifests of SABLE runs only, so that the
# configs of IPPO/MAPPO/COMPASS runs (and resuming them) are what they were before SABLE.
SABLE_FIELDS = ("embed_dim", "num_blocks", "num_heads", "shuffle_agents")


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    algorithm: str = "ippo"  # ippo: critic on own observation; mappo: on the global state;
    # sable: the SABLE sequence model (ceiling.training.sable; architecture "sable");
    # compass: latent-conditioned training from a base checkpoint (ceiling.training.compass)
    total_steps: int = 20_000_000  # environment steps (one joint action in one environment)
    num_envs: int = 64  # parallel environments (vmapped)
    rollout_length: int = 128  # steps per environment between updates
    num_epochs: int = 4
    num_minibatches: int = 4  # minibatches split the environments; must divide num_envs
    learning_rate: float = 2.5e-4
    anneal_lr: bool = False  # linear decay of the learning rate to zero
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    entropy_coef: float = 0.01
    value_coef: float = 0.5
    max_grad_norm: float = 0.5
    architecture: str = "mlp"  # a registered network (ceiling.policies.networks.ARCHITECTURES)
    hidden_sizes: tuple[int, ...] = (128, 128)
    activation: str = "relu"
    eval_every: int = 500_000  # environment steps between greedy test-set evaluations
    eval_instances: int = 32  # test instances per evaluation
    seed: int = 0
    # COMPASS only: each update scores `num_latents` prior latents on each of `num_envs`
    # training instances and trains the best one per instance (winner takes all).
    num_latents: int = 64
    latent_dim: int = 16
    latent_rank: int = 0  # 0: a full-rank latent input (rank 4 was the first design)
    latent_scale: float = 10.0  # the latent's input scale (full rank)
    latent_init: float = 0.01  # std of the full-rank latent weights at the start
    latent_layers: int = 1  # hidden layers of an MLP that receive the latent (full rank)
    latent_learning_rate: float = 1e-3  # Adam rate of the latent weights
    trunk_lr_scale: float = 0.0  # the rest of the actor learns at this x learning_rate
    # winner's return minus the second best's, or the "mean"; "second-early": ties broken by
    # which rewards came earlier
    compass_advantage: str = "second"
    compass_temperature: float = 1.0  # of the sampled rollouts that pick and train the winners
    # SABLE only (the paper's defaults: 1 block, embedding 64, 1 head):
    embed_dim: int = 64  # token width of the encoder and decoder
    num_blocks: int = 1  # retention blocks in the encoder, and again in the decoder
    num_heads: int = 1  # retention heads (must divide embed_dim)
    shuffle_agents: bool = True  # a random agent order per environment step in training

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.rollout_length

    @property
    def num_updates(self) -> int:
        return max(1, self.total_steps // self.steps_per_update)

    def validate(self) -> None:
        def positive(name: str) -> None:
            if not getattr(self, name) > 0:
                raise CeilingError(f"{name} must be positive, got {getattr(self, name)!r}")

        if self.algorithm not in TRAIN_ALGORITHMS:
            raise CeilingError(
                f"algorithm must be one of {', '.join(TRAIN_ALGORITHMS)}, got {self.algorithm!r}"
            )
        for name in ("total_steps", "num_envs", "rollout_length", "num_epochs",
                     "num_minibatches", "learning_rate", "max_grad_norm", "eval_every",
                     "eval_instances", "num_latents", "latent_dim", "latent_scale",
                     "latent_learning_rate", "compass_temperature", "embed_dim", "num_blocks",
                     "num_heads", "latent_layers"):
            positive(name)
        for name in ("latent_rank", "latent_init", "trunk_lr_scale"):
            if getattr(self, name) < 0:
                raise CeilingError(f"{name} must be non-negative, got {getattr(self, name)!r}")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise CeilingError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        for name in ("clip_eps", "entropy_coef", "value_coef"):
            if getattr(self, name) < 0:
                raise CeilingError(f"{name} must be non-negative, got {getattr(self, name)!r}")
        if self.num_envs % self.num_minibatches:
            raise CeilingError(
                f"num_envs ({self.num_envs}) must be divisible by num_minibatches "
                f"({self.num_minibatches})"
            )
        if self.compass_advantage not in COMPASS_ADVANTAGES:
            raise CeilingError(f"compass_advantage must be one of "
                               f"{', '.join(COMPASS_ADVANTAGES)}, got {self.compass_advantage!r}")
        if self.architecture not in architectures():
            raise CeilingError(f"architecture must be one of {', '.join(architectures())}, "
                               f"got {self.architecture!r}")
        if self.algorithm in ALGORITHMS and (
                (self.algorithm == "sable") != (self.architecture == "sable")):
            raise CeilingError(f"algorithm {self.algorithm!r} does not fit architecture "
                               f"{self.architecture!r}: algorithm sable trains the sable "
                               "architecture, and ippo/mappo an MLP")
        if self.embed_dim % self.num_heads:
            raise CeilingError(f"num_heads ({self.num_heads}) must divide embed_dim "
                               f"({self.embed_dim})")
        if self.activation not in ACTIVATIONS:
            raise CeilingError(
                f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}"
            )
        if not self.hidden_sizes or any(h < 1 for h in self.hidden_sizes):
            raise CeilingError(f"hidden_sizes must be positive integers, got {self.hidden_sizes}")
        if self.algorithm != "compass" and self.total_steps < self.steps_per_update:
            raise CeilingError(
                f"total_steps ({self.total_steps}) is less than one update "
                f"(num_envs * rollout_length = {self.steps_per_update})"
            )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["hidden_sizes"] = list(self.hidden_sizes)
        if self.algorithm != "sable":
            for name in SABLE_FIELDS:
                del data[name]
        return data


FIELDS = {f.name: f for f in dataclasses.fields(PPOConfig)}


def _coerce(name: str, value: Any) -> Any:
    """Convert a YAML or command-line value to the field's type, or fail naming the field."""
    if name not in FIELDS:
        raise CeilingError(f"unknown config field {name!r}; valid fields: {', '.join(FIELDS)}")
    default = getattr(PPOConfig(), name)
    try:
        if isinstance(value, str):
            value = parse_scalar(value) if not isinstance(default, str) else value
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError
            return value
        if isinstance(default, tuple):
            items = value if isinstance(value, list | tuple) else [value]
            return tuple(int(v) for v in items)
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise CeilingError(
            f"config field {name!r} expects {type(default).__name__}, got {value!r}"
        ) from None


def parse_scalar(text: str) -> Any:
    """'20M' -> 20000000, '2.5e-4' -> 0.00025, 'true' -> True, '128,128' -> [128, 128]."""
    text = text.strip()
    if "," in text:
        return [parse_scalar(part) for part in text.split(",")]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    multipliers = {"k": 1_000, "m": 1_000_000, "b": 1_000_000_000}
    if lowered and lowered[-1] in multipliers:
        return int(float(lowered[:-1]) * multipliers[lowered[-1]])
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (plain
    YAML keeps the last one silently, so a pasted block could override a setting unseen)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506  (a SafeLoader subclass)


def shipped_overrides(task: str, algorithm: str) -> dict[str, Any]:
    """The per-task overrides shipped with ceiling for `task` (all algorithms, then one)."""
    text = resources.files("ceiling").joinpath("configs/train.yaml").read_text()
    table = load_yaml(text) or {}
    entry = table.get(task, {}) or {}
    merged = {k: v for k, v in entry.items() if k not in TRAIN_ALGORITHMS}
    merged.update(entry.get(algorithm, {}) or {})
    return merged


def load_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CeilingError(f"config file {path} does not exist")
    try:
        data = load_yaml(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise CeilingError(f"config file {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise CeilingError(f"config file {path} must be a mapping of field: value")
    return data


def resolve_config(
    task: str,
    algorithm: str,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> PPOConfig:
    """Defaults < shipped per-task overrides < config file < explicit overrides; validated."""
    values: dict[str, Any] = {"algorithm": algorithm}
    values.update(shipped_overrides(task, algorithm))
    if config_file is not None:
        values.update(load_config_file(config_file))
    values.update(overrides or {})
    if algorithm == "sable":
        values.setdefault("architecture", "sable")  # the one network SABLE trains
    config = PPOConfig(**{name: _coerce(name, value) for name, value in values.items()})
    config.validate()
    return config
