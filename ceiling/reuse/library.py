"""The policy library on disk: build it (train, embed, write atomically) and load it (verified).

A library is a directory:

    manifest.json              grid size, layouts, and one record per policy: objective weights,
                               discount, seed, training steps and seconds, convergence, embedding,
                               predicted start value, file name and sha256
    layouts/layout_000.npz     the grid, its transition tables, its canonical states
    policies/policy_0000.npz   q [S, A], visits [S, A] (the policy's support),
                               psi [S, A, C] (successor features at the policy's discount),
                               trajectory [T, 2] (its greedy (state, action) path)

Only `.npz` and JSON: never pickle (`np.load(..., allow_pickle=False)`). A build writes into a
hidden staging directory next to the target and renames it into place at the end, so a failed
build leaves any previous library untouched, and an existing library is replaced only with
`force`. Loading checks every file's sha256 against the manifest and reports a mismatch or an
unreadable file as a `CeilingError` naming the file.

The layout stores the *whole* transition table. In a deterministic world the transition
recorded for a visited pair is exactly the table's entry, so composition reads the table only
through a policy's visit counts (its observed support); the full table is used by the
coverage oracle, never by composition.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ceiling import __version__
from ceiling.errors import CeilingError
from ceiling.reuse.gridworld import (
    Layout,
    Tables,
    check_size,
    generate_layout,
    greedy_policy,
    transition_tables,
)
from ceiling.reuse.objectives import BASE_OBJECTIVES, COMPONENTS, name_of, weights_of
from ceiling.reuse.planning import optimal_trajectory
from ceiling.reuse.qlearning import DEFAULT_CONFIG, QLearningConfig, train
from ceiling.reuse.successor import (
    EMBEDDING_GAMMA,
    canonical_states,
    embedding,
    successor_features,
)

FORMAT = "ceiling-reuse-library"
FORMAT_VERSION = 1
REGIMES: tuple[float, ...] = (0.0, 0.99)
"""Discount factors: γ = 0 is the support-limited regime (Lever's setting, no value
propagation), γ = 0.99 the planning regime."""


@dataclass
class PolicyRecord:
    """One library policy as the manifest describes it."""

    id: int
    layout: int
    objective: str
    weights: list[float]
    gamma: float
    seed: int
    train_steps: int
    train_seconds: float
    converged: bool
    eval_return: float
    support_size: int
    embedding: list[float]
    psi_start: list[float]
    file: str
    sha256: str

    @property
    def weight_vector(self) -> np.ndarray:
        return np.asarray(self.weights, dtype=np.float64)


@dataclass
class PolicyArrays:
    q: np.ndarray
    visits: np.ndarray
    psi: np.ndarray
    trajectory: np.ndarray


@dataclass
class LayoutData:
    layout: Layout
    tables: Tables
    canonical: np.ndarray


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _save_npz(path: Path, **arrays: Any) -> str:
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
    return _sha256(path)


def policy_record_arrays(layout: Layout, tables: Tables, canonical: np.ndarray, q: np.ndarray,
                         gamma: float) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """What the library keeps for a trained Q-table: the arrays of its `.npz` (without visits),
    its embedding `[C]` and its predicted start features ψ_0.99(start) `[C]`."""
    policy = greedy_policy(q)
    features = successor_features(tables, policy, gamma)
    embed_features = (features if gamma == EMBEDDING_GAMMA
                      else successor_features(tables, policy, EMBEDDING_GAMMA))
    arrays = {"q": q.astype(np.float32), "psi": features.state_action.astype(np.float32),
              "trajectory": optimal_trajectory(tables, q, layout.start_state, layout.horizon)}
    return (arrays, embedding(embed_features.state, canonical),
            embed_features.state[layout.start_state])


def build_library(out: str | Path, grid: int, num_layouts: int, num_seeds: int,
                  force: bool = False, config: QLearningConfig = DEFAULT_CONFIG,
                  regimes: tuple[float, ...] = REGIMES,
                  on_progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train every base objective × seed × regime on `num_layouts` layouts (layout seeds
    0..num_layouts−1) and write the library to `out`. Returns the manifest."""
    check_size(grid)
    if num_layouts < 1 or num_seeds < 1:
        raise CeilingError(f"--layouts and --seeds must be at least 1, got {num_layouts} and "
                           f"{num_seeds}")
    target = Path(out)
    if target.exists() and not force:
        raise CeilingError(f"library {target} already exists; pass --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.building-{os.getpid()}")
    if staging.exists():
        shutil.rmtree(staging)
    started = time.perf_counter()
    try:
        (staging / "layouts").mkdir(parents=True)
        (staging / "policies").mkdir()
        manifest = _build_into(staging, grid, num_layouts, num_seeds, config, regimes,
                               on_progress)
        manifest["build_seconds"] = time.perf_counter() - started
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)
    return manifest


