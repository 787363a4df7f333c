"""The comparison with training from scratch: is a composed policy as good, and how much faster?

For every layout of a library, each regime (γ = 0, γ = 0.99) and each composite objective, we
train tabular Q-learning from scratch on the composite (one learner per library seed, vectorised,
to convergence) and compose offline with every method × strategy. Per (layout, seed) point:

- quality ratio = composed return ÷ scratch return (undiscounted episode returns, mean of
  `rollouts` episodes with ties broken at random; a point whose scratch return is ≤ 0 has no
  ratio and is counted apart);
- speedup = scratch training seconds ÷ composition seconds (retrieval + composition; the library's
  own training cost is reported separately). The FAISS index of a (layout, γ) group is built
  once and shared by its nine method × strategy compositions, and policy arrays are cached after
  their first read, so the first composition of a group also pays for reading its files;
- coverage of the scratch policy's greedy trajectory (γ = 0.99 learner of the same seed: the
  optimal behaviour for the composite) by the union support of the composed policies.

Aggregates are means with 95 % bootstrap intervals over the layout × seed points; speedups are
geometric means. How well coverage predicts quality is Spearman's rank correlation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from ceiling import __version__
from ceiling.errors import CeilingError
from ceiling.reuse.compose import METHODS, STRATEGIES, compose, coverage
from ceiling.reuse.gridworld import greedy_policy, rollout
from ceiling.reuse.library import REGIMES, Library
from ceiling.reuse.objectives import COMPOSITES, weights_of
from ceiling.reuse.planning import optimal_trajectory, value_iteration
from ceiling.reuse.qlearning import QLearningConfig, train
from ceiling.reuse.retrieval import PolicyIndex

BOOTSTRAP_RESAMPLES = 2000


def bootstrap_ci(values: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """Mean and 95 % percentile-bootstrap interval of `values` (NaNs dropped)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(BOOTSTRAP_RESAMPLES, values.size)).mean(axis=1)
    return float(values.mean()), float(np.percentile(means, 2.5)), float(
        np.percentile(means, 97.5))


