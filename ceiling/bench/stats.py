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
- Gain over zero-shot, per task: 100 (mean return - Z) / |Z| where Z is the zero-shot mean
  return (a `budget_free` strategy: greedy) of the base policy with the best zero-shot mean on
  those instances (the study's headline); a base policy is one no `needs_latent` strategy
  searched with. Its CI resamples instances jointly for both means (paired). The win rate is
  reported next to it where the task defines a win (SMAX). The mean gain across tasks gets a
  stratified CI: each replicate averages one paired replicate per task.

Which rows are zero-shot is read from the strategies' capabilities (`budget_free`), never from
their names. The bootstrap itself is `ceiling.bootstrap`'s, shared with `ceiling.reuse`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.stats

from ceiling.bootstrap import (
    RESAMPLES,
    paired_replicates,
    percentile_interval,
    stratified_replicates,
)

TaskScores = list[np.ndarray]  # one 1-D array of run scores per task


def _capability(strategy: str, capability: str) -> bool:
    """A registered strategy's capability; a name this ceiling does not register (a row from
    another version) has none."""
    from ceiling.search import STRATEGIES  # lazily: reading a store needs no JAX until here

    cls = STRATEGIES.get(strategy)
    return cls is not None and bool(getattr(cls, capability))


def is_zero_shot(strategy: str) -> bool:
    """Whether stored rows of `strategy` are the zero-shot baseline (`budget_free`)."""
    return _capability(strategy, "budget_free")


def needs_latent(strategy: str) -> bool:
    """Whether `strategy` searches a latent-conditioned (COMPASS) checkpoint."""
    return _capability(strategy, "needs_latent")


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
        return (not is_zero_shot(self.strategy), self.strategy, self.algorithm, self.options,
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
        if is_zero_shot(self.strategy):
            return f"{self.strategy} zero-shot ({self.algorithm}{extra})"
        budget = " ".join(p for p in (f"{self.seconds:g} s" if self.seconds else "",
                                      f"{self.rollouts} rollouts" if self.rollouts else "") if p)
        return f"{self.strategy}{extra} ({self.algorithm}, {budget}, width {self.width})"


def canonical_options(options: str | dict[str, Any]) -> str:
    """Options as a config names them: JSON text as stored, a decoded dict as sorted JSON."""
    return options if isinstance(options, str) else json.dumps(options, sort_keys=True)


def config_of(row: dict[str, Any]) -> Config:
    return Config(row["strategy"], canonical_options(row["options"]), row["algorithm"],
                  row["seconds"], row["rollouts"], int(row["width"]))


# -- estimators (rliable's definitions) -------------------------------------------------------
def iqm(scores: TaskScores) -> float:
    """Interquartile mean of every run score of every task, pooled."""
    pooled = np.concatenate([np.asarray(s, dtype=np.float64).ravel() for s in scores])
    return float(scipy.stats.trim_mean(pooled, proportiontocut=0.25, axis=None))


def stratified_bootstrap_ci(
    scores: TaskScores, statistic: Callable[[TaskScores], float] = iqm, reps: int = RESAMPLES,
    level: float = 0.95, seed: int = 0,
) -> tuple[float, float]:
    """Percentile CI of `statistic` resampling runs with replacement within each task."""
    replicates = stratified_replicates(statistic, scores, np.random.default_rng(seed), reps)
    return percentile_interval(replicates, level)


def probability_of_improvement(x: TaskScores, y: TaskScores) -> float:
    """P(X > Y) averaged over tasks; `x[m]` and `y[m]` are the run scores on task m."""
    per_task = []
    for xs, ys in zip(x, y, strict=True):
        xs = np.asarray(xs, dtype=np.float64)[:, None]
        ys = np.asarray(ys, dtype=np.float64)[None, :]
        per_task.append(float(np.mean((xs > ys) + 0.5 * (xs == ys))))
    return float(np.mean(per_task))


# -- from stored rows ---------------------------------------------------------------------------
def scaling_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows the budget-scaling figures compare. Per task: the timed searches of each
    (strategy, options, base) measured at two or more time budgets there, and the zero-shot
    rows, all cut to the instances that every such timed cell of the task measured. A sweep
    may run its headline cell on more instances than its budget × width grid; without the cut,
    that one point of a curve would average other instances than the rest."""
    budgets: dict[tuple[str, tuple[str, str, str]], set[float]] = {}
    for r in rows:
        if not is_zero_shot(r["strategy"]) and r["seconds"] is not None:
            budgets.setdefault((r["task"], config_of(r).family), set()).add(r["seconds"])
    scaled = {key for key, seconds in budgets.items() if len(seconds) >= 2}
    cells: dict[tuple[str, Config], set[int]] = {}
    for r in rows:
        config = config_of(r)
        if (r["task"], config.family) in scaled and r["seconds"] is not None:
            cells.setdefault((r["task"], config), set()).add(r["instance"])
    shared: dict[str, set[int]] = {}
    for (task, _), instances in cells.items():
        shared[task] = shared[task] & instances if task in shared else set(instances)
    return [r for r in rows if r["task"] in shared and r["instance"] in shared[r["task"]] and (
        is_zero_shot(r["strategy"])
        or (r["seconds"] is not None and (r["task"], config_of(r).family) in scaled))]


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


def checkpoint_key(row: dict[str, Any]) -> tuple[str, str, str]:
    """(task, algorithm, parameter hash): which checkpoint a row searched with."""
    return (row["task"], row["algorithm"], row.get("checkpoint_sha256", ""))


def pooled_checkpoints(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One warning per (task, label) whose rows come from more than one checkpoint: a
    checkpoint retrained under the same label (a new shipped MAPPO, say) and run into a store
    that already holds the old one's rows. Every table pools them as one checkpoint's seeds."""
    found: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        task, label, sha = checkpoint_key(r)
        found.setdefault((task, label), set()).add(sha)
    return [f"{task}: rows of {len(shas)} checkpoints labelled {label!r} (parameters "
            f"{', '.join(sorted(sha[:12] for sha in shas))}) are pooled as one checkpoint's; "
            "`ceiling bench SUITE --db STORE --rerun superseded` moves the earlier "
            "checkpoint's rows out of the results"
            for (task, label), shas in sorted(found.items()) if len(shas) > 1]


def zero_shot(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[str, float]]:
    """{task: (algorithm, zero-shot mean return)} of the best base policy's zero-shot rollouts.

    A latent-conditioned checkpoint is not a base policy: those are the checkpoints the rows
    show a `needs_latent` strategy searching with (a suite pairs such strategies with them).
    """
    latent = {checkpoint_key(r) for r in rows if needs_latent(r["strategy"])}
    means: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        if is_zero_shot(r["strategy"]) and checkpoint_key(r) not in latent:
            means.setdefault(r["task"], {}).setdefault(r["algorithm"], []).append(
                r["total_return"])
    best: dict[str, tuple[str, float]] = {}
    for task, by_algorithm in means.items():
        algorithm = max(by_algorithm, key=lambda a: float(np.mean(by_algorithm[a])))
        best[task] = (algorithm, float(np.mean(by_algorithm[algorithm])))
    return best


def _gain_percent(found: np.ndarray, zero: np.ndarray) -> np.ndarray:
    """100 (mean found - mean zero) / |mean zero| per resample ([reps, n] each; NaN where the
    resampled zero-shot mean is 0)."""
    zero_mean = zero.mean(axis=1)
    safe = np.where(np.abs(zero_mean) < 1e-12, np.nan, np.abs(zero_mean))
    return 100 * (found.mean(axis=1) - zero_mean) / safe


def gains_over_zero_shot(
    rows: Sequence[dict[str, Any]], reps: int = RESAMPLES, seed: int = 0
) -> list[dict[str, Any]]:
    """Per (task, config): gain of the mean return over the best zero-shot policy's mean on the
    same instances, in %, with a paired bootstrap 95 % CI (instances resampled jointly)."""
    base = zero_shot(rows)
    zero_shot_return: dict[tuple[str, str, int], float] = {}
    groups: dict[tuple[str, Config], dict[int, list[float]]] = {}
    wins: dict[tuple[str, Config], list[bool]] = {}
    for r in rows:
        if is_zero_shot(r["strategy"]):
            zero_shot_return[(r["task"], r["algorithm"], r["instance"])] = r["total_return"]
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
        common = sorted(i for i in by_instance if (task, algorithm, i) in zero_shot_return)
        if not common:
            continue
        found = np.array([np.mean(by_instance[i]) for i in common])  # mean over seeds
        zero = np.array([zero_shot_return[(task, algorithm, i)] for i in common])
        if abs(zero.mean()) < 1e-12:
            continue
        boot = paired_replicates(_gain_percent, [found, zero], rng, reps)
        low, high = percentile_interval(boot)
        out.append({"task": task, "config": config, "zero_shot_algorithm": algorithm,
                    "zero_shot_return": float(zero.mean()), "mean_return": float(found.mean()),
                    "gain_percent": float(100 * (found.mean() - zero.mean()) / abs(zero.mean())),
                    "ci95": (float(low), float(high)), "bootstrap": boot,
                    "instances": len(common),
                    "win_rate": (float(np.mean(wins[(task, config)]))
                                 if (task, config) in wins else None)})
    return out


def aggregate(
    rows: Sequence[dict[str, Any]], baselines: dict[str, dict[int, float]],
    reps: int = RESAMPLES, bounds: dict[str, tuple[float, float]] | None = None,
) -> list[dict[str, Any]]:
    """Per config: IQM of normalised scores across tasks with its 95 % stratified bootstrap
    CI, and P(config > best zero-shot) where the zero-shot rows exist. `bounds` (default: from
    `rows`) lets a subset of a store's rows be scored on the whole store's scale."""
    bounds = bounds or normalisation_bounds(rows, baselines)
    table = scores_by_config(rows, bounds)
    base = zero_shot(rows)
    base_scores: dict[str, np.ndarray] = {}
    for config, tasks in table.items():
        if is_zero_shot(config.strategy):
            for task, runs in tasks.items():
                if task in base and base[task][0] == config.algorithm:
                    base_scores[task] = runs
    out = []
    for config, tasks in sorted(table.items(), key=lambda item: item[0].order):
        scores = [tasks[t] for t in sorted(tasks)]
        low, high = stratified_bootstrap_ci(scores, iqm, reps=reps)
        improvement = None
        if not is_zero_shot(config.strategy) and all(t in base_scores for t in tasks):
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
    return [{"config": config, **summarise_gains(group)}
            for config, group in sorted(by_config.items(), key=lambda item: item[0].order)]


def summarise_gains(group: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and max over `group`'s tasks (one `gains_over_zero_shot` row each) and the mean's
    stratified 95 % CI (see `gain_summary`)."""
    best = max(group, key=lambda g: g["gain_percent"])
    low, high = percentile_interval(np.mean([g["bootstrap"] for g in group], axis=0))
    return {"tasks": len(group),
            "mean_gain_percent": float(np.mean([g["gain_percent"] for g in group])),
            "ci95": (float(low), float(high)),
            "max_gain_percent": best["gain_percent"], "max_task": best["task"]}