def _build_into(root: Path, grid: int, num_layouts: int, num_seeds: int,
                config: QLearningConfig, regimes: tuple[float, ...],
                on_progress: Callable[[str], None] | None) -> dict[str, Any]:
    layouts: list[dict[str, Any]] = []
    policies: list[dict[str, Any]] = []
    for layout_index in range(num_layouts):
        layout = generate_layout(grid, seed=layout_index)
        tables = transition_tables(layout)
        canonical = canonical_states(layout)
        file = f"layouts/layout_{layout_index:03d}.npz"
        sha = _save_npz(root / file, cells=layout.cells, gold_index=layout.gold_index,
                        start=np.int64(layout.start), seed=np.int64(layout.seed),
                        next_state=tables.next_state, reward=tables.reward,
                        terminal=tables.terminal, canonical=canonical)
        layouts.append({"index": layout_index, "seed": layout.seed, "file": file, "sha256": sha})
        jobs = [(objective, gamma, seed) for gamma in regimes for objective in BASE_OBJECTIVES
                for seed in range(num_seeds)]
        weights = np.stack([weights_of(objective) for objective, _, _ in jobs])
        gammas = np.array([gamma for _, gamma, _ in jobs])
        seeds = np.array([1000 * layout_index + seed for _, _, seed in jobs])
        trained = train(layout, tables, weights, gammas, seeds, config)
        for b, (objective, gamma, seed) in enumerate(jobs):
            arrays, embed, psi_start = policy_record_arrays(layout, tables, canonical,
                                                            trained.q[b], gamma)
            policy_id = len(policies)
            file = f"policies/policy_{policy_id:04d}.npz"
            sha = _save_npz(root / file, visits=trained.visits[b].astype(np.int32), **arrays)
            policies.append(PolicyRecord(
                id=policy_id, layout=layout_index, objective=objective,
                weights=weights[b].tolist(), gamma=float(gamma), seed=seed,
                train_steps=int(trained.steps[b]), train_seconds=float(trained.seconds[b]),
                converged=bool(trained.converged[b]),
                eval_return=float(trained.eval_returns[b]),
                support_size=int((trained.visits[b] > 0).sum()), embedding=embed.tolist(),
                psi_start=psi_start.tolist(), file=file, sha256=sha).__dict__)
        if on_progress is not None:
            on_progress(f"layout {layout_index + 1}/{num_layouts}: {len(jobs)} policies "
                        f"({trained.steps.max():,} steps each at most)")
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "grid": grid,
            "components": list(COMPONENTS), "regimes": list(regimes),
            "num_layouts": num_layouts, "num_seeds": num_seeds,
            "qlearning": config._asdict(), "embedding_gamma": EMBEDDING_GAMMA,
            "ceiling_version": __version__, "layouts": layouts, "policies": policies}


@dataclass
class Library:
    """A loaded, verified library. Arrays are read lazily and cached."""

    root: Path
    manifest: dict[str, Any]
    policies: list[PolicyRecord]
    _arrays: dict[int, PolicyArrays] = field(default_factory=dict)
    _layouts: dict[int, LayoutData] = field(default_factory=dict)

    @property
    def grid(self) -> int:
        return int(self.manifest["grid"])

    @property
    def num_layouts(self) -> int:
        return len(self.manifest["layouts"])

    def group(self, layout: int, gamma: float) -> list[PolicyRecord]:
        """The policies trained on `layout` with discount `gamma`."""
        return [p for p in self.policies if p.layout == layout and p.gamma == gamma]

    def check_query(self, layout: int, gamma: float) -> None:
        if not 0 <= layout < self.num_layouts:
            raise CeilingError(f"layout {layout} is not in the library; valid: 0.."
                               f"{self.num_layouts - 1}")
        regimes = sorted({p.gamma for p in self.policies})
        if gamma not in regimes:
            raise CeilingError(f"no policies with gamma {gamma:g} in the library; valid: "
                               f"{', '.join(f'{g:g}' for g in regimes)}")

    def arrays(self, policy_id: int) -> PolicyArrays:
        if policy_id not in self._arrays:
            record = self.policies[policy_id]
            data = _load_npz(self.root / record.file, ("q", "visits", "psi", "trajectory"))
            self._arrays[policy_id] = PolicyArrays(data["q"], data["visits"], data["psi"],
                                                   data["trajectory"])
        return self._arrays[policy_id]

    def layout(self, index: int) -> LayoutData:
        if index not in self._layouts:
            entry = self.manifest["layouts"][index]
            data = _load_npz(self.root / entry["file"], ("cells", "gold_index", "start", "seed",
                                                         "next_state", "reward", "terminal",
                                                         "canonical"))
            layout = Layout(self.grid, data["cells"], data["gold_index"], int(data["start"]),
                            int(data["seed"]))
            tables = Tables(data["next_state"], data["reward"], data["terminal"])
            self._layouts[index] = LayoutData(layout, tables, data["canonical"])
        return self._layouts[index]