def run_bench(library: Library, rollouts: int = 16,
              config: QLearningConfig | None = None,
              on_progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every point of the comparison on `library`; returns `{"points": [...], "scratch": [...],
    "summary": [...], "spearman": {...}, ...}`."""
    num_seeds = int(library.manifest["num_seeds"])
    config = config or QLearningConfig(**library.manifest["qlearning"])
    regimes = [g for g in REGIMES if library.group(0, g)]
    points: list[dict[str, Any]] = []
    scratch_rows: list[dict[str, Any]] = []
    for layout_index in range(library.num_layouts):
        data = library.layout(layout_index)
        layout, tables = data.layout, data.tables
        for composite in COMPOSITES:
            weights = weights_of(composite)
            oracle = value_iteration(tables, weights, 0.99)
            optimal_return = float(rollout(tables, greedy_policy(oracle), layout.start_state,
                                           layout.horizon, weights, rollouts, 0).returns.mean())
            scratch: dict[float, Any] = {}
            for gamma in regimes:
                seeds = np.array([10_000 + 1000 * layout_index + s for s in range(num_seeds)])
                scratch[gamma] = train(layout, tables, np.repeat(weights[None], num_seeds, 0),
                                       np.full(num_seeds, gamma), seeds, config)
            references = [optimal_trajectory(tables, scratch[0.99].q[s], layout.start_state,
                                             layout.horizon) if 0.99 in scratch else
                          optimal_trajectory(tables, oracle, layout.start_state, layout.horizon)
                          for s in range(num_seeds)]
            for gamma in regimes:
                trained = scratch[gamma]
                scratch_returns = [float(rollout(
                    tables, greedy_policy(trained.q[s]), layout.start_state, layout.horizon,
                    weights, rollouts, 0).returns.mean()) for s in range(num_seeds)]
                for s in range(num_seeds):
                    scratch_rows.append({
                        "layout": layout_index, "composite": composite, "gamma": gamma,
                        "seed": s, "return": scratch_returns[s], "optimal_return": optimal_return,
                        "steps": int(trained.steps[s]), "seconds": float(trained.seconds[s]),
                        "converged": bool(trained.converged[s])})
                index = PolicyIndex(library, layout_index, gamma)
                for method in METHODS:
                    for strategy in STRATEGIES:
                        started = time.perf_counter()
                        composed = compose(library, layout_index, weights, gamma, method,
                                           strategy, index=index)
                        seconds = time.perf_counter() - started
                        composed_return = float(rollout(
                            tables, composed.policy, layout.start_state, layout.horizon, weights,
                            rollouts, 0).returns.mean())
                        for s in range(num_seeds):
                            cover = coverage(references[s], composed.support)
                            ratio = (composed_return / scratch_returns[s]
                                     if scratch_returns[s] > 0 else float("nan"))
                            points.append({
                                "layout": layout_index, "composite": composite, "gamma": gamma,
                                "method": method, "strategy": strategy, "seed": s,
                                "composed_return": composed_return,
                                "scratch_return": scratch_returns[s],
                                "optimal_return": optimal_return, "quality_ratio": ratio,
                                "compose_seconds": seconds,
                                "scratch_seconds": float(trained.seconds[s]),
                                "speedup": float(trained.seconds[s]) / seconds,
                                "candidates": composed.candidates_evaluated,
                                "coverage": cover.pairs, "coverage_prefix": cover.prefix})
            if on_progress is not None:
                on_progress(f"layout {layout_index + 1}/{library.num_layouts} {composite}")
    return {"points": points, "scratch": scratch_rows, **summarise(points, regimes),
            "library": {"path": str(library.root), "grid": library.grid,
                        "layouts": library.num_layouts, "seeds": num_seeds,
                        "policies": len(library.policies),
                        "build_seconds": library.manifest.get("build_seconds"),
                        "train_seconds": float(sum(p.train_seconds for p in library.policies))},
            "rollouts": rollouts, "ceiling_version": __version__}


def summarise(points: list[dict[str, Any]], regimes: list[float]) -> dict[str, Any]:
    summary = []
    for gamma in regimes:
        for composite in COMPOSITES:
            for method in METHODS:
                for strategy in STRATEGIES:
                    cell = [p for p in points if (p["gamma"], p["composite"], p["method"],
                                                  p["strategy"]) == (gamma, composite, method,
                                                                     strategy)]
                    ratios = np.array([p["quality_ratio"] for p in cell])
                    mean, low, high = bootstrap_ci(ratios)
                    log_speed = bootstrap_ci(np.log([p["speedup"] for p in cell]))
                    summary.append({
                        "gamma": gamma, "composite": composite, "method": method,
                        "strategy": strategy, "points": len(cell),
                        "points_without_ratio": int(np.sum(~np.isfinite(ratios))),
                        "quality_ratio": mean, "ci95": [low, high],
                        "matches_scratch": float(np.mean(ratios[np.isfinite(ratios)] >= 0.999))
                        if np.isfinite(ratios).any() else float("nan"),
                        "composed_return": float(np.mean([p["composed_return"] for p in cell])),
                        "scratch_return": float(np.mean([p["scratch_return"] for p in cell])),
                        "optimal_return": float(np.mean([p["optimal_return"] for p in cell])),
                        "coverage": float(np.mean([p["coverage"] for p in cell])),
                        "coverage_prefix": float(np.mean([p["coverage_prefix"] for p in cell])),
                        "candidates": float(np.mean([p["candidates"] for p in cell])),
                        "compose_ms": 1000 * float(np.mean([p["compose_seconds"] for p in cell])),
                        "scratch_seconds": float(np.mean([p["scratch_seconds"] for p in cell])),
                        "speedup": float(np.exp(log_speed[0])),
                        "speedup_ci95": [float(np.exp(log_speed[1])),
                                         float(np.exp(log_speed[2]))]})
    spearman: dict[str, Any] = {}
    for gamma in regimes:
        for method in (*METHODS, "all"):
            cell = [p for p in points if p["gamma"] == gamma and method in ("all", p["method"])
                    and np.isfinite(p["quality_ratio"])]
            if len(cell) < 3:
                continue
            rho, pvalue = stats.spearmanr([p["coverage"] for p in cell],
                                          [p["quality_ratio"] for p in cell])
            spearman[f"gamma={gamma:g} {method}"] = {"rho": float(rho), "p": float(pvalue),
                                                     "points": len(cell)}
    return {"summary": summary, "spearman": spearman}


def _fmt(value: float, digits: int = 2) -> str:
    return "—" if not np.isfinite(value) else f"{value:.{digits}f}"


def markdown(result: dict[str, Any], command: str) -> str:
    lib = result["library"]
    scratch = result["scratch"]
    lines = [
        "# Policy reuse vs Q-learning from scratch",
        "",
        f"Command: `{command}`, on a library built by `ceiling reuse build --grid "
        f"{lib['grid']} --layouts {lib['layouts']} --seeds {lib['seeds']} --out {lib['path']}`.",
        "",
        f"Library: {lib['grid']}x{lib['grid']} grids, {lib['layouts']} layouts x {lib['seeds']} "
        f"seeds, {lib['policies']} policies; building it took {lib['build_seconds']:.1f} s "
        f"({lib['train_seconds']:.1f} s of it Q-learning, per-learner shares summed). "
        f"Returns are undiscounted, mean of {result['rollouts']} episodes. Scratch learners "
        f"converged: {sum(r['converged'] for r in scratch)}/{len(scratch)}.",
        "",
        "Quality ratio = composed return ÷ scratch return (mean, 95 % bootstrap CI over layout x "
        "seed points); matches = share of points with ratio ≥ 0.999; coverage = share of the "
        "scratch policy's trajectory pairs inside the composed policies' support (prefix: share "
        "before the first gap); speedup = scratch training s ÷ composition s (geometric mean).",
        "",
        "| γ | composite | method | strategy | quality ratio [95 % CI] | matches | composed | "
        "scratch | optimal | coverage | prefix | candidates | compose ms | scratch s | "
        "speedup |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["summary"]:
        low, high = row["ci95"]
        missing = f" ({row['points_without_ratio']} n/a)" if row["points_without_ratio"] else ""
        lines.append(
            f"| {row['gamma']:g} | {row['composite']} | {row['method']} | {row['strategy']} | "
            f"{_fmt(row['quality_ratio'])} [{_fmt(low)}, {_fmt(high)}]{missing} | "
            f"{_fmt(row['matches_scratch'])} | {_fmt(row['composed_return'])} | "
            f"{_fmt(row['scratch_return'])} | {_fmt(row['optimal_return'])} | "
            f"{_fmt(row['coverage'])} | {_fmt(row['coverage_prefix'])} | "
            f"{row['candidates']:.0f} | {row['compose_ms']:.1f} | "
            f"{row['scratch_seconds']:.2f} | {row['speedup']:,.0f}x |")
    lines += ["", "Spearman rank correlation, coverage vs quality ratio:", "",
              "| regime and method | ρ | p | points |", "|---|---|---|---|"]
    for key, value in result["spearman"].items():
        lines.append(f"| {key} | {_fmt(value['rho'])} | {value['p']:.2g} | {value['points']} |")
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    regimes = sorted({row["gamma"] for row in result["summary"]})
    fig, axes = plt.subplots(1, len(regimes) + 1, figsize=(6 * (len(regimes) + 1), 4.5))
    width = 0.8 / len(METHODS)
    for axis, gamma in zip(axes, regimes, strict=False):
        for m, method in enumerate(METHODS):
            rows = [r for r in result["summary"] if r["gamma"] == gamma
                    and r["method"] == method and r["strategy"] == "hybrid"]
            x = np.arange(len(rows)) + (m - 1) * width
            means = np.array([r["quality_ratio"] for r in rows])
            errors = np.array([[r["quality_ratio"] - r["ci95"][0],
                                r["ci95"][1] - r["quality_ratio"]] for r in rows]).T
            axis.bar(x, means, width, yerr=errors, capsize=3, label=method)
        axis.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        axis.set_xticks(np.arange(len(COMPOSITES)))
        axis.set_xticklabels([c.replace("+", "+\n") for c in COMPOSITES], fontsize=8)
        axis.set_ylabel("quality ratio (composed ÷ scratch)")
        axis.set_title(f"γ = {gamma:g}, hybrid strategy")
        axis.legend(fontsize=8)
    axis = axes[-1]
    for gamma, marker in zip(regimes, "os", strict=False):
        pts = [p for p in result["points"] if p["gamma"] == gamma
               and np.isfinite(p["quality_ratio"])]
        axis.scatter([p["coverage"] for p in pts], [p["quality_ratio"] for p in pts], s=10,
                     alpha=0.5, marker=marker, label=f"γ = {gamma:g}")
    axis.set_xlabel("coverage of the scratch trajectory")
    axis.set_ylabel("quality ratio")
    axis.set_title("coverage vs quality (all methods and strategies)")
    axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


def write_results(result: dict[str, Any], out: str | Path, command: str, force: bool) -> Path:
    """`bench.md`, `bench.json`, `bench.png` under `out` (refuses to overwrite without force)."""
    folder = Path(out)
    files = [folder / name for name in ("bench.md", "bench.json", "bench.png")]
    if any(f.exists() for f in files) and not force:
        raise CeilingError(f"results already exist in {folder}; pass --force to overwrite them")
    folder.mkdir(parents=True, exist_ok=True)
    staged = [f.with_name(f".{f.name}.tmp") for f in files]
    staged[0].write_text(markdown(result, command))
    staged[1].write_text(json.dumps({**result, "command": command}, indent=1) + "\n")
    plot(result, staged[2])
    for tmp, final in zip(staged, files, strict=True):
        tmp.replace(final)
    return files[0]
