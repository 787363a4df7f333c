"""Search efficiency: rollouts a strategy completes in a budget versus raw batched rollouts.

For each task and strategy at `--width` parallel attempts, this runs the strategy with
`ceiling.search.solve` under a `--seconds` budget on one test instance, using the task's shipped
checkpoint, and divides its rollout rate (`result.rollouts / result.seconds`) by the rate of the
raw baseline: one jitted batch of `width` stochastic episodes of the same policy on the same
instance (`ceiling.policies.rollout.run_episode`, vmapped), compiled and warmed up first, then
called in a loop for `--seconds`. Raw and strategy measurements alternate (raw, strategy, raw,
...) and each strategy is compared with the mean of the raw rates measured just before and just
after it, so drift in machine load hits both alike. Compilation is excluded from every timing.
Each search starts from the search identity `ceiling.search.search_key(seed, task, instance)`,
as in `ceiling solve` and `ceiling bench`.

- sampling: target rollout ratio >= 0.9.
- sgbs: its simulated greedy rollouts start partway into the episode, so it is also compared
  in environment steps; the target, step ratio >= 0.6, is judged on steps. A search that
  finishes before the budget (SGBS stops after `horizon` levels) is restarted with the same
  compiled step until the budget is spent, so that short tasks are not timed over a fraction
  of a second.
- finetune (a strategy that `updates_parameters`): reports the share of its time spent outside
  its own rollout (GAE, the PPO updates and the finiteness guard), from the strategy's batch
  time and the time of the very rollout its step records
  (`ceiling.policies.rollout.record_episode`, vmapped, timed alone).

The strategies rated are those that search a base policy (not `budget_free`: greedy is one
rollout, nothing to rate; not `needs_latent`: COMPASS's need a latent-conditioned checkpoint).

The script always exits 0: it reports, it does not assert. Run from the repository root:

    python benchmarks/search_efficiency.py
    python benchmarks/search_efficiency.py --tasks connector:con-5x5x3a --width 16 --seconds 1
    python benchmarks/search_efficiency.py --json search_efficiency.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax

from ceiling.errors import CeilingError
from ceiling.policies.checkpoint import Checkpoint, load_checkpoint
from ceiling.policies.networks import Params, Policy
from ceiling.policies.rollout import record_episode, run_episode
from ceiling.policies.shipped import shipped_checkpoint
from ceiling.search import (
    SGBS,
    STRATEGIES,
    Budget,
    FineTune,
    SearchAborted,
    Strategy,
    instance_key,
    make_strategy,
    search_key,
    solve,
)
from ceiling.tasks import Task, make
from ceiling.tasks.instances import TEST_SET_SIZE

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import environment as machine_environment  # noqa: E402  (a sibling script)

DEFAULT_TASKS = ("rware:tiny-2ag-hard", "connector:con-5x5x3a")
RATED_STRATEGIES = tuple(name for name, cls in STRATEGIES.items()
                         if not cls.budget_free and not cls.needs_latent)
TARGET_WIDTH = 64  # the width the targets are stated at
TARGETS: dict[str, tuple[str, float]] = {  # strategy -> (the ratio judged, its minimum)
    "sampling": ("ratio", 0.9),
    "sgbs": ("step_ratio", 0.6),
}


class Timed(NamedTuple):
    """Batches of one jitted program run back to back, and the wall-clock they took."""

    batches: int
    seconds: float


# A program timed alone maps a key to (the next key, its outputs). Returning the outputs keeps
# all of the work live: XLA drops what no output depends on.
KeyedProgram = Callable[[jax.Array], tuple[jax.Array, Any]]


def compile_and_warm(program: KeyedProgram, key: jax.Array) -> tuple[KeyedProgram, float]:
    """The compiled `jax.jit(program)`, called once untimed; and the compile seconds."""
    start = time.perf_counter()
    compiled = jax.jit(program).lower(key).compile()
    compile_seconds = time.perf_counter() - start
    jax.block_until_ready(compiled(key))  # first-call allocations stay out of the timing
    return compiled, compile_seconds


def time_loop(program: KeyedProgram, key: jax.Array, seconds: float) -> Timed:
    """Call `program` (blocking on each result) until `seconds` have passed."""
    batches = 0
    start = time.perf_counter()
    while True:
        key, outputs = jax.block_until_ready(program(key))
        batches += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return Timed(batches, elapsed)


class RawBaseline:
    """One batch of `width` stochastic episodes of the policy on the instance, compiled once."""

    def __init__(
        self, task: Task, policy: Policy, params: Params, instance_key: jax.Array, width: int
    ) -> None:
        def batch(key: jax.Array) -> tuple[jax.Array, Any]:
            key, batch_key = jax.random.split(key)
            episodes = jax.vmap(lambda k: run_episode(
                task, policy, params, instance_key, k, greedy=False))(
                jax.random.split(batch_key, width))
            return key, episodes

        self.key = jax.random.PRNGKey(1)
        self.program, self.compile_seconds = compile_and_warm(batch, self.key)

    def measure(self, seconds: float) -> Timed:
        return time_loop(self.program, self.key, seconds)


def finetune_rollout_alone(
    strategy: FineTune, params: Params, instance_key: jax.Array, seconds: float
) -> tuple[Timed, float]:
    """Time the rollout that `FineTune.step` records (values and log-probs included), alone."""

    def rollout(key: jax.Array) -> tuple[jax.Array, Any]:
        key, batch_key = jax.random.split(key)
        recorded = jax.vmap(
            lambda k: record_episode(strategy.task, strategy.policy, params, instance_key, k,
                                     strategy.options.temperature)
        )(jax.random.split(batch_key, strategy.width))
        return key, recorded

    key = jax.random.PRNGKey(2)
    program, compile_seconds = compile_and_warm(rollout, key)
    return time_loop(program, key, seconds), compile_seconds


def restart_searches(
    strategy: Strategy, params: Params, instance_key: jax.Array, key: jax.Array, seconds: float
) -> tuple[list[int], float, float]:
    """Fresh searches with one compiled step, batch by batch as `solve` runs them.

    Used when a strategy stops by itself (`max_steps`) before the budget: each search starts
    from `init` (untimed, as in `solve`) and runs until it is finished or `seconds` of batches
    have passed in all. Returns the batches of each search, the seconds and the compile time.
    """
    state = strategy.init(key, params, instance_key)
    compile_start = time.perf_counter()
    step = jax.jit(strategy.step).lower(state).compile()
    compile_seconds = time.perf_counter() - compile_start
    limit = strategy.max_steps or 1
    batches_per_search: list[int] = []
    elapsed = 0.0
    while elapsed < seconds:
        key, init_key = jax.random.split(key)
        state = jax.block_until_ready(strategy.init(init_key, params, instance_key))
        batches = 0
        start = time.perf_counter()
        while batches < limit and elapsed + time.perf_counter() - start < seconds:
            state = step(state)
            float(jax.block_until_ready(strategy.best(state).total_return))  # as `solve` does
            strategy.check(state)
            batches += 1
        elapsed += time.perf_counter() - start
        batches_per_search.append(batches)
    return batches_per_search, elapsed, compile_seconds


def sgbs_steps(strategy: SGBS, batches_per_search: list[int]) -> tuple[int, int]:
    """Environment steps SGBS simulated: (steps its programs run, steps before the horizon).

    One batch expands `beam_width` nodes into `expansion` children each (one `task.step` per
    child), then scores `num_simulations` children by greedy rollouts. Each rollout is a
    `lax.scan` of fixed length `horizon - 1` (a child has taken at least one step; finished
    states are absorbing), whatever the depth, exactly as the raw baseline scans `horizon` steps
    per episode whatever its length. So the steps run per batch are

        num_simulations * (horizon - 1) + beam_width * expansion,

    the count the step ratio uses, comparable to `width * horizon` per raw batch. At depth d
    (the d-th batch of a search, from 0) a child sits d + 1 steps from the root, so only
    horizon - 1 - d of its rollout's steps lie before the horizon; the rest step finished
    states. Summed over the batches of each search, that gives the second count, an upper bound
    on the useful simulated steps (an episode may end before the horizon).
    """
    horizon = strategy.task.spec.horizon
    rollout_length = max(horizon - 1, 1)  # as in `SGBS.setup`
    per_batch = strategy.num_simulations * rollout_length + strategy.beam_width * strategy.expansion
    run = per_batch * sum(batches_per_search)
    before_horizon = sum(
        strategy.num_simulations * max(horizon - 1 - depth, 0)
        + strategy.beam_width * strategy.expansion
        for batches in batches_per_search for depth in range(batches)
    )
    return run, before_horizon


def measure_strategy(
    strategy: Strategy, params: Params, instance_key: jax.Array, seconds: float, key: jax.Array
) -> dict[str, Any]:
    """Run `solve` under the seconds budget (restarting finished searches); counts and times."""
    solve_key, restart_key = jax.random.split(key)
    budget = Budget(seconds=seconds)
    aborted = None
    try:
        result = solve(strategy, params, instance_key, budget, solve_key)
    except SearchAborted as err:  # e.g. fine-tuning went non-finite: report what ran
        result, aborted = err.result, str(err)
    batches_per_search = [result.batches]
    total_seconds = result.seconds
    restart_compile = 0.0
    if aborted is None and result.seconds < seconds:  # the search finished before the budget
        more, more_seconds, restart_compile = restart_searches(
            strategy, params, instance_key, restart_key, seconds - result.seconds)
        batches_per_search += more
        total_seconds += more_seconds
    batches = sum(batches_per_search)
    return {
        "searches": len(batches_per_search),
        "batches": batches,
        "batches_per_search": batches_per_search,
        "rollouts": batches * strategy.rollouts_per_step,
        "seconds": total_seconds,
        "compile_seconds": result.compile_seconds + restart_compile,
        "best_return": result.solution.total_return,
        "aborted": aborted,
    }


def measure_task(
    task_name: str,
    algorithm: str,
    strategy_names: list[str],
    width: int,
    seconds: float,
    instance_index: int,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The rows of one task: each strategy between two raw measurements."""
    task = make(task_name)
    checkpoint: Checkpoint = load_checkpoint(shipped_checkpoint(task_name, algorithm),
                                             task=task_name)
    policy, params = checkpoint.policy, checkpoint.params
    instance = instance_key(task_name, instance_index)
    horizon = task.spec.horizon
    raw = RawBaseline(task, policy, params, instance, width)
    key = search_key(seed, task_name, instance_index)  # as a bench cell of this instance

    def raw_rate() -> float:
        timed = raw.measure(seconds)
        return timed.batches * width / timed.seconds

    rows: list[dict[str, Any]] = []
    before = raw_rate()
    for name in strategy_names:
        print(f"  {name} ...", file=sys.stderr, flush=True)
        strategy = make_strategy(name, task, policy, width)
        measured = measure_strategy(strategy, params, instance, seconds, key)
        extra: dict[str, Any] = {}
        if isinstance(strategy, FineTune):  # times FineTune's own recorded rollout
            alone, alone_compile = finetune_rollout_alone(strategy, params, instance, seconds)
            rollout_seconds = alone.seconds / alone.batches
            step_seconds = measured["seconds"] / measured["batches"]
            extra = {
                "finetune_step_seconds": step_seconds,
                "finetune_rollout_seconds": rollout_seconds,
                "finetune_rollout_compile_seconds": alone_compile,
                "update_share": 1.0 - rollout_seconds / step_seconds,
            }
        after = raw_rate()
        raw_rollouts_per_second = (before + after) / 2
        rate = measured["rollouts"] / measured["seconds"]
        row: dict[str, Any] = {
            "task": task_name, "algorithm": algorithm, "instance": instance_index,
            "strategy": name, "width": width, "budget_seconds": seconds, **measured,
            "rollouts_per_second": rate,
            "raw_rollouts_per_second": raw_rollouts_per_second,
            "raw_rollouts_per_second_before_after": [before, after],
            "raw_rollouts_same_time": raw_rollouts_per_second * measured["seconds"],
            "raw_compile_seconds": raw.compile_seconds,
            "ratio": rate / raw_rollouts_per_second,
            "step_ratio": None, "update_share": None, **extra,
        }
        if isinstance(strategy, SGBS):
            steps, before_horizon = sgbs_steps(strategy, measured["batches_per_search"])
            raw_steps_per_second = raw_rollouts_per_second * horizon
            row.update(
                steps=steps, steps_before_horizon=before_horizon,
                step_ratio=steps / measured["seconds"] / raw_steps_per_second,
                step_ratio_before_horizon=before_horizon / measured["seconds"]
                / raw_steps_per_second,
            )
        row["target"], row["verdict"] = verdict(name, row)
        rows.append(row)
        before = after
    return rows