def add_policy(path: str | Path, layout: int, objective: str | np.ndarray, gamma: float,
               q: np.ndarray, visits: np.ndarray, seed: int = 0, train_steps: int = 0,
               train_seconds: float = 0.0, converged: bool = True) -> int:
    """Register an externally trained tabular policy (e.g. one trained from scratch) in the
    library at `path`; returns its id. The manifest is replaced atomically."""
    library = load_library(path)
    library.check_query(layout, gamma)
    data = library.layout(layout)
    if q.shape != (data.layout.num_states, data.tables.next_state.shape[1]):
        raise CeilingError(f"q has shape {q.shape}; this library's layouts need "
                           f"{(data.layout.num_states, data.tables.next_state.shape[1])}")
    weights = weights_of(objective)
    arrays, embed, psi_start = policy_record_arrays(data.layout, data.tables, data.canonical, q,
                                                    gamma)
    policy_id = len(library.policies)
    file = f"policies/policy_{policy_id:04d}.npz"
    sha = _save_npz(library.root / file, visits=visits.astype(np.int32), **arrays)
    record = PolicyRecord(
        id=policy_id, layout=layout, objective=name_of(weights), weights=weights.tolist(),
        gamma=float(gamma), seed=seed, train_steps=train_steps, train_seconds=train_seconds,
        converged=converged, eval_return=float("nan"), support_size=int((visits > 0).sum()),
        embedding=embed.tolist(), psi_start=psi_start.tolist(), file=file, sha256=sha)
    manifest = dict(library.manifest)
    manifest["policies"] = [*manifest["policies"], record.__dict__]
    staging = library.root / ".manifest.json.tmp"
    staging.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(staging, library.root / "manifest.json")
    return policy_id


def _load_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: np.asarray(data[key]) for key in keys}
    except (OSError, ValueError, KeyError, EOFError) as err:
        raise CeilingError(f"library file {path} is unreadable ({err}); rebuild the library "
                           f"with `ceiling reuse build ... --force`") from None


def load_library(path: str | Path, grid: int | None = None, verify: bool = True) -> Library:
    """Load the library at `path`. `grid`, when given, must match the grid it was built on;
    `verify` checks every file's sha256 against the manifest."""
    root = Path(path)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise CeilingError(f"{root} is not a policy library (no manifest.json); build one with "
                           f"`ceiling reuse build --out {root}`")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as err:
        raise CeilingError(f"library manifest {manifest_path} is unreadable ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CeilingError(f"{manifest_path} is not a {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CeilingError(f"library format version {manifest.get('format_version')} is not "
                           f"supported; this ceiling reads version {FORMAT_VERSION}")
    if manifest.get("components") != list(COMPONENTS):
        raise CeilingError(f"library components {manifest.get('components')} differ from this "
                           f"ceiling's {list(COMPONENTS)}; rebuild the library")
    if grid is not None and int(manifest["grid"]) != grid:
        raise CeilingError(f"library {root} was built on {manifest['grid']}x{manifest['grid']} "
                           f"grids, not {grid}x{grid}; build one with --grid {grid}")
    try:
        policies = [PolicyRecord(**entry) for entry in manifest["policies"]]
    except (KeyError, TypeError) as err:
        raise CeilingError(f"library manifest {manifest_path} is malformed ({err})") from None
    if verify:
        for entry in [*manifest["layouts"], *manifest["policies"]]:
            file = root / entry["file"]
            if not file.is_file():
                raise CeilingError(f"library file {file} is missing; rebuild with --force")
            if _sha256(file) != entry["sha256"]:
                raise CeilingError(f"library file {file} is corrupted (sha256 does not match "
                                   f"the manifest); rebuild the library with --force")
    return Library(root, manifest, policies)
