"""Inference strategies under a budget: the driver, the strategies, verified solutions.

`STRATEGIES` is the registry; a new strategy is one file with a `Strategy` subclass, added here.
"""

from __future__ import annotations

from typing import Any

from ceiling.errors import CeilingError
from ceiling.policies.networks import Policy
from ceiling.search.base import Batch, Incumbent, SearchState, Strategy
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
from ceiling.search.identity import instance_key, search_key, search_keys
from ceiling.search.options import OptionSpec, build_options, describe_options
from ceiling.search.sampling import Sampling
from ceiling.search.sgbs import SGBS
from ceiling.search.solution import Solution, replay, verified_solution
from ceiling.tasks.base import Task

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (Greedy, Sampling, SGBS, FineTune, Compass, LatentSampling)
}


def strategy_class(name: str) -> type[Strategy]:
    """The registered strategy `name`; an unknown name fails naming the valid ones."""
    if name not in STRATEGIES:
        raise CeilingError(f"unknown strategy {name!r}; valid strategies: "
                           f"{', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def strategy_options(name: str) -> list[OptionSpec]:
    """The options strategy `name` accepts, with types, defaults, valid values and help."""
    return describe_options(strategy_class(name).Options)


def make_strategy(
    name: str, task: Task, policy: Policy, width: int, **options: Any
) -> Strategy:
    """Build strategy `name`; unknown names, options and bad values fail naming what is valid."""
    cls = strategy_class(name)
    return cls(task, policy, width, build_options(name, cls.Options, options))


def with_checkpoint_defaults(name: str, defaults: dict[str, Any], options: dict[str, Any],
                             source: str) -> dict[str, Any]:
    """`options` over `defaults`, the search defaults a checkpoint records for strategy `name`
    (`Checkpoint.search_defaults`): what a user sets wins. Defaults that do not fit the
    strategy fail naming `source`, the checkpoint they came from."""
    try:
        build_options(name, strategy_class(name).Options, defaults)
    except CeilingError as err:
        raise CeilingError(f"checkpoint {source} records search defaults for {name} that do "
                           f"not fit it ({err}); fix them with `ceiling defaults`") from None
    return {**defaults, **options}


def zero_shot_strategies() -> list[str]:
    """The budget-free strategies: one deterministic attempt, the zero-shot baseline."""
    return [name for name, cls in STRATEGIES.items() if cls.budget_free]


__all__ = [
    "SGBS",
    "STRATEGIES",
    "Batch",
    "Budget",
    "Compass",
    "FineTune",
    "Greedy",
    "Incumbent",
    "LatentSampling",
    "OptionSpec",
    "Sampling",
    "SearchAborted",
    "SearchResult",
    "SearchState",
    "Solution",
    "Strategy",
    "TracePoint",
    "instance_key",
    "make_strategy",
    "replay",
    "with_checkpoint_defaults",
    "search_key",
    "search_keys",
    "solve",
    "solve_instances",
    "strategy_class",
    "strategy_options",
    "verified_solution",
    "zero_shot_strategies",
]
