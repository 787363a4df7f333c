"""Reward components and objectives: the vocabulary every other reuse module speaks.

An objective is a weight vector over the reward components, so a composite objective's reward is
the weighted sum of its parts by construction, and successor features let us value any policy
under any objective without interaction (V_w = ψ·w). Names are the components joined by `+`
(`path+gold+hazard`); weights may also be given explicitly (`1,1,0.5,0`). Parsing lives here
because it is the boundary where users' strings become arrays.
"""

from __future__ import annotations

import numpy as np

from ceiling.errors import CeilingError

COMPONENTS: tuple[str, ...] = ("path", "gold", "hazard", "lever")
"""Reward components in vector order: reach the exit, collect gold, enter a hazard (negative),
pull the lever."""

NUM_COMPONENTS = len(COMPONENTS)

BASE_OBJECTIVES: tuple[str, ...] = COMPONENTS
"""The library trains one policy family per single component."""

COMPOSITES: tuple[str, ...] = ("path+gold", "path+gold+hazard", "path+gold+hazard+lever")
"""The composite objectives of the comparison with training from scratch."""


def weights_of(objective: str | list[float] | tuple[float, ...] | np.ndarray) -> np.ndarray:
    """An objective as a float64 weight vector `[NUM_COMPONENTS]`.

    Accepts component names joined by `+` (each listed component gets weight 1), a
    comma-separated list of numbers, or a sequence of numbers. Raises `CeilingError` for an
    unknown component, an empty objective, the wrong number of weights, or all-zero weights.
    """
    if isinstance(objective, str):
        text = objective.strip()
        if not text:
            raise CeilingError(
                f"empty objective; name components joined by '+' from {', '.join(COMPONENTS)} "
                f"(e.g. path+gold) or give {NUM_COMPONENTS} comma-separated weights")
        if any(ch.isdigit() for ch in text) and "+" not in text:
            try:
                values = [float(part) for part in text.split(",")]
            except ValueError as err:
                raise CeilingError(f"cannot read weights {text!r}: {err}") from None
            return weights_of(values)
        names = [part.strip() for part in text.split("+")]
        if any(not name for name in names):
            raise CeilingError(f"empty component in objective {text!r}; valid components: "
                               f"{', '.join(COMPONENTS)}")
        unknown = [name for name in names if name not in COMPONENTS]
        if unknown:
            raise CeilingError(f"unknown component {unknown[0]!r} in objective {text!r}; valid "
                               f"components: {', '.join(COMPONENTS)}")
        if len(set(names)) != len(names):
            raise CeilingError(f"component repeated in objective {text!r}")
        weights = np.zeros(NUM_COMPONENTS)
        for name in names:
            weights[COMPONENTS.index(name)] = 1.0
        return weights
    weights = np.asarray(objective, dtype=np.float64).reshape(-1)
    if weights.size == 0:
        raise CeilingError(f"empty objective; give {NUM_COMPONENTS} weights for "
                           f"{', '.join(COMPONENTS)}")
    if weights.size != NUM_COMPONENTS:
        raise CeilingError(f"objective has {weights.size} weights but there are "
                           f"{NUM_COMPONENTS} components ({', '.join(COMPONENTS)})")
    if not np.all(np.isfinite(weights)):
        raise CeilingError(f"objective weights must be finite, got {weights.tolist()}")
    if not np.any(weights):
        raise CeilingError("objective weights are all zero; at least one component must count")
    return weights


def name_of(weights: np.ndarray) -> str:
    """The `+`-joined name of a 0/1 weight vector, else the weights as `w1,w2,...`."""
    weights = np.asarray(weights, dtype=np.float64)
    if np.all((weights == 0) | (weights == 1)) and np.any(weights):
        return "+".join(name for name, w in zip(COMPONENTS, weights, strict=True) if w)
    return ",".join(f"{w:g}" for w in weights)


def sub_objectives(weights: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The non-zero components of an objective, each as `(name, one-hot weight vector)`: the
    units that retrieval looks up in the library."""
    parts = []
    for index, name in enumerate(COMPONENTS):
        if weights[index] != 0:
            unit = np.zeros(NUM_COMPONENTS)
            unit[index] = 1.0
            parts.append((name, unit))
    return parts
