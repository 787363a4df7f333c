"""Choose a strategy's options for one policy by measurement, on instances it is not tested on.

A strategy's best options depend on the policy it searches from: sampling's temperature was
best at 0.4 from RWARE tiny-4ag-hard's MAPPO and at 1.5 from Connector 15x15's, and the
default of 1 cost 6 % and 2 % of the mean there. `tune` searches the same instances with every
candidate option set, from the same search keys and under the same budget, so that candidates
are compared pair by pair (common random numbers), and `summarise` ranks them by mean return
with each one's paired difference from the reference, the options searched with today, as a
95 % percentile-bootstrap interval over instances. `ceiling tune` is the command around it; it
draws the instances from the train split, so that the test set stays for reporting.

A rollout budget makes a tuning run exact to rerun whatever else the machine is doing; a
seconds budget is allowed (it is what a user's searches get), and then a busy machine costs
every candidate alike only if they interleave, which they do: `tune` searches instance by
instance, each with every candidate in turn.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from ceiling.bootstrap import mean_ci
from ceiling.errors import CeilingError
from ceiling.policies.networks import Params, Policy
from ceiling.search import Budget, Solution, make_strategy, solve, strategy_class
from ceiling.search.memory import check_memory
from ceiling.search.options import build_options
from ceiling.tasks.base import Task


def options_key(options: Mapping[str, Any]) -> str:
    """A candidate's identity: its options as canonical JSON."""
    return json.dumps(dict(options), sort_keys=True)


def parse_values(text: str) -> list[str]:
    """`0.2,0.4,1` as its comma-separated parts (typed later, by the option's own rules)."""
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise CeilingError(f"expected comma-separated values, got {text!r}")
    return parts


def candidates(strategy: str, reference: Mapping[str, Any],
               grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The reference options first, then `reference` updated with every combination of the
    grid's values (their product, in the order given), repeats dropped: two option sets are
    the same candidate when they search alike, so `{}` and the defaults written out are one.
    Each is checked against the strategy's options (names, types, ranges), so a typo fails
    before anything is searched, naming the valid options."""
    if not grid:
        raise CeilingError("give at least one option to tune (e.g. --grid temperature=0.5,1,2)")
    cls = strategy_class(strategy)  # an unknown strategy, naming the valid ones
    found = [dict(reference)]
    searched = [build_options(strategy, cls.Options, dict(reference))]
    for values in itertools.product(*grid.values()):
        options = {**reference, **dict(zip(grid, values, strict=True))}
        full = build_options(strategy, cls.Options, options)
        if full not in searched:
            found.append(options)
            searched.append(full)
    if len(found) == 1:
        raise CeilingError(f"the grid only repeats the reference options "
                           f"{options_key(reference)}: give other values to compare")
    return found


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One option set's returns on the instances searched so far."""

    options: dict[str, Any]
    returns: dict[int, float]  # instance index -> verified return


def tune(
    strategy: str,
    task: Task,
    policy: Policy,
    params: Params,
    options: Sequence[Mapping[str, Any]],
    instance_keys: jax.Array,
    search_keys: np.ndarray,
    budget: Budget,
    width: int,
    done: Mapping[str, Mapping[int, float]] | None = None,
    on_result: Callable[[dict[str, Any], int, Solution, float], None] | None = None,
) -> list[Candidate]:
    """Search every instance (rows of `instance_keys`, each from its row of `search_keys`)
    with every option set under `budget`, instance by instance. Results in `done`
    ({options_key: {instance: return}}, a previous run's) are kept and not searched again;
    `on_result(options, instance, solution, seconds)` hears of each new one as it lands."""
    if len(instance_keys) != len(search_keys):
        raise ValueError(f"{len(instance_keys)} instances but {len(search_keys)} search keys")
    done = done or {}
    built = [make_strategy(strategy, task, policy, width, **dict(o)) for o in options]
    for built_strategy in built:
        built_strategy.batch_limit(budget)  # an inexact rollout budget fails here
        check_memory(built_strategy, params)  # a width that cannot fit, naming one that does
    found = [Candidate(dict(o), {int(i): float(r) for i, r in
                                 done.get(options_key(o), {}).items()}) for o in options]
    for instance in range(len(instance_keys)):
        for candidate, built_strategy in zip(found, built, strict=True):
            if instance in candidate.returns:
                continue
            result = solve(built_strategy, params, instance_keys[instance], budget,
                           jax.numpy.asarray(search_keys[instance]))
            candidate.returns[instance] = result.solution.verified
            if on_result is not None:
                on_result(candidate.options, instance, result.solution, result.seconds)
    return found


@dataclasses.dataclass(frozen=True)
class Row:
    options: dict[str, Any]
    mean: tuple[float, float, float]  # mean return and its 95 % CI
    versus_reference: tuple[float, float, float]  # paired mean difference and its 95 % CI
    better: int  # instances where this option set beat the reference
    worse: int


def summarise(found: Sequence[Candidate]) -> list[Row]:
    """Each candidate (the reference first, as `tune` got them) on the instances every
    candidate has searched, best mean first; the reference's difference from itself is 0."""
    common = sorted(set.intersection(*(set(c.returns) for c in found)))
    if not common:
        raise CeilingError("no instance has been searched by every candidate yet")
    table = np.array([[c.returns[i] for i in common] for c in found])
    rows = []
    for candidate, values in zip(found, table, strict=True):
        difference = values - table[0]
        rows.append(Row(candidate.options, mean_ci(values), mean_ci(difference),
                        int((difference > 0).sum()), int((difference < 0).sum())))
    return sorted(rows, key=lambda row: -row.mean[0])
