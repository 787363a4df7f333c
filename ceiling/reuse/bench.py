"""The comparison with training from scratch: is a composed policy as good, and how much faster?

For every layout of a library, each regime (γ = 0, γ = 0.99) and each composite objective, we
train tabular Q-learning from scratch on the composite (one learner per library seed, vectorised,
to certified convergence: see `qlearning`) and compose offline with every method × candidate
selection. The exact optimum comes from value iteration on the layout's true model (γ = 0.99,
the oracle). Per (layout, seed) point:

- quality ratio = composed return ÷ scratch return (undiscounted episode returns, mean of
  `rollouts` episodes with ties broken at random; a point whose scratch return is ≤ 0 has no
  ratio and is counted apart), and next to it composed ÷ optimal and scratch ÷ optimal, so the
  distance of each from the best possible is visible (the optimum is > 0 on every layout);
- speedup = scratch training seconds ÷ composition seconds (retrieval + composition; the library's
  own training cost is reported separately). The FAISS index of a (layout, γ) group is built
  once and shared by its nine method × selection compositions, and policy arrays are cached after
  their first read, so the first composition of a group also pays for reading its files;
- coverage (as the issue defines it, and as `ceiling reuse query` reports it): the share of the
  (state, action) pairs on the *optimal* trajectory for the composite (value iteration on the
  true model, ties to the lowest action) inside the union support of the composed policies, and
  the share before the first gap. Secondary, labelled as such: coverage of the scratch γ = 0.99
  learner's greedy trajectory of the same seed.

Aggregates are means over the layout × seed points with 95 % bootstrap intervals
(`ceiling.bootstrap.mean_ci`) that resample whole layouts (a layout's seeds share one composed
policy, so they are not independent; with 5 layouts the intervals are coarse); speedups are
geometric means. How well coverage predicts quality is Spearman's rank correlation, against
composed ÷ scratch (the issue's quality ratio) and against composed ÷ optimal, over one point
per layout × composite × method × selection (seeds averaged: the optimal trajectory and the
composed policy do not depend on them).
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from ceiling import __version__
from ceiling.bootstrap import mean_ci
from ceiling.errors import CeilingError
from ceiling.reuse.compose import METHODS, ORACLE_GAMMA, SELECTIONS, compose, coverage
from ceiling.reuse.gridworld import greedy_policy, rollout
from ceiling.reuse.library import REGIMES, Library
from ceiling.reuse.objectives import COMPOSITES, weights_of
from ceiling.reuse.planning import optimal_trajectory, value_iteration
from ceiling.reuse.qlearning import DEFAULT_CONFIG, QLearningConfig, train
from ceiling.reuse.retrieval import PolicyIndex


def run_bench(library: Library, rollouts: int = 16,
              config: QLearningConfig | None = None,
              on_progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every point of the comparison on `library` (scratch learners use `config`, by default
    the default learner, trained to its convergence certificate whatever the library used);
    returns `{"points": [...], "scratch": [...],
    "summary": [...], "spearman": {...}, ...}`."""
    num_seeds = int(library.manifest["num_seeds"])
    config = config or DEFAULT_CONFIG
    regimes = [g for g in REGIMES if library.group(0, g)]
    points: list[dict[str, Any]] = []
    scratch_rows: list[dict[str, Any]] = []
    for layout_index in range(library.num_layouts):
        data = library.layout(layout_index)
        layout, tables = data.layout, data.tables
        for composite in COMPOSITES:
            weights = weights_of(composite)
            oracle = value_iteration(tables, weights, ORACLE_GAMMA)
            optimal_return = float(rollout(tables, greedy_policy(oracle), layout.start_state,
                                           layout.horizon, weights, rollouts, 0).returns.mean())
            if optimal_return <= 0:
                raise CeilingError(f"layout {layout_index} has no positive optimal return for "
                                   f"{composite}; the comparison needs one")
            optimal_path = optimal_trajectory(tables, oracle, layout.start_state, layout.horizon)
            scratch: dict[float, Any] = {}
            for gamma in regimes:
                seeds = np.array([10_000 + 1000 * layout_index + s for s in range(num_seeds)])
                scratch[gamma] = train(layout, tables, np.repeat(weights[None], num_seeds, 0),
                                       np.full(num_seeds, gamma), seeds, config)
            scratch_paths = [optimal_trajectory(tables, scratch[0.99].q[s], layout.start_state,
                                                layout.horizon) if 0.99 in scratch else
                             optimal_path for s in range(num_seeds)]
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
                        "converged": bool(trained.converged[s]),
                        "support": int((trained.visits[s] > 0).sum())})
                index = PolicyIndex(library, layout_index, gamma)
                for method in METHODS:
                    for selection in SELECTIONS:
                        started = time.perf_counter()
                        composed = compose(library, layout_index, weights, gamma, method,
                                           selection, index=index)
                        seconds = time.perf_counter() - started
                        composed_return = float(rollout(
                            tables, composed.policy, layout.start_state, layout.horizon, weights,
                            rollouts, 0).returns.mean())
                        cover = coverage(optimal_path, composed.support)
                        for s in range(num_seeds):
                            cover_scratch = coverage(scratch_paths[s], composed.support)
                            ratio = (composed_return / scratch_returns[s]
                                     if scratch_returns[s] > 0 else float("nan"))
                            points.append({
                                "layout": layout_index, "composite": composite, "gamma": gamma,
                                "method": method, "selection": selection, "seed": s,
                                "composed_return": composed_return,
                                "scratch_return": scratch_returns[s],
                                "optimal_return": optimal_return, "quality_ratio": ratio,
                                "composed_vs_optimal": composed_return / optimal_return,
                                "scratch_vs_optimal": scratch_returns[s] / optimal_return,
                                "compose_seconds": seconds,
                                "scratch_seconds": float(trained.seconds[s]),
                                "speedup": float(trained.seconds[s]) / seconds,
                                "candidates": composed.candidates_evaluated,
                                "coverage": cover.pairs, "coverage_prefix": cover.prefix,
                                "coverage_scratch": cover_scratch.pairs})
            if on_progress is not None:
                on_progress(f"layout {layout_index + 1}/{library.num_layouts} {composite}")
    return {"points": points, "scratch": scratch_rows, **summarise(points, regimes),
            "library": {"path": str(library.root), "grid": library.grid,
                        "layouts": library.num_layouts, "seeds": num_seeds,
                        "policies": len(library.policies),
                        "build_seconds": library.manifest.get("build_seconds"),
                        "qlearning": library.manifest.get("qlearning"),
                        "train_seconds": float(sum(p.train_seconds for p in library.policies))},
            "rollouts": rollouts, "ceiling_version": __version__}


