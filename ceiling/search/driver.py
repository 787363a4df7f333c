"""The search driver: loop a strategy's jitted `step` under a budget and keep the anytime trace.

`solve` compiles the step before the clock starts (compile time is reported apart), runs one
batch at a time until the budget is spent, records `(seconds, rollouts, best_return)` after
every batch, and returns a verified `Solution`. A strategy that learns between batches
(fine-tuning) takes its learning step only while a later batch can use it: not in the last
batch of a rollout budget, and not when a learning batch would end after the clock budget;
its batches are then sampling only, which keeps the overrun to one such batch.
`solve_instances` runs a rollout budget on many instances at once by vmapping the strategy
over them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from ceiling.errors import CeilingError
from ceiling.policies.networks import Params
from ceiling.search.base import Strategy
from ceiling.search.budget import Budget
from ceiling.search.solution import Solution, prepare_replay, verified_solution


@dataclasses.dataclass(frozen=True)
class TracePoint:
    seconds: float  # wall-clock since the clock started, after the batch finished
    rollouts: int  # complete rollouts (or their equivalent) so far
    best_return: float


@dataclasses.dataclass(frozen=True)
class SearchResult:
    solution: Solution
    trace: list[TracePoint]
    budget: Budget
    strategy: str
    width: int
    compile_seconds: float
    seconds: float
    rollouts: int
    batches: int
    learning_batches: int = 0  # batches that ended with their learning step (fine-tuning)

    def to_dict(self) -> dict[str, Any]:
        return {
            "solution": self.solution.to_dict(),
            "strategy": self.strategy,
            "budget": {**self.budget.to_dict(), "width": self.width},
            "trace": [dataclasses.asdict(point) for point in self.trace],
            "compile_seconds": self.compile_seconds,
            "seconds": self.seconds,
            "rollouts": self.rollouts,
            "batches": self.batches,
            "learning_batches": self.learning_batches,
        }


class SearchAborted(CeilingError):
    """The search had to stop early; `result` holds the best verified solution found so far."""

    def __init__(self, message: str, result: SearchResult) -> None:
        super().__init__(message)
        self.result = result


def update_usable(
    budget: Budget, limit: int | None, batches: int, elapsed: float, learning_seconds: float
) -> bool:
    """Whether the next batch of a strategy that learns between batches should take its
    learning step: only if a later batch can still use it — the next batch is not the last a
    rollout budget allows, and, under a clock budget, a learning batch (`learning_seconds`, as
    long as the last one took) started at `elapsed` ends before the budget does."""
    if limit is not None and batches + 1 >= limit:
        return False
    return budget.seconds is None or elapsed + learning_seconds < budget.seconds


def solve(
    strategy: Strategy,
    params: Params,
    instance_key: jax.Array,
    budget: Budget,
    key: jax.Array,
    on_batch: Callable[[TracePoint], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> SearchResult:
    """Search one instance under `budget`; the first batch always runs."""
    limit = strategy.batch_limit(budget)  # an inexact rollout budget fails before compiling
    state = strategy.init(key, params, instance_key)
    prepare_replay(strategy.task, instance_key,
                   jax.eval_shape(strategy.best, state).actions.shape,
                   strategy.compiled_for_one_run, strategy.width)
    # Outside the clock: compile (later instances reuse the code), then one warm-up batch of
    # each program the search may run, thrown away (the search itself starts from `state`).
    # How long a warm-up batch took is the first estimate of a batch's duration.
    compile_start = time.perf_counter()
    learning = strategy.learns_between_batches
    programs = strategy.compiled_programs(state)
    batch_seconds = {}
    for learn, program in programs.items():
        run_start = clock()
        jax.block_until_ready(program(state))
        batch_seconds[learn] = clock() - run_start
    compile_seconds = time.perf_counter() - compile_start

    trace: list[TracePoint] = []
    batches = rollouts = learning_batches = 0
    failure: CeilingError | None = None
    start = clock()
    while True:
        elapsed = trace[-1].seconds if trace else 0.0
        learn = not learning or update_usable(budget, limit, batches, elapsed,
                                              batch_seconds[True])
        state = programs[learn](state)
        best_return = float(jax.block_until_ready(strategy.best(state).total_return))
        batches += 1
        learning_batches += learning and learn
        rollouts += strategy.rollouts_per_step
        point = TracePoint(seconds=clock() - start, rollouts=rollouts, best_return=best_return)
        batch_seconds[learn] = point.seconds - elapsed
        trace.append(point)
        if on_batch is not None:
            on_batch(point)
        try:
            strategy.check(state)
        except CeilingError as err:
            failure = err
            break
        if limit is not None and batches >= limit:
            break
        if budget.seconds is not None and point.seconds >= budget.seconds:
            break
    incumbent = strategy.best(state)
    solution = verified_solution(
        strategy.task, instance_key, incumbent.actions, float(incumbent.total_return),
        bool(incumbent.won), run_once=strategy.compiled_for_one_run, width=strategy.width,
    )
    result = SearchResult(
        solution=solution, trace=trace, budget=budget, strategy=strategy.name,
        width=strategy.width,
        compile_seconds=compile_seconds, seconds=trace[-1].seconds, rollouts=rollouts,
        batches=batches, learning_batches=learning_batches,
    )
    if failure is not None:
        raise SearchAborted(f"{failure} (stopped after {batches} batches; the best solution "
                            f"so far, return {solution.total_return:g}, is kept)", result)
    return result


def solve_instances(
    strategy: Strategy, params: Params, instance_keys: jax.Array, budget: Budget, key: jax.Array
) -> list[Solution]:
    """A rollout budget on N instances at once: init and step are vmapped over instances."""
    if budget.rollouts is None:
        raise ValueError("solve_instances needs a rollout budget (seconds are per instance)")
    limit = strategy.batch_limit(budget)
    assert limit is not None
    keys = jax.random.split(key, instance_keys.shape[0])
    state = jax.vmap(lambda k, ik: strategy.init(k, params, ik))(keys, instance_keys)

    @jax.jit
    def run(state: Any) -> Any:
        return jax.lax.fori_loop(0, limit, lambda _, s: jax.vmap(strategy.step)(s), state)

    final = run(state)
    strategy.check(final)
    incumbents = jax.vmap(strategy.best)(final)
    returns = np.asarray(incumbents.total_return)
    return [
        verified_solution(strategy.task, instance_keys[i], incumbents.actions[i],
                          float(returns[i]), bool(incumbents.won[i]), width=strategy.width)
        for i in range(instance_keys.shape[0])
    ]
