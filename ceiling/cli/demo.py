"""`ceiling demo`: every shipped checkpoint zero-shot, then each strategy searching a few test
instances of one task at a short budget (a table and an anytime plot)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ceiling.cli.common import check_writable, console, phase
from ceiling.errors import CeilingError

DEMO_TASK = "rware:tiny-2ag-hard"
DEMO_ALGORITHM = "mappo"  # the best zero-shot policy shipped for DEMO_TASK
DEMO_WIDTH = 64
ZERO_SHOT_MODES = ("greedy", "stochastic", "random policy")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="the shipped checkpoints zero-shot, then each strategy")
    p.add_argument("--instances", type=int, default=16,
                   help="test instances per checkpoint for the zero-shot table")
    p.add_argument("--search-instances", type=int, default=4,
                   help=f"test instances of {DEMO_TASK} to search (0: skip the search)")
    p.add_argument("--seconds", type=float, default=1.5, help="search budget per instance")
    p.add_argument("--width", type=int, default=DEMO_WIDTH, help="parallel attempts per batch")
    p.add_argument("--plot", default="ceiling-demo/anytime.png", help="anytime plot PNG")
    p.add_argument("--force", action="store_true", help="overwrite --plot if it exists")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ceiling.policies.evaluation import evaluate_checkpoint
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
    table = Table(title=f"zero-shot on {args.instances} test instances (shipped IPPO, MAPPO "
                        "and SABLE checkpoints; COMPASS ones are searched below)")
    for column in ("task", "algorithm", "greedy return", "95% CI", "stochastic return",
                   "random policy", "win rate (greedy)"):
        table.add_column(column, justify="left" if column in ("task", "algorithm") else "right")
    out = console()
    # COMPASS checkpoints are left out: z = 0 is not their zero-shot policy; their value is
    # search (below).
    bases = {key: path for key, path in shipped.items() if key[1] != "compass"}
    evaluations: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with phase(f"zero-shot on {args.instances} test instances",
               total=len(ZERO_SHOT_MODES) * len(bases)) as progress:
        for (task, algorithm), path in bases.items():
            for mode in ZERO_SHOT_MODES:
                progress.update(f"{task} {algorithm} {mode}")
                evaluations.setdefault((task, algorithm), []).append(evaluate_checkpoint(
                    path, task, args.instances, mode != "greedy", 0,
                    uniform_random=mode == "random policy"))
                progress.update(advance=1)
    for (task, algorithm), (greedy, sampled, random) in evaluations.items():
        lo, hi = greedy["ci95"]
        win = greedy["win_rate"]
        table.add_row(task, algorithm, f"{greedy['mean_return']:.3f}", f"[{lo:.3f}, {hi:.3f}]",
                      f"{sampled['mean_return']:.3f}", f"{random['mean_return']:.3f}",
                      "-" if win is None else f"{win:.2f}")
    out.print(table)
    if args.search_instances > 0 and (DEMO_TASK, DEMO_ALGORITHM) in shipped:
        demo_search(args, shipped[(DEMO_TASK, DEMO_ALGORITHM)],
                    shipped.get((DEMO_TASK, "compass")), plot, out)
    return 0


def demo_search(
    args: argparse.Namespace, path: Path, compass_path: Path | None, plot: Path, out: Any
) -> None:
    """Each strategy at a short budget on a few instances: a table and an anytime plot.

    Strategies that search a latent run only when a COMPASS checkpoint of the task is shipped,
    and search with it; the others search with `path`.
    """
    from rich.table import Table

    from ceiling.policies.checkpoint import load_checkpoint
    from ceiling.search import STRATEGIES, Budget, make_strategy
    from ceiling.search.compare import compare, plot_anytime, summarise_comparison
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
    with phase(f"searching {args.search_instances} test instances of {DEMO_TASK} for "
               f"{args.seconds:g} s each", total=len(strategies) * args.search_instances,
               info="compiling the first strategy") as progress:
        results = compare(
            checkpoint, strategies, args.search_instances, Budget(seconds=args.seconds),
            width=args.width,
            on_result=lambda name, index, result: progress.update(
                f"{name} on instance {index}: return {result.solution.verified:.2f}",
                advance=1),
            other_checkpoints=others,
        )
    title = (f"{checkpoint.algorithm.upper()} on {DEMO_TASK}"
             + (" (compass strategies: its COMPASS checkpoint)" if others else "")
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