def verdict(strategy: str, row: dict[str, Any]) -> tuple[str, str]:
    """(the target in words, PASS/FAIL or "-" where the strategy has no target)."""
    if STRATEGIES[strategy].updates_parameters:
        return "report share", "-"
    if strategy not in TARGETS:
        return "none", "-"
    field, minimum = TARGETS[strategy]
    label = "steps" if field == "step_ratio" else "rollouts"
    return f">= {minimum:.2f} {label}", "PASS" if row[field] >= minimum else "FAIL"


def environment(args: argparse.Namespace) -> dict[str, Any]:
    """The machine header shared with throughput.py, plus what this benchmark searched."""
    return {
        **machine_environment(),
        "checkpoints": f"shipped {args.algorithm}",
        "instance": f"test set index {args.instance}",
    }


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_report(env: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [f"{key}: {value}" for key, value in env.items()]
    lines.append("timing: raw and strategy measurements alternate; each strategy against the "
                 "mean raw rate just before and after it; compile excluded")
    lines.append("")
    columns = [("task", "<", 22), ("strategy", "<", 8), ("width", ">", 5),
               ("seconds", ">", 7), ("rollouts", ">", 9), ("raw rollouts same time", ">", 22),
               ("ratio", ">", 5), ("step ratio", ">", 10), ("updates share", ">", 13),
               ("target", "<", 16), ("verdict", "<", 7)]
    lines.append("| " + " | ".join(f"{n:{a}{w}}" for n, a, w in columns) + " |")
    lines.append("|" + "|".join("-" * (w + 1) + (":" if a == ">" else "-")
                                for _, a, w in columns) + "|")
    for row in rows:
        cells = [row["task"], row["strategy"], str(row["width"]), f"{row['seconds']:.1f}",
                 f"{row['rollouts']:,}", f"{row['raw_rollouts_same_time']:,.0f}",
                 f"{row['ratio']:.2f}", _cell(row["step_ratio"], ".2f"),
                 _cell(row["update_share"], ".0%"), row["target"], row["verdict"]]
        lines.append("| " + " | ".join(f"{c:{a}{w}}" for c, (_, a, w) in zip(cells, columns,
                                                                           strict=True)) + " |")
    notes = []
    for row in rows:
        where = f"{row['task']} {row['strategy']}"
        if row["aborted"]:
            notes.append(f"{where}: stopped early: {row['aborted']}")
        if row["searches"] > 1:
            notes.append(f"{where}: the search finished before the budget, so it ran "
                         f"{row['searches']} times ({row['batches']} batches in all)")
        if "step_ratio_before_horizon" in row:
            notes.append(f"{where}: counting only simulated steps before the horizon, the step "
                         f"ratio is {row['step_ratio_before_horizon']:.2f}")
        if row["update_share"] is not None:
            notes.append(f"{where}: {row['finetune_step_seconds'] * 1e3:.1f} ms per batch, of "
                         f"which its rollout alone takes "
                         f"{row['finetune_rollout_seconds'] * 1e3:.1f} ms")
    if any(row["width"] != TARGET_WIDTH for row in rows):
        notes.append(f"targets are stated at width {TARGET_WIDTH}")
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Rollouts each search strategy completes in a budget, as a ratio of raw "
                    "batched rollouts of the same policy and width."
    )
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS),
                        help=f"task names (default: {' '.join(DEFAULT_TASKS)})")
    parser.add_argument("--algorithm", default="ippo",
                        help="which shipped checkpoint of each task (default: %(default)s)")
    parser.add_argument("--strategies", nargs="+", default=list(RATED_STRATEGIES),
                        choices=list(RATED_STRATEGIES), metavar="STRATEGY",
                        help="strategies that search a base policy, among (and by default) "
                             f"{' '.join(RATED_STRATEGIES)}")
    parser.add_argument("--width", type=int, default=TARGET_WIDTH,
                        help="parallel attempts per batch (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="wall-clock seconds per measurement (default: %(default)s)")
    parser.add_argument("--instance", type=int, default=0,
                        help="index of the instance in the test set (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also write the environment and the rows to PATH as JSON")
    args = parser.parse_args(argv)
    if args.width < 1:
        parser.error(f"--width must be at least 1, got {args.width}")
    if not args.seconds > 0:
        parser.error(f"--seconds must be positive, got {args.seconds}")
    if not 0 <= args.instance < TEST_SET_SIZE:
        parser.error(f"--instance must be in [0, {TEST_SET_SIZE}), got {args.instance}")
    try:
        for name in args.tasks:
            make(name)
            shipped_checkpoint(name, args.algorithm)
    except CeilingError as err:
        parser.error(str(err))
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    env = environment(args)
    rows: list[dict[str, Any]] = []
    for name in args.tasks:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        rows += measure_task(name, args.algorithm, args.strategies, args.width, args.seconds,
                             args.instance)
    print(format_report(env, rows))
    if args.json is not None:
        args.json.write_text(json.dumps({"environment": env, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
