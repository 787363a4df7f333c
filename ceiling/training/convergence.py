"""The convergence report: did greedy test return stop improving by the end of training?"""

from __future__ import annotations

from typing import Any

import numpy as np

CONVERGENCE_TOLERANCE = 0.05  # at most 5 % improvement over the last quarter of training
CONVERGENCE_WINDOW = 0.10  # evaluations averaged over 10 % of training at each end


def _window_mean(
    points: list[tuple[int, float]], low: float, high: float
) -> tuple[float, list[int]] | None:
    inside = [(s, r) for s, r in points if low <= s <= high]
    if not inside:
        return None
    return float(np.mean([r for _, r in inside])), [s for s, _ in inside]


def _trend(points: list[tuple[int, float]], total_steps: int, width: float) -> dict[str, Any]:
    """Mean over the `width` of training before 3/4, against the mean over the last `width`."""
    quarter_mark = 0.75 * total_steps
    start = _window_mean(points, (0.75 - width) * total_steps, quarter_mark)
    end = _window_mean(points, (1.0 - width) * total_steps, total_steps)
    if start is None:  # too few points: the last one before the mark stands in
        step, value = [(s, r) for s, r in points if s <= quarter_mark][-1]
        start = (value, [step])
    if end is None:
        end = (points[-1][1], [points[-1][0]])
    return {
        "start_of_last_quarter": {"mean": start[0], "steps": start[1]},
        "end": {"mean": end[0], "steps": end[1]},
        "relative_improvement": (end[0] - start[0]) / max(abs(start[0]), 1e-8),
    }


def convergence_report(
    evaluations: list[tuple[int, float]],
    total_steps: int,
    train_returns: list[tuple[int, float]] | None = None,
) -> dict[str, Any]:
    """Relative improvement of greedy test return over the last quarter of training.

    Converged means the greedy test-set return at the end of training is at most 5 % above the
    one at the start of the last quarter (relative to the absolute value of the latter). Both
    are means over the evaluations in a window of 10 % of training (before 3/4, and at the
    end), because a single greedy evaluation swings with small parameter changes (arg-max
    flips in near-tie states). The same comparison on the training-episode return is reported
    beside it.
    """
    if len(evaluations) < 2:
        return {"converged": None, "reason": "fewer than two evaluations"}
    evaluation = _trend(evaluations, total_steps, CONVERGENCE_WINDOW)
    return {
        "converged": bool(evaluation["relative_improvement"] <= CONVERGENCE_TOLERANCE),
        "tolerance": CONVERGENCE_TOLERANCE,
        "window": CONVERGENCE_WINDOW,
        "relative_improvement": evaluation["relative_improvement"],
        "eval_return": evaluation,
        "train_return": _trend(train_returns, total_steps, CONVERGENCE_WINDOW)
        if train_returns else None,
    }
