"""What a checkpoint is called: its label in tables, suites (`shipped:LABEL`), the shipped
checkpoints' directories and the results store. Plain string logic on a manifest, so the report
and the claims can use it without loading a network."""

from __future__ import annotations

from typing import Any

COMPASS_BASE = "mappo"  # the base policy a plain `compass` label means


def algorithm_label(manifest: dict[str, Any]) -> str:
    """What a checkpoint is called in tables, suites (`shipped:LABEL`) and the results store:
    its algorithm, except that a COMPASS checkpoint trained from another base policy than
    MAPPO names that base (`compass-sable`), so two COMPASS checkpoints of one task, searched
    side by side, are told apart and each is compared with its own base policy."""
    algorithm = str(manifest.get("algorithm", "?"))
    network = manifest.get("network")
    base = network.get("algorithm") if isinstance(network, dict) else None
    if algorithm == "compass" and base not in (None, "compass", COMPASS_BASE):
        return f"compass-{base}"
    return algorithm


def label_base(label: str) -> str | None:
    """The base policy an `algorithm_label` names: `compass-sable` -> sable, `compass` ->
    mappo; None for a base policy's own label."""
    if label == "compass":
        return COMPASS_BASE
    prefix, _, base = label.partition("-")
    return base if prefix == "compass" and base else None