def _ci(cell: list[dict[str, Any]], key: str) -> tuple[float, float, float]:
    return mean_ci(np.array([p[key] for p in cell], dtype=np.float64),
                   np.array([p["layout"] for p in cell]))


def _correlation_pairs(cell: list[dict[str, Any]], coverage_key: str,
                       quality_key: str) -> np.ndarray:
    """`[n, 2]` (coverage, quality) pairs. Coverage of the optimal trajectory does not depend on
    the scratch seed, so those points are first averaged over seeds (one per layout ×
    composite × method × selection) rather than counted three times; the scratch-trajectory
    coverage differs by seed and is kept per point."""
    if coverage_key == "coverage_scratch":
        rows = [(p[coverage_key], p[quality_key]) for p in cell]
    else:
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for p in cell:
            key = (p["layout"], p["composite"], p["method"], p["selection"])
            groups.setdefault(key, []).append(p)
        rows = []
        for group in groups.values():
            quality = np.array([p[quality_key] for p in group], dtype=np.float64)
            if np.isfinite(quality).any():
                rows.append((group[0][coverage_key], float(np.nanmean(quality))))
    pairs = np.array(rows, dtype=np.float64).reshape(-1, 2)
    return pairs[np.isfinite(pairs[:, 1])]


def summarise(points: list[dict[str, Any]], regimes: list[float]) -> dict[str, Any]:
    summary = []
    for gamma in regimes:
        for composite in COMPOSITES:
            for method in METHODS:
                for selection in SELECTIONS:
                    cell = [p for p in points if (p["gamma"], p["composite"], p["method"],
                                                  p["selection"]) == (gamma, composite, method,
                                                                      selection)]
                    ratios = np.array([p["quality_ratio"] for p in cell])
                    mean, low, high = _ci(cell, "quality_ratio")
                    vs_opt, vs_opt_low, vs_opt_high = _ci(cell, "composed_vs_optimal")
                    sc_opt, sc_opt_low, sc_opt_high = _ci(cell, "scratch_vs_optimal")
                    log_speed = mean_ci(np.log([p["speedup"] for p in cell]),
                                        np.array([p["layout"] for p in cell]))
                    summary.append({
                        "gamma": gamma, "composite": composite, "method": method,
                        "selection": selection, "points": len(cell),
                        "points_without_ratio": int(np.sum(~np.isfinite(ratios))),
                        "quality_ratio": mean, "ci95": [low, high],
                        "composed_vs_optimal": vs_opt,
                        "composed_vs_optimal_ci95": [vs_opt_low, vs_opt_high],
                        "scratch_vs_optimal": sc_opt,
                        "scratch_vs_optimal_ci95": [sc_opt_low, sc_opt_high],
                        "matches_scratch": float(np.mean(ratios[np.isfinite(ratios)] >= 0.999))
                        if np.isfinite(ratios).any() else float("nan"),
                        "composed_return": float(np.mean([p["composed_return"] for p in cell])),
                        "scratch_return": float(np.mean([p["scratch_return"] for p in cell])),
                        "optimal_return": float(np.mean([p["optimal_return"] for p in cell])),
                        "coverage": float(np.mean([p["coverage"] for p in cell])),
                        "coverage_prefix": float(np.mean([p["coverage_prefix"] for p in cell])),
                        "coverage_scratch": float(np.mean([p["coverage_scratch"]
                                                           for p in cell])),
                        "candidates": float(np.mean([p["candidates"] for p in cell])),
                        "compose_ms": 1000 * float(np.mean([p["compose_seconds"] for p in cell])),
                        "scratch_seconds": float(np.mean([p["scratch_seconds"] for p in cell])),
                        "speedup": float(np.exp(log_speed[0])),
                        "speedup_ci95": [float(np.exp(log_speed[1])),
                                         float(np.exp(log_speed[2]))]})
    spearman: dict[str, Any] = {}
    for gamma in regimes:
        for method in (*METHODS, "all"):
            cell = [p for p in points if p["gamma"] == gamma and method in ("all", p["method"])]
            entry: dict[str, Any] = {}
            for coverage_key, quality_key in (("coverage", "quality_ratio"),
                                              ("coverage", "composed_vs_optimal"),
                                              ("coverage_scratch", "quality_ratio")):
                pairs = _correlation_pairs(cell, coverage_key, quality_key)
                name = f"{coverage_key} vs {quality_key}"
                if len(pairs) < 3 or np.ptp(pairs[:, 0]) == 0 or np.ptp(pairs[:, 1]) == 0:
                    entry[name] = {"rho": float("nan"), "p": float("nan"), "points": len(pairs)}
                    continue
                rho, pvalue = stats.spearmanr(pairs[:, 0], pairs[:, 1])
                entry[name] = {"rho": float(rho), "p": float(pvalue), "points": len(pairs)}
            spearman[f"gamma={gamma:g} {method}"] = entry
    return {"summary": summary, "spearman": spearman}


