"""Statistics over stored rows: normalised scores, IQM with stratified bootstrap CIs,
probability of improvement, and per-task gain over the best zero-shot policy.

The estimators are rliable's (Agarwal et al., 2021), implemented here in numpy because
rliable's `library` module imports `arch`, whose releases that rliable allows do not import
under pandas 3 (our environment); `tests/bench/test_stats.py` checks these against
`rliable.metrics` on fixed data.

- Per-task min-max normalisation, as in the reference study: min = the uniform random
  policy's mean return on the same test instances (stored by the sweep in `baselines`), max =
  the best return ever stored for that task, by any strategy. A score of 1 is the best known
  solution, 0 is random play.
- IQM: the 25 % trimmed mean of all (run, task) scores pooled; a *run* is one (instance, seed).
- 95 % confidence intervals: percentile intervals of a stratified bootstrap that resamples runs
  with replacement within each task (tasks are strata; the task set itself is fixed).
- Probability of improvement P(X > Y): per task, the share of (x, y) run pairs with x > y
  (ties count half: the Mann-Whitney U statistic over n_x n_y), averaged over tasks.
- Gain over zero-shot, per task: 100 (mean return - Z) / |Z| where Z is the greedy mean return
  of the base policy with the best greedy mean on those instances (the study's headline); its
  CI resamples instances jointly for both means (paired). The win rate is reported next to
  it where the task defines a win (SMAX). The mean gain across tasks gets a stratified CI:
  each replicate averages one paired replicate per task.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.stats

LATENT_ALGORITHMS = ("compass",)
TaskScores = list[np.ndarray]  # one 1-D array of run scores per task


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything but task, instance and seed: one bar, line point or contour cell."""

    strategy: str
    options: str
    algorithm: str
    seconds: float | None
    rollouts: int | None
    width: int

    @property
    def order(self) -> tuple:
        """Sort key: zero-shot first, then strategy, base, options, budget (numerically), width."""
        return (self.strategy != "greedy", self.strategy, self.algorithm, self.options,
                self.seconds or 0.0, self.rollouts or 0, self.width)

    @property
    def family(self) -> tuple[str, str, str]:
        """(strategy, options, algorithm): the configs that differ only in budget and width."""
        return (self.strategy, self.options, self.algorithm)

    @property
    def extent(self) -> tuple[float, int, int]:
        """(seconds, rollouts, width), for picking a family's largest budget and width."""
        return (self.seconds or 0.0, self.rollouts or 0, self.width)

    @property
    def label(self) -> str:
        options = json.loads(self.options)
        extra = "".join(f" {k}={v}" for k, v in sorted(options.items()))
        if self.strategy == "greedy":
            return f"greedy zero-shot ({self.algorithm}{extra})"
        budget = " ".join(p for p in (f"{self.seconds:g} s" if self.seconds else "",
                                      f"{self.rollouts} rollouts" if self.rollouts else "") if p)
        return f"{self.strategy}{extra} ({self.algorithm}, {budget}, width {self.width})"


def config_of(row: dict[str, Any]) -> Config:
    options = row["options"] if isinstance(row["options"], str) else json.dumps(
        row["options"], sort_keys=True)
    return Config(row["strategy"], options, row["algorithm"], row["seconds"], row["rollouts"],
                  int(row["width"]))


# -- estimators (rliable's definitions) -------------------------------------------------------
def iqm(scores: TaskScores) -> float:
    """Interquartile mean of every run score of every task, pooled."""
    pooled = np.concatenate([np.asarray(s, dtype=np.float64).ravel() for s in scores])
    return float(scipy.stats.trim_mean(pooled, proportiontocut=0.25, axis=None))


def stratified_bootstrap_ci(
    scores: TaskScores, statistic: Callable[[TaskScores], float] = iqm, reps: int = 2000,
    level: float = 0.95, seed: int = 0,
) -> tuple[float, float]:
    """Percentile CI of `statistic` resampling runs with replacement within each task."""
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(s, dtype=np.float64).ravel() for s in scores]
    values = np.empty(reps)
    for r in range(reps):
        values[r] = statistic([a[rng.integers(0, a.size, a.size)] for a in arrays])
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def probability_of_improvement(x: TaskScores, y: TaskScores) -> float:
    """P(X > Y) averaged over tasks; `x[m]` and `y[m]` are the run scores on task m."""
    per_task = []
    for xs, ys in zip(x, y, strict=True):
        xs = np.asarray(xs, dtype=np.float64)[:, None]
        ys = np.asarray(ys, dtype=np.float64)[None, :]
        per_task.append(float(np.mean((xs > ys) + 0.5 * (xs == ys))))
    return float(np.mean(per_task))


# -- from stored rows ---------------------------------------------------------------------------
def normalisation_bounds(
    rows: Sequence[dict[str, Any]], baselines: dict[str, dict[int, float]]
) -> dict[str, tuple[float, float]]:
    """{task: (min, max)}: random policy's mean return, best return stored for the task."""
    bounds: dict[str, tuple[float, float]] = {}
    for task in sorted({r["task"] for r in rows}):
        best = max(r["total_return"] for r in rows if r["task"] == task)
        random = baselines.get(task)
        low = float(np.mean(list(random.values()))) if random else min(
            r["total_return"] for r in rows if r["task"] == task)
        bounds[task] = (low, float(best))
    return bounds


