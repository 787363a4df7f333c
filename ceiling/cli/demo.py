"""`ceiling demo`: every shipped checkpoint zero-shot, then each strategy searching a few test
instances of one task at a short budget (a table and an anytime plot)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ceiling.cli.common import check_writable, console, phase
from ceiling.errors import CeilingError

DEMO_TASK = "rware:tiny-2ag-hard"
# The zero-shot table covers the small shipped tasks only: the harder tasks' checkpoints (their
# own table is in the README) would double the demo's time, which should stay near 2 minutes.
DEMO_TASKS = ("rware:tiny-2ag-hard", "connector:con-5x5x3a", "smax:3m")
DEMO_ALGORITHM = "mappo"  # the best zero-shot policy shipped for DEMO_TASK
DEMO_WIDTH = 64
ZERO_SHOT_MODES = ("greedy", "stochastic", "random policy")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="the shipped checkpoints zero-shot, then each strategy")
    p.add_argument("--instances", type=int, default=16,
                   help="test instances per checkpoint for the zero-shot table")
    p.add_argument("--search-instances", type=int, default=3,
                   help=f"test instances of {DEMO_TASK} to search (0: skip the search)")
    p.add_argument("--seconds", type=float, default=1.5, help="search budget per instance")
    p.add_argument("--width", type=int, default=DEMO_WIDTH, help="parallel attempts per batch")
    p.add_argument("--plot", default="ceiling-demo/anytime.png", help="anytime plot PNG")
    p.add_argument("--force", action="store_true", help="overwrite --plot if it exists")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from ceiling.policies.shipped import shipped_checkpoints

    shipped = shipped_checkpoints()
    if not shipped:
        raise CeilingError("no shipped checkpoints found in this installation")
    if args.instances < 1:
        raise CeilingError(f"--instances must be at least 1, got {args.instances}")
    if args.search_instances < 0:
        raise CeilingError(f"--search-instances must be 0 or more, got {args.search_instances}")
    plot = Path(args.plot)
    if args.search_instances > 0:
        if plot.exists() and not args.force:
            raise CeilingError(f"{plot} already exists; pass --force or --plot OTHER.png")
        check_writable(plot, args.force, flag="--plot")
    out = console()
    comparison = None
    if args.search_instances > 0 and (DEMO_TASK, DEMO_ALGORITHM) in shipped:
        # Built (every error raised) now, and compiling in the background while the zero-shot
        # table is computed.
        comparison = start_search(args, shipped[(DEMO_TASK, DEMO_ALGORITHM)],
                                  shipped.get((DEMO_TASK, "compass")))
    try:
        zero_shot_table(args, shipped, out)
        if comparison is not None:
            finish_search(args, comparison, plot, out)
    finally:
        if comparison is not None:
            comparison.close()
    return 0


def zero_shot_table(args: argparse.Namespace, shipped: dict[tuple[str, str], Path],
                    out: Any) -> None:
    """Greedy and stochastic return of every base checkpoint of the demo tasks, and the
    uniform random policy once per task (it ignores the checkpoint)."""
    from rich.table import Table

    from ceiling.policies.evaluation import evaluate_checkpoint
    from ceiling.policies.labels import label_base

    table = Table(title=f"zero-shot on {args.instances} test instances (shipped IPPO, MAPPO "
                        "and SABLE checkpoints; COMPASS ones are searched below)")
    for column in ("task", "algorithm", "greedy return", "95% CI", "stochastic return",
                   "random policy", "win rate (greedy)"):
        table.add_column(column, justify="left" if column in ("task", "algorithm") else "right")
    # COMPASS checkpoints are left out: z = 0 is not their zero-shot policy; their value is
    # search (below).
    bases = {key: path for key, path in shipped.items()
             if label_base(key[1]) is None and key[0] in DEMO_TASKS}
    jobs: dict[tuple[str, str, str], Path] = {}
    for (task, algorithm), path in bases.items():
        for mode in ZERO_SHOT_MODES:
            if mode != "random policy" or (task, mode) not in {(t, m) for t, _, m in jobs}:
                jobs[(task, algorithm, mode)] = path
    done: dict[tuple[str, str, str], dict[str, Any]] = {}
    with phase(f"zero-shot on {args.instances} test instances", total=len(jobs)) as progress:
        for job, path in jobs.items():
            progress.update(" ".join(job))
            done[job] = evaluate_checkpoint(path, job[0], args.instances, job[2] != "greedy", 0,
                                            uniform_random=job[2] == "random policy")
            progress.update(advance=1)
    random_policy = {task: summary for (task, _, mode), summary in done.items()
                     if mode == "random policy"}
    for task, algorithm in bases:
        greedy, sampled = done[(task, algorithm, "greedy")], done[(task, algorithm, "stochastic")]
        lo, hi = greedy["ci95"]
        win = greedy["win_rate"]
        table.add_row(task, algorithm, f"{greedy['mean_return']:.3f}", f"[{lo:.3f}, {hi:.3f}]",
                      f"{sampled['mean_return']:.3f}",
                      f"{random_policy[task]['mean_return']:.3f}",
                      "-" if win is None else f"{win:.2f}")
    out.print(table)


def start_search(args: argparse.Namespace, path: Path, compass_path: Path | None) -> Any:
    """The demo's `Comparison`: every strategy on DEMO_TASK, compiling in the background.

    Strategies that search a latent run only when a COMPASS checkpoint of the task is shipped,
    and search with it; the others search with `path`.
    """
    from ceiling.policies.checkpoint import load_checkpoint
    from ceiling.search import STRATEGIES, Budget, make_strategy
    from ceiling.search.compare import Comparison
    from ceiling.search.memory import check_memory
    from ceiling.tasks import make

    checkpoint = load_checkpoint(path, task=DEMO_TASK)
    strategies = [name for name, cls in STRATEGIES.items() if not cls.needs_latent]
    others = {}
    if compass_path is not None:
        compass = load_checkpoint(compass_path, task=DEMO_TASK)
        others = {name: compass for name, cls in STRATEGIES.items() if cls.needs_latent}
        strategies += list(others)
    # Memory grows with the width, and the default's batches are known to fit (at most
    # 0.4 GiB): only a wider search is checked.
    if args.width > DEMO_WIDTH:
        with phase(f"checking that width {args.width} fits in memory"):
            for name in strategies:
                used = others.get(name, checkpoint)
                strategy = make_strategy(name, make(DEMO_TASK), used.policy, args.width)
                if not strategy.budget_free:
                    check_memory(strategy, used.params)
    return Comparison(checkpoint, strategies, Budget(seconds=args.seconds), others,
                      width=args.width)


def finish_search(args: argparse.Namespace, comparison: Any, plot: Path, out: Any) -> None:
    """Run the comparison's searches: a table and an anytime plot."""
    from rich.table import Table

    from ceiling.search.compare import plot_anytime, summarise_comparison

    with phase(f"searching {args.search_instances} test instances of {DEMO_TASK} for "
               f"{args.seconds:g} s each", total=len(comparison.built) * args.search_instances,
               info="compiling the first strategy") as progress:
        results = comparison.run(
            args.search_instances,
            on_result=lambda name, index, result: progress.update(
                f"{name} on instance {index}: return {result.solution.verified:.2f}",
                advance=1),
        )
    checkpoint = comparison.used["greedy"]
    latent = any(used is not checkpoint for used in comparison.used.values())
    title = (f"{checkpoint.algorithm.upper()} on {DEMO_TASK}"
             + (" (compass strategies: its COMPASS checkpoint)" if latent else "")
             + f": {args.search_instances} test instances, {args.seconds:g} s per instance, "
             f"width {args.width}")
    table = Table(title=title)
    for column in ("strategy", "mean return", "95% CI", "rollouts", "gain over greedy"):
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for row in summarise_comparison(results):
        gain = row["gain_over_greedy_percent"]
        lo, hi = row["ci95"]
        table.add_row(row["strategy"], f"{row['mean_return']:.2f}", f"[{lo:.2f}, {hi:.2f}]",
                      f"{row['mean_rollouts']:,.0f}", "-" if gain is None else f"{gain:+.1f} %")
    out.print(table)
    try:
        plot_anytime(results, title, plot)
    except OSError as err:
        raise CeilingError(f"could not write the anytime plot to {plot} "
                           f"({err.strerror or err}); the table above holds the results") from None
    out.print(f"anytime plot: {plot}")