def _fmt(value: float, digits: int = 2) -> str:
    return "—" if not np.isfinite(value) else f"{value:.{digits}f}"


def _with_ci(value: float, ci: list[float]) -> str:
    return f"{_fmt(value)} [{_fmt(ci[0])}, {_fmt(ci[1])}]"


def markdown(result: dict[str, Any], command: str, build_command: str | None = None) -> str:
    lib = result["library"]
    scratch = result["scratch"]
    build = build_command or (f"ceiling reuse build --grid {lib['grid']} --layouts "
                              f"{lib['layouts']} --seeds {lib['seeds']} --out {lib['path']}")
    lines = [
        "# Policy reuse vs Q-learning from scratch",
        "",
        "Commands, from the repository root (`runs/` is git-ignored):",
        "",
        "```bash",
        build,
        command,
        "```",
        "",
        f"Library: {lib['grid']}x{lib['grid']} grids, {lib['layouts']} layouts x {lib['seeds']} "
        f"seeds, {lib['policies']} policies; building it took {lib['build_seconds']:.1f} s "
        f"({lib['train_seconds']:.1f} s of it Q-learning, per-learner shares summed). "
        f"Returns are undiscounted, mean of {result['rollouts']} episodes. Scratch learners "
        f"converged (certificate held): {sum(r['converged'] for r in scratch)}/{len(scratch)}.",
        "",
        "Ratios are means over layout x seed points with 95 % bootstrap CIs that resample whole "
        "layouts (a layout's seeds share one composed policy). c÷s = composed "
        "return ÷ scratch return (the issue's quality ratio; n/a where scratch scores 0), "
        "c÷opt = composed ÷ optimal, s÷opt = scratch ÷ optimal, where optimal is the greedy "
        "return of value iteration on the true model (γ = 0.99). matches = share of points with "
        "c÷s ≥ 0.999. coverage = share of the optimal trajectory's (state, action) pairs inside "
        "the composed policies' union support (prefix: share before the first gap); "
        "cov. (scratch) = the same against the scratch γ = 0.99 learner's trajectory "
        "(secondary). speedup = scratch training s ÷ composition s (geometric mean).",
        "",
        "| γ | composite | method | selection | c÷s [95 % CI] | c÷opt [95 % CI] | "
        "s÷opt [95 % CI] | matches | composed | scratch | optimal | coverage | prefix | "
        "cov. (scratch) | candidates | compose ms | scratch s | speedup |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["summary"]:
        missing = f" ({row['points_without_ratio']} n/a)" if row["points_without_ratio"] else ""
        lines.append(
            f"| {row['gamma']:g} | {row['composite']} | {row['method']} | {row['selection']} | "
            f"{_with_ci(row['quality_ratio'], row['ci95'])}{missing} | "
            f"{_with_ci(row['composed_vs_optimal'], row['composed_vs_optimal_ci95'])} | "
            f"{_with_ci(row['scratch_vs_optimal'], row['scratch_vs_optimal_ci95'])} | "
            f"{_fmt(row['matches_scratch'])} | {_fmt(row['composed_return'])} | "
            f"{_fmt(row['scratch_return'])} | {_fmt(row['optimal_return'])} | "
            f"{_fmt(row['coverage'])} | {_fmt(row['coverage_prefix'])} | "
            f"{_fmt(row['coverage_scratch'])} | "
            f"{row['candidates']:.0f} | {row['compose_ms']:.1f} | "
            f"{row['scratch_seconds']:.2f} | {row['speedup']:,.0f}x |")
    lines += ["", "Spearman rank correlation of coverage with quality (ρ, p, points; — where "
              "one side is constant or there are no ratios). Coverage of the optimal trajectory "
              "is correlated over one point per layout x composite x method x selection (seeds "
              "averaged); the secondary scratch-trajectory coverage per layout x seed point:",
              "",
              "| regime and method | coverage vs c÷s | coverage vs c÷opt | "
              "cov. (scratch) vs c÷s (secondary) |", "|---|---|---|---|"]

    def cell_text(entry: dict[str, Any]) -> str:
        if not np.isfinite(entry["rho"]):
            return f"— ({entry['points']})"
        return f"{entry['rho']:.2f} (p = {entry['p']:.2g}, {entry['points']})"

    for key, value in result["spearman"].items():
        lines.append(f"| {key} | {cell_text(value['coverage vs quality_ratio'])} | "
                     f"{cell_text(value['coverage vs composed_vs_optimal'])} | "
                     f"{cell_text(value['coverage_scratch vs quality_ratio'])} |")
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    regimes = sorted({row["gamma"] for row in result["summary"]})
    fig, axes = plt.subplots(1, len(regimes) + 1, figsize=(6 * (len(regimes) + 1), 4.5))
    labels = ("scratch", *METHODS)
    width = 0.8 / len(labels)
    for axis, gamma in zip(axes, regimes, strict=False):
        for m, label in enumerate(labels):
            rows = [r for r in result["summary"] if r["gamma"] == gamma
                    and r["method"] == (METHODS[0] if label == "scratch" else label)
                    and r["selection"] == "hybrid"]
            key = "scratch_vs_optimal" if label == "scratch" else "composed_vs_optimal"
            x = np.arange(len(rows)) + (m - (len(labels) - 1) / 2) * width
            means = np.array([r[key] for r in rows])
            errors = np.array([[r[key] - r[f"{key}_ci95"][0], r[f"{key}_ci95"][1] - r[key]]
                               for r in rows]).T
            axis.bar(x, means, width, yerr=np.maximum(errors, 0), capsize=3, label=label,
                     color="grey" if label == "scratch" else None)
        axis.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        axis.set_xticks(np.arange(len(COMPOSITES)))
        axis.set_xticklabels([c.replace("+", "+\n") for c in COMPOSITES], fontsize=8)
        axis.set_ylabel("return ÷ optimal return")
        axis.set_title(f"γ = {gamma:g}: scratch and composed (hybrid) vs the optimum")
        axis.legend(fontsize=8)
    axis = axes[-1]
    for gamma, marker in zip(regimes, "os", strict=False):
        pts = [p for p in result["points"] if p["gamma"] == gamma]
        axis.scatter([p["coverage"] for p in pts], [p["composed_vs_optimal"] for p in pts],
                     s=10, alpha=0.5, marker=marker, label=f"γ = {gamma:g}")
    axis.set_xlabel("coverage of the optimal trajectory")
    axis.set_ylabel("composed ÷ optimal")
    axis.set_title("coverage vs quality (all methods and selections)")
    axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


def build_command(lib: dict[str, Any]) -> str:
    """The `ceiling reuse build` command that makes the library `lib` describes (its training
    options only where they differ from the defaults)."""
    parts = ["ceiling reuse build", f"--grid {lib['grid']}", f"--layouts {lib['layouts']}",
             f"--seeds {lib['seeds']}", f"--out {shlex.quote(str(lib['path']))}"]
    options = lib.get("qlearning") or {}
    for key in ("steps_per_chunk", "max_chunks"):
        if key in options and options[key] != getattr(DEFAULT_CONFIG, key):
            parts.append(f"--{key.replace('_', '-')} {options[key]}")
    if options.get("optimistic") is False:
        parts.append("--no-optimism")
    return " ".join(parts)


def _json_text(payload: dict[str, Any]) -> str:
    """JSON with one line per point (the file stays small enough to commit and to diff)."""
    lines = ["{"]
    items = list(payload.items())
    for position, (key, value) in enumerate(items):
        comma = "," if position + 1 < len(items) else ""
        if isinstance(value, list) and value and isinstance(value[0], dict):
            rows = ",\n  ".join(json.dumps(row, separators=(",", ":")) for row in value)
            lines.append(f" {json.dumps(key)}: [\n  {rows}\n ]{comma}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}{comma}")
    return "\n".join(lines) + "\n}\n"


def write_results(result: dict[str, Any], out: str | Path, command: str, force: bool) -> Path:
    """`bench.md`, `bench.json`, `bench.png` under `out` (refuses to overwrite without force)."""
    folder = Path(out)
    files = [folder / name for name in ("bench.md", "bench.json", "bench.png")]
    if any(f.exists() for f in files) and not force:
        raise CeilingError(f"results already exist in {folder}; pass --force to overwrite them")
    folder.mkdir(parents=True, exist_ok=True)
    staged = [f.with_name(f".{f.name}.tmp") for f in files]
    staged[0].write_text(markdown(result, command, build_command(result["library"])))
    staged[1].write_text(_json_text({**result, "command": command}))
    plot(result, staged[2])
    for tmp, final in zip(staged, files, strict=True):
        tmp.replace(final)
    return files[0]
