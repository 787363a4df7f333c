"""The convergence check: was the return still rising over the last third of training?

A run is reported converged when both curves have flattened over the last third of its steps:

- the training-episode return (one point per chunk of updates, each the mean over every
  episode that ended in the chunk, so little noise): the *upper* end of the 95 % bootstrap
  interval of its projected gain over the window must be at most `TOLERANCE` of the window's
  mean level, so the data must show the gain is small, not merely fail to show it is large;
- the greedy test-set return (the evaluations): a single greedy evaluation swings with
  arg-max flips in near-tie states, so here the point estimate of the projected gain must be
  at most `TOLERANCE` and the *lower* end of its interval must be too (the evaluations give
  no evidence of a larger gain).

The projected gain is the least-squares slope over the window times the window's length; the
interval resamples the window's points (pairs of step and return). Each curve needs a minimum
number of points in the window (`MIN_TRAIN_POINTS`, `MIN_EVALUATIONS`); a run with fewer is
not converged, and the report says why. A short run that reports a still-rising return, or
too few evaluations to tell, is thus never called converged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ceiling.bootstrap import paired_replicates, percentile_interval
from ceiling.errors import CeilingError

TOLERANCE = 0.05  # projected gain over the window, as a share of the window's mean level
WINDOW = 1 / 3  # the last third of training
MIN_EVALUATIONS = 6  # greedy evaluations inside the window
MIN_TRAIN_POINTS = 10  # training-return points inside the window
SEED = 0  # the bootstrap's generator: the same metrics always give the same report


def _slopes(steps: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Least-squares slopes of [..., n] resampled (step, value) pairs; NaN where flat in x."""
    x = steps - steps.mean(axis=-1, keepdims=True)
    y = values - values.mean(axis=-1, keepdims=True)
    sxx = (x * x).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sxx > 0, (x * y).sum(axis=-1) / sxx, np.nan)


def trend(points: list[tuple[int, float]], total_steps: int) -> dict[str, Any]:
    """The projected gain of `points` over the last `WINDOW` of `total_steps`, relative to the
    window's mean level, with its 95 % bootstrap interval."""
    low_step = (1 - WINDOW) * total_steps
    inside = np.array([(s, r) for s, r in points if s >= low_step], dtype=np.float64)
    result: dict[str, Any] = {"points": int(len(inside)), "from_step": int(low_step)}
    if len(inside) < 3:
        return result
    steps, values = inside[:, 0], inside[:, 1]
    length = total_steps - low_step
    level = max(abs(float(values.mean())), 1e-8)
    gain = float(_slopes(steps, values)) * length / level
    replicates = paired_replicates(lambda s, v: _slopes(s, v) * length / level, [steps, values],
                                   np.random.default_rng(SEED))
    low, high = percentile_interval(replicates)
    result.update(level=float(values.mean()), relative_gain=gain, ci95=[low, high])
    return result


def convergence_report(
    evaluations: list[tuple[int, float]],
    total_steps: int,
    train_returns: list[tuple[int, float]] | None = None,
) -> dict[str, Any]:
    """Did both the training return and the greedy test return flatten over the last third?

    `evaluations` and `train_returns` are (environment step, return) pairs. The report holds
    the verdict (`converged`), the reason in words, and each curve's trend (points in the
    window, mean level, projected relative gain and its 95 % interval).
    """
    evals = trend(evaluations, total_steps)
    train = trend(train_returns or [], total_steps)
    reasons = []
    if evals["points"] < MIN_EVALUATIONS:
        reasons.append(f"{evals['points']} greedy evaluations in the last third of training "
                       f"(at least {MIN_EVALUATIONS} needed: evaluate more often)")
    elif evals["relative_gain"] > TOLERANCE or evals["ci95"][0] > TOLERANCE:
        reasons.append(f"greedy test return still rising: {100 * evals['relative_gain']:+.1f} % "
                       f"over the last third [{100 * evals['ci95'][0]:+.1f}, "
                       f"{100 * evals['ci95'][1]:+.1f}]")
    if train["points"] < MIN_TRAIN_POINTS:
        reasons.append(f"{train['points']} training-return points in the last third "
                       f"(at least {MIN_TRAIN_POINTS} needed: train longer)")
    elif train["ci95"][1] > TOLERANCE:
        reasons.append(f"training return may still be rising: {100 * train['relative_gain']:+.1f}"
                       f" % over the last third, upper 95 % bound "
                       f"{100 * train['ci95'][1]:+.1f} % (limit {100 * TOLERANCE:.0f} %)")
    converged = not reasons
    return {
        "converged": converged,
        "reason": "flat over the last third of training" if converged else "; ".join(reasons),
        "tolerance": TOLERANCE,
        "window": WINDOW,
        "relative_improvement": evals.get("relative_gain"),
        "eval_return": evals,
        "train_return": train,
    }


def read_metrics(run: Path) -> list[dict[str, Any]]:
    """The records of a run directory's or checkpoint's `metrics.jsonl`, one per line."""
    metrics = run / "metrics.jsonl"
    if not metrics.is_file():
        raise CeilingError(f"{run} holds no metrics.jsonl (not a run directory or a shipped "
                           "checkpoint)")
    try:
        return [json.loads(line) for line in metrics.read_text().splitlines() if line]
    except json.JSONDecodeError as err:
        raise CeilingError(f"{metrics} is not valid JSON lines: {err}") from None


def report_from_metrics(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The convergence report of a run from its `metrics.jsonl` records: evaluations are the
    records with `eval_return`; the training curve is `train_return` (IPPO/MAPPO) or
    `best_latent_return` (COMPASS)."""
    if not lines:
        return {"converged": None, "reason": "no metrics recorded"}
    field = "best_latent_return" if any("best_latent_return" in r for r in lines) \
        else "train_return"
    evaluations = [(r["step"], r["eval_return"]) for r in lines if "eval_return" in r]
    curve = [(r["step"], r[field]) for r in lines if r.get(field) is not None]
    return convergence_report(evaluations, lines[-1]["step"], curve)