def normalise(value: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return (value - low) / (high - low) if high > low else 0.0


def scores_by_config(
    rows: Sequence[dict[str, Any]], bounds: dict[str, tuple[float, float]]
) -> dict[Config, dict[str, np.ndarray]]:
    """{config: {task: normalised scores of its runs, ordered by (instance, seed)}}."""
    table: dict[Config, dict[str, list[tuple[int, int, float]]]] = {}
    for r in rows:
        table.setdefault(config_of(r), {}).setdefault(r["task"], []).append(
            (r["instance"], r["seed"], normalise(r["total_return"], bounds[r["task"]])))
    return {config: {task: np.array([s for _, _, s in sorted(runs)])
                     for task, runs in tasks.items()} for config, tasks in table.items()}


def zero_shot(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[str, float]]:
    """{task: (algorithm, greedy mean return)} of the best base policy's greedy rollouts."""
    means: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        if r["strategy"] == "greedy" and r["algorithm"] not in LATENT_ALGORITHMS:
            means.setdefault(r["task"], {}).setdefault(r["algorithm"], []).append(
                r["total_return"])
    best: dict[str, tuple[str, float]] = {}
    for task, by_algorithm in means.items():
        algorithm = max(by_algorithm, key=lambda a: float(np.mean(by_algorithm[a])))
        best[task] = (algorithm, float(np.mean(by_algorithm[algorithm])))
    return best


def gains_over_zero_shot(
    rows: Sequence[dict[str, Any]], reps: int = 2000, seed: int = 0
) -> list[dict[str, Any]]:
    """Per (task, config): gain of the mean return over the best zero-shot's greedy mean on the
    same instances, in %, with a paired bootstrap 95 % CI (instances resampled jointly)."""
    base = zero_shot(rows)
    greedy: dict[tuple[str, str, int], float] = {}
    groups: dict[tuple[str, Config], dict[int, list[float]]] = {}
    wins: dict[tuple[str, Config], list[bool]] = {}
    for r in rows:
        if r["strategy"] == "greedy":
            greedy[(r["task"], r["algorithm"], r["instance"])] = r["total_return"]
        else:
            groups.setdefault((r["task"], config_of(r)), {}).setdefault(
                r["instance"], []).append(r["total_return"])
            if r.get("won") is not None:
                wins.setdefault((r["task"], config_of(r)), []).append(bool(r["won"]))
    out = []
    rng = np.random.default_rng(seed)
    for (task, config), by_instance in sorted(groups.items(), key=lambda item: (
            item[0][0], item[0][1].order)):
        if task not in base:
            continue
        algorithm = base[task][0]
        common = sorted(i for i in by_instance if (task, algorithm, i) in greedy)
        if not common:
            continue
        found = np.array([np.mean(by_instance[i]) for i in common])  # mean over seeds
        zero = np.array([greedy[(task, algorithm, i)] for i in common])
        if abs(zero.mean()) < 1e-12:
            continue
        picks = rng.integers(0, len(common), (reps, len(common)))
        resampled_zero = zero[picks].mean(axis=1)
        safe = np.where(np.abs(resampled_zero) < 1e-12, np.nan, np.abs(resampled_zero))
        boot = 100 * (found[picks].mean(axis=1) - resampled_zero) / safe
        low, high = np.nanpercentile(boot, [2.5, 97.5])
        out.append({"task": task, "config": config, "zero_shot_algorithm": algorithm,
                    "zero_shot_return": float(zero.mean()), "mean_return": float(found.mean()),
                    "gain_percent": float(100 * (found.mean() - zero.mean()) / abs(zero.mean())),
                    "ci95": (float(low), float(high)), "bootstrap": boot,
                    "instances": len(common),
                    "win_rate": (float(np.mean(wins[(task, config)]))
                                 if (task, config) in wins else None)})
    return out


def aggregate(
    rows: Sequence[dict[str, Any]], baselines: dict[str, dict[int, float]], reps: int = 2000
) -> list[dict[str, Any]]:
    """Per config: IQM of normalised scores across tasks with its 95 % stratified bootstrap
    CI, and P(config > best zero-shot) where the zero-shot rows exist."""
    bounds = normalisation_bounds(rows, baselines)
    table = scores_by_config(rows, bounds)
    base = zero_shot(rows)
    base_scores: dict[str, np.ndarray] = {}
    for config, tasks in table.items():
        if config.strategy == "greedy":
            for task, runs in tasks.items():
                if task in base and base[task][0] == config.algorithm:
                    base_scores[task] = runs
    out = []
    for config, tasks in sorted(table.items(), key=lambda item: item[0].order):
        scores = [tasks[t] for t in sorted(tasks)]
        low, high = stratified_bootstrap_ci(scores, iqm, reps=reps)
        improvement = None
        if config.strategy != "greedy" and all(t in base_scores for t in tasks):
            improvement = probability_of_improvement(scores,
                                                     [base_scores[t] for t in sorted(tasks)])
        out.append({"config": config, "tasks": sorted(tasks), "iqm": iqm(scores),
                    "ci95": (low, high), "probability_of_improvement": improvement,
                    "runs": int(sum(s.size for s in scores))})
    return out


def gain_summary(gains: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per config: mean and max over tasks of the per-task gain (the study reports 45 % mean
    and 126 % max over its 17 tasks at 30 s x 64 attempts). The mean's 95 % CI is a stratified
    bootstrap: each replicate averages the tasks' own paired replicates, which resampled
    instances within each task independently."""
    by_config: dict[Config, list[dict[str, Any]]] = {}
    for g in gains:
        by_config.setdefault(g["config"], []).append(g)
    out = []
    for config, group in sorted(by_config.items(), key=lambda item: item[0].order):
        best = max(group, key=lambda g: g["gain_percent"])
        mean_boot = np.mean([g["bootstrap"] for g in group], axis=0)
        low, high = np.nanpercentile(mean_boot, [2.5, 97.5])
        out.append({"config": config, "tasks": len(group),
                    "mean_gain_percent": float(np.mean([g["gain_percent"] for g in group])),
                    "ci95": (float(low), float(high)),
                    "max_gain_percent": best["gain_percent"], "max_task": best["task"]})
    return out
