"""Inference strategies under a budget: the driver, the strategies, verified solutions."""

from __future__ import annotations

import inspect
from typing import Any

from ceiling.errors import CeilingError
from ceiling.policies.networks import Policy
from ceiling.search.base import Incumbent, Strategy
from ceiling.search.budget import Budget
from ceiling.search.compass import Compass, LatentSampling
from ceiling.search.driver import (
    SearchAborted,
    SearchResult,
    TracePoint,
    solve,
    solve_instances,
)
from ceiling.search.finetune import FineTune
from ceiling.search.greedy import Greedy
from ceiling.search.sampling import Sampling
from ceiling.search.sgbs import SGBS
from ceiling.search.solution import Solution, replay, verified_solution
from ceiling.tasks.base import Task

STRATEGIES: dict[str, type[Strategy]] = {
    "greedy": Greedy, "sampling": Sampling, "finetune": FineTune, "sgbs": SGBS,
    "compass": Compass, "latent-sampling": LatentSampling,
}


def strategy_options(name: str) -> list[str]:
    """The keyword options a strategy accepts besides task, policy and width."""
    parameters = inspect.signature(STRATEGIES[name].__init__).parameters
    return [p for p in parameters if p not in ("self", "task", "policy", "width")]


def make_strategy(
    name: str, task: Task, policy: Policy, width: int, **options: Any
) -> Strategy:
    """Build strategy `name`; unknown names and options fail naming the valid ones."""
    if name not in STRATEGIES:
        raise CeilingError(f"unknown strategy {name!r}; valid strategies: "
                           f"{', '.join(STRATEGIES)}")
    valid = strategy_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise CeilingError(f"strategy {name!r} has no option {', '.join(map(repr, unknown))}; "
                           f"valid options: {', '.join(valid) or 'none'}")
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise CeilingError(f"width (parallel attempts) must be an integer >= 1, got {width!r}")
    constructor: Any = STRATEGIES[name]  # each strategy has its own keyword options
    strategy: Strategy = constructor(task, policy, width=width, **options)
    return strategy


__all__ = [
    "SGBS",
    "STRATEGIES",
    "Budget",
    "Compass",
    "FineTune",
    "Greedy",
    "Incumbent",
    "LatentSampling",
    "Sampling",
    "SearchAborted",
    "SearchResult",
    "Solution",
    "Strategy",
    "TracePoint",
    "make_strategy",
    "replay",
    "solve",
    "solve_instances",
    "strategy_options",
    "verified_solution",
]
