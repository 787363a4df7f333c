"""Running a suite's cells: the shared cell computation and the local (in-process) executor.

A cell's result depends only on the cell: it searches test instance `instance_key(task,
instance)` from `search_key(seed, task, instance)` (`ceiling.search`'s one search identity), so
with a rollout budget any executor, any order and any resume produce the same returns, and
`ceiling solve --seed S --instance I` replays the cell. Cells sharing (task, checkpoint,
strategy, options, width) share one strategy object, so its jitted step compiles once
(`make_strategy` once, `solve` per cell). Every strategy is built, and every budget it will run
under checked against its batches, before the first cell runs, so a bad option value or an
inexact rollout budget fails the sweep before an hour of it has been spent. The driver alone
writes the store, one transaction per finished cell.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from ceiling.bench.speed import probe, slow_keys
from ceiling.bench.store import (
    CELL_COLUMNS,
    CONTENDED_CPU_SHARE,
    Row,
    Store,
    contended,
    rerun_before,
)
from ceiling.bench.suite import Cell, Suite
from ceiling.errors import CeilingError
from ceiling.programs import MappingWatch, release_compiled_programs

if TYPE_CHECKING:
    from ceiling.search import Budget

GroupKey = tuple[str, str, str, str, int]

# A worker past this share of its allowed memory mappings drops its compiled programs before
# the next cell (`Prepared.strategy`).
MAPPING_FRACTION = 0.5


@dataclasses.dataclass
class SweepStats:
    """What a sweep did; `solve_seconds` is time inside `solve`, the rest is the harness."""

    total: int = 0
    skipped: int = 0
    done: int = 0
    failed: int = 0
    running: int = 0
    wall_seconds: float = 0.0
    solve_seconds: float = 0.0
    contended: int = 0  # stored cells that had less than `CONTENDED_CPU_SHARE` of a core
    replacing: frozenset[str] = frozenset()  # cells run again whose stored rows they replace
    # {cell key: config hashes of its rows for an earlier checkpoint}, moved out as it is stored
    superseding: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)


class Prepared:
    """Loaded checkpoints and built strategies for one process (the driver or a worker)."""

    def __init__(self) -> None:
        self.checkpoints: dict[str, Any] = {}
        self.strategies: dict[GroupKey, Any] = {}
        self._search_keys: dict[tuple[int, str], np.ndarray] = {}
        self._mappings = MappingWatch(MAPPING_FRACTION)

    def search_key(self, seed: int, task: str, instance: int) -> jax.Array:
        """`ceiling.search.search_key(seed, task, instance)`, computed for a block of instances
        at once with the vectorised `search_keys`: one jitted dispatch per block instead of one
        per cell (the harness's cost per cell is about a millisecond in all)."""
        from ceiling.search import search_keys

        keys = self._search_keys.get((seed, task))
        if keys is None or instance >= len(keys):
            size = max(64, 2 * (instance + 1))
            keys = self._search_keys[(seed, task)] = search_keys(seed, task, range(size))
        return jax.numpy.asarray(keys[instance])

    def checkpoint(self, path: str) -> Any:
        from ceiling.policies.checkpoint import load_checkpoint

        if path not in self.checkpoints:
            self.checkpoints[path] = load_checkpoint(path)
        return self.checkpoints[path]

    def strategy(self, cell: Cell) -> Any:
        from ceiling.search import make_strategy
        from ceiling.tasks import make

        if self._mappings.due():
            # A long sweep's worker meets many groups, each with compiled programs of its own:
            # drop them all before the process runs out of memory mappings (ceiling.programs).
            self.strategies.clear()
            release_compiled_programs()
            self._mappings.released()
        if cell.group not in self.strategies:
            checkpoint = self.checkpoint(cell.checkpoint.path)
            self.strategies[cell.group] = make_strategy(
                cell.strategy, make(cell.task), checkpoint.policy, cell.width,
                **cell.options_dict())
        return self.strategies[cell.group]


def cell_budget(cell: Cell) -> Budget:
    """The budget a cell searches under (the width is the strategy's)."""
    from ceiling.search import Budget

    return Budget(seconds=cell.seconds, rollouts=cell.rollouts)


def preflight_problems(suite: Suite, cells: list[Cell], prepared: Prepared,
                       memory: bool = False) -> list[tuple[int, str]]:
    """Build every strategy the cells need and check each budget it will run under against
    its batches (`Strategy.batch_limit`) and, with `memory`, its width against this machine's
    memory (`ceiling.search.memory.check_memory`); every problem as (suite line, message),
    the line of the strategy (or of the budget, for an inexact rollout budget).

    The traces made for the memory check are the ones the sweep's compiles reuse (the built
    strategies stay in `prepared`), so it costs little beyond what the sweep pays anyway."""
    from ceiling.search import strategy_class
    from ceiling.search.memory import check_memory

    problems: list[tuple[int, str]] = []
    checked: set[tuple[Any, ...]] = set()
    fits: dict[Any, bool] = {}

    def report(line: int, cell: Cell, err: CeilingError) -> None:
        problem = (line, f"{cell.strategy} on {cell.task}: {err}")
        if problem not in problems:
            problems.append(problem)

    for cell in cells:
        if (cell.group, cell.seconds, cell.rollouts) in checked:
            continue
        checked.add((cell.group, cell.seconds, cell.rollouts))
        if cell.width < strategy_class(cell.strategy).min_width:
            continue  # the suite's own validation reported it
        line = next((s.line for s in suite.strategies if s.name == cell.strategy
                     and s.options == cell.options), 0)
        try:
            strategy = prepared.strategy(cell)
        except CeilingError as err:
            report(line, cell, err)
            continue
        try:
            strategy.batch_limit(cell_budget(cell))
        except CeilingError as err:
            report(suite.budget_line(cell.seconds, cell.rollouts), cell, err)
        if memory and not strategy.budget_free and cell.group not in fits:
            fits[cell.group] = False
            try:
                check_memory(strategy, prepared.checkpoint(cell.checkpoint.path).params)
                fits[cell.group] = True
            except CeilingError as err:
                report(line, cell, err)
    return problems


def preflight(suite: Suite, cells: list[Cell], prepared: Prepared, memory: bool = False) -> None:
    """`preflight_problems`, raised as one error listing them."""
    problems = preflight_problems(suite, cells, prepared, memory)
    if problems:
        raise CeilingError(f"suite {suite.path} cannot run:\n" + "\n".join(
            f"  {suite.path}:{line}: {message}" for line, message in sorted(problems)))


def validate_suite(path: str, prepared: Prepared, memory: bool = False,
                   tasks: Collection[str] | None = None) -> Suite:
    """The suite at `path`, after every check there is - its text (`inspect_suite`), then
    every strategy built and every budget (and, with `memory`, width) checked on the valid
    rest - raising one `CeilingError` that lists every problem found, each with its line."""
    from ceiling.bench.suite import inspect_suite, read_suite_text

    suite, problems = inspect_suite(read_suite_text(path), path, tasks)
    for line, message in preflight_problems(suite, suite.cells(), prepared, memory):
        problems.add_line(line, message)
    problems.raise_if_any()
    return suite


def compute_cell(cell: Cell, suite_name: str, prepared: Prepared) -> tuple[Row, float]:
    """Search one cell; returns its row and the seconds spent inside `solve`."""
    from ceiling.search import SearchAborted, instance_key, solve

    strategy = prepared.strategy(cell)
    checkpoint = prepared.checkpoint(cell.checkpoint.path)
    budget = cell_budget(cell)
    key = prepared.search_key(cell.seed, cell.task, cell.instance)
    instance = instance_key(cell.task, cell.instance)
    aborted = None
    speed_before = probe()  # how fast this core is, in this process, right before the search
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        result = solve(strategy, checkpoint.params, instance, budget, key)
    except SearchAborted as err:
        result, aborted = err.result, str(err)
    solve_seconds = time.perf_counter() - start
    # The process's CPU time (all its threads) per wall second: how much of a core the cell
    # had. Below 1 for a single-threaded cell means another process took part of its core,
    # and its time budget bought fewer rollouts than it would on an idle machine.
    cpu_share = (time.process_time() - cpu_start) / max(solve_seconds, 1e-9)
    speed = (speed_before + probe()) / 2
    solution = result.solution
    row = Row(
        config_hash=cell.key, suite=suite_name, task=cell.task, instance=cell.instance,
        checkpoint=cell.checkpoint.spec, algorithm=cell.checkpoint.algorithm,
        checkpoint_sha256=cell.checkpoint.sha256, strategy=cell.strategy, options=cell.options,
        seconds=cell.seconds, rollouts=cell.rollouts, width=cell.width, seed=cell.seed,
        total_return=float(solution.total_return), won=solution.won,
        verified=bool(np.isclose(solution.verified, solution.total_return, atol=1e-4)),
        verified_return=float(solution.verified), aborted=aborted,
        trace=json.dumps([[p.seconds, p.rollouts, p.best_return] for p in result.trace]),
        compile_seconds=float(result.compile_seconds), search_seconds=float(result.seconds),
        rollouts_done=int(result.rollouts),
        actions=json.dumps(np.asarray(solution.actions).tolist(), separators=(",", ":")),
        cpu_share=float(cpu_share),
        search_defaults=cell.checkpoint.defaults_for(cell.strategy),
        speed=float(speed),
    )
    return row, solve_seconds


def store_random_baselines(suite: Suite, store: Store, prepared: Prepared) -> None:
    """The uniform random policy's return on each task's instances (the normalisation's min).

    All-zero parameters give uniform logits over the legal actions, whatever the network.
    """
    from ceiling.policies.rollout import evaluate_batch
    from ceiling.tasks import instances, make

    stored = store.baselines("random")
    for task, refs in suite.tasks.items():
        if len(stored.get(task, {})) >= suite.instances or not refs:
            continue
        checkpoint = prepared.checkpoint(refs[0].path)
        zeros = jax.tree_util.tree_map(jax.numpy.zeros_like, checkpoint.params)
        episodes = evaluate_batch(make(task), checkpoint.policy, zeros,
                                  instances(task, "test", suite.instances),
                                  jax.random.PRNGKey(0), greedy=False)
        store.add_baselines(task, "random", np.asarray(episodes.total_return).tolist())


def pending_cells(suite: Suite, store: Store) -> tuple[list[Cell], int]:
    """The cells not yet stored, and how many were skipped."""
    cells = suite.cells()
    stored = store.stored_keys()
    pending = [c for c in cells if c.key not in stored]
    return pending, len(cells) - len(pending)


def cells_to_rerun(cells: list[Cell], shares: dict[str, float | None],
                   which: Collection[str],
                   stored: dict[str, datetime.datetime] | None = None,
                   speeds: dict[str, float | None] | None = None) -> set[str]:
    """The keys of the stored searching `cells` that `which` (`RERUN_CHOICES`) selects:
    `shares` is the store's {config hash: CPU share or None}, `stored` its {config hash: when
    stored} (needed by `before=TIME`), `speeds` its {config hash: speed probe or None} (needed
    by `slow`: the store's whole median is the reference). A zero-shot cell has no budget to
    lose to a busy or slow machine, so it is never run again."""
    from ceiling.bench.stats import is_zero_shot

    cutoffs = [when for when in map(rerun_before, which) if when is not None]
    if cutoffs and stored is None:
        raise ValueError("--rerun before=TIME needs the store's times (`stored`)")
    if "slow" in which and speeds is None:
        raise ValueError("--rerun slow needs the store's speed probes (`speeds`)")
    slow = slow_keys(speeds or {}) if "slow" in which else set()  # time budgets only, below
    keys = set()
    for cell in cells:
        if cell.key not in shares or is_zero_shot(cell.strategy):
            continue
        share = shares[cell.key]
        older = stored is not None and any(stored[cell.key] < when for when in cutoffs)
        slower = cell.key in slow and cell.seconds is not None  # rollout budgets: any machine
        if older or slower or ("unmeasured" in which and share is None) or (
                "contended" in which and share is not None and share < CONTENDED_CPU_SHARE):
            keys.add(cell.key)
    return keys


def superseded_rows(cells: list[Cell], identities: dict[str, tuple[tuple[Any, ...], str]]
                    ) -> dict[str, tuple[str, ...]]:
    """{cell key: the config hashes of the stored rows it supersedes}, from the store's
    `cell_identities()`: rows of the same cell (task, checkpoint label, strategy, options,
    budget, width, instance, seed) searched with other parameters, i.e. by the checkpoint that
    the label named before it was retrained. Also an earlier checkpoint's rows whose options
    none of `cells` has (the new checkpoint records other search defaults, so its cell's
    options differ): those go with the first cell that matches them in everything but the
    options. The cell itself may be stored already."""
    stored: dict[tuple[Any, ...], list[tuple[str, str]]] = {}
    for key, (identity, sha) in identities.items():
        stored.setdefault(identity, []).append((key, sha))
    at = CELL_COLUMNS.index("options")

    def but_options(identity: tuple[Any, ...]) -> tuple[Any, ...]:
        return identity[:at] + identity[at + 1:]

    ours = [(cell, tuple(cell.checkpoint.spec if name == "checkpoint" else getattr(cell, name)
                         for name in CELL_COLUMNS))  # in the order the store reads them
            for cell in cells]
    produced = {identity for _, identity in ours}
    orphans: dict[tuple[Any, ...], list[tuple[str, str]]] = {}
    for identity, rows in stored.items():
        if identity not in produced:
            orphans.setdefault(but_options(identity), []).extend(rows)
    found = {}
    for cell, identity in ours:
        candidates = stored.get(identity, []) + orphans.pop(but_options(identity), [])
        old = tuple(key for key, sha in candidates if sha != cell.checkpoint.sha256)
        if old:
            found[cell.key] = old
    return found


def run_local(
    suite: Suite, store: Store, cells: list[Cell], prepared: Prepared,
    on_update: Callable[[SweepStats, str], None] | None = None, stats: SweepStats | None = None,
) -> SweepStats:
    """Run `cells` in this process, storing each as it finishes."""
    stats = stats or SweepStats(total=len(cells))
    start = time.perf_counter()
    for cell in cells:
        stats.running = 1
        if on_update is not None:
            on_update(stats, describe(cell))
        try:
            row, solve_seconds = compute_cell(cell, suite.name, prepared)
        except CeilingError as err:
            record_outcome(store, stats, cell, None, str(err), 0.0)
        else:
            record_outcome(store, stats, cell, row, None, solve_seconds)
        stats.running = 0
    stats.wall_seconds += time.perf_counter() - start
    if on_update is not None:
        on_update(stats, "")
    return stats


def record_outcome(
    store: Store, stats: SweepStats, cell: Cell, row: Row | None, error: str | None,
    solve_seconds: float,
) -> None:
    """Store a finished cell's row (in place of its stored one if `stats.replacing` names
    it, and of its rows for an earlier checkpoint that `stats.superseding` lists), or its
    failure, and count it (both executors). A failed rerun keeps the old rows."""
    if row is None:
        store.add_failure(cell.key, cell.task, cell.strategy, str(error))
        stats.failed += 1
    else:
        store.add(row, replace=cell.key in stats.replacing,
                  supersedes=stats.superseding.get(cell.key, ()))
        stats.done += 1
        stats.solve_seconds += solve_seconds
        stats.contended += contended(row)


def describe(cell: Cell) -> str:
    budget = " ".join(part for part in (
        f"{cell.seconds:g}s" if cell.seconds is not None else "",
        f"{cell.rollouts}r" if cell.rollouts is not None else "") if part)
    return (f"{cell.task} {cell.checkpoint.algorithm} {cell.strategy} {budget} w{cell.width} "
            f"#{cell.instance} s{cell.seed}")
