"""`ceiling solve`: search one test instance with an inference strategy under a budget.

The search starts from `ceiling.search.search_key(seed, task, instance)` on the instance
`ceiling.search.instance_key(task, instance)`, the identity `ceiling bench` uses, so
`ceiling solve --seed S --instance I` with a rollout budget replays that bench cell exactly.
"""

from __future__ import annotations

import argparse
from typing import Any

from ceiling import __version__
from ceiling.cli.common import (
    CHECKPOINT_HELP,
    check_writable,
    console,
    parse_assignments,
    phase,
    resolve_checkpoint,
    write_json,
)
from ceiling.errors import CeilingError

# Shorthands for `--option NAME=VALUE`: `--NAME` sets option NAME, and `--STRATEGY-NAME` sets
# option NAME of STRATEGY only. Values are typed and checked where `--option` values are.
SHORTHANDS = {
    "temperature": "sampling temperature (= --option temperature=T)",
    "beam_width": "SGBS beam width (= --option beam_width=N)",
    "expansion": "SGBS children per beam node (= --option expansion=N)",
    "finetune_scope": "fine-tune all parameters or only the last layer: all or head "
                      "(= --option scope=all|head with --strategy finetune)",
}


def add_parser(sub: Any) -> None:
    from ceiling.cli.strategies import strategies_epilog

    p = sub.add_parser("solve", help="search one test instance with an inference strategy",
                       epilog_from=strategies_epilog)
    p.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    p.add_argument("--task", help="the task to solve: the checkpoint's own (the default) or, "
                                  "for a shipped:LABEL checkpoint, the one whose checkpoint "
                                  "to take")
    p.add_argument("--instance", type=int, default=0, help="index into the task's test set")
    p.add_argument("--strategy", required=True,
                   help="the inference strategy (listed below and by `ceiling strategies`)")
    p.add_argument("--seconds", type=float, help="wall-clock budget (compile time excluded)")
    p.add_argument("--rollouts", type=int,
                   help="rollout budget (a whole number of the strategy's batches)")
    p.add_argument("--width", type=int, default=64, help="parallel attempts per batch")
    for dest, text in SHORTHANDS.items():
        p.add_argument(f"--{dest.replace('_', '-')}", dest=dest, metavar="VALUE", help=text)
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="set any strategy option (repeatable; see the list below)")
    p.add_argument("--seed", type=int, default=0,
                   help="search seed; with --instance it names the search (as in ceiling bench)")
    p.add_argument("--out", help="write the result JSON here")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=cmd_solve)


def option_values(args: argparse.Namespace) -> dict[str, Any]:
    """The strategy options from `--option NAME=VALUE` and the shorthand flags (unchecked)."""
    from ceiling.search import STRATEGIES
    from ceiling.training.config import parse_scalar

    options = parse_assignments(args.option, "--option")
    for dest in SHORTHANDS:
        value = getattr(args, dest)
        if value is None:
            continue
        flag = f"--{dest.replace('_', '-')}"
        owner, _, name = dest.partition("_")
        if owner in STRATEGIES:
            if owner != args.strategy:
                raise CeilingError(f"{flag} sets option {name} of strategy {owner}, not of "
                                   f"{args.strategy}; use --option NAME=VALUE")
        else:
            name = dest
        if name in options:
            raise CeilingError(f"strategy option {name} is given twice ({flag} and --option)")
        options[name] = parse_scalar(value)
    return options


def cmd_solve(args: argparse.Namespace) -> int:
    from ceiling import search
    from ceiling.policies.checkpoint import load_checkpoint, read_manifest
    from ceiling.search.identity import SEED_LIMIT
    from ceiling.search.memory import check_memory
    from ceiling.tasks import make, task_spec

    # Every input error before anything compiles: names, the output path, the seed, the
    # budget, the options, the checkpoint, then the width against memory.
    if args.task is not None:
        task_spec(args.task)  # an unknown task, naming the valid ones
    args.checkpoint = resolve_checkpoint(args.checkpoint, args.task)
    if args.task is None:
        args.task = str(read_manifest(args.checkpoint)["task"])
    search.strategy_class(args.strategy)
    if args.out:
        check_writable(args.out, args.force)
    if not 0 <= args.seed < SEED_LIMIT:
        raise CeilingError(f"--seed must be an integer in [0, 2**32), got {args.seed}")
    budget = search.Budget(seconds=args.seconds, rollouts=args.rollouts)
    given = option_values(args)
    checkpoint = load_checkpoint(args.checkpoint, task=args.task)
    defaults = checkpoint.search_defaults(args.strategy)
    options = search.with_checkpoint_defaults(args.strategy, defaults, given,
                                              str(args.checkpoint))
    task = make(args.task)
    instance = search.instance_key(args.task, args.instance)
    strategy = search.make_strategy(args.strategy, task, checkpoint.policy, args.width,
                                    **options)
    kept = {name: value for name, value in defaults.items() if name not in given}
    if kept:
        console(stderr=True).print(
            f"{args.strategy} options from the checkpoint's search defaults: " + ", ".join(
                f"{name}={value}" for name, value in kept.items()) + " (--option overrides)")
    strategy.batch_limit(budget)  # an inexact rollout budget
    if not strategy.budget_free:  # one rollout whatever the width: nothing to check
        check_memory(strategy, checkpoint.params)
    key = search.search_key(args.seed, args.task, args.instance)

    limit = " / ".join(part for part in (
        f"{args.seconds:g} s" if args.seconds is not None else "",
        f"{args.rollouts:,} rollouts" if args.rollouts is not None else "") if part)
    aborted: str | None = None
    with phase(f"{args.strategy} on {args.task}", info="compiling", interval=10.0) as progress:

        def on_batch(point: search.TracePoint) -> None:
            progress.update(f"{point.seconds:6.1f} s  {point.rollouts:,} rollouts  best return "
                            f"{point.best_return:.3f}   (budget {limit})")

        try:
            result = search.solve(strategy, checkpoint.params, instance, budget, key,
                                  on_batch=on_batch)
        except search.SearchAborted as error:
            aborted, result = str(error), error.result
    payload = {
        **result.to_dict(), "task": args.task, "instance": args.instance,
        "checkpoint": str(args.checkpoint), "options": options, "seed": args.seed,
        "aborted": aborted,
        "ceiling_version": __version__,
    }
    solution = result.solution
    won = "" if solution.won is None else f", won {solution.won}"
    # A learning step that no later batch could use is left out (`ceiling.search.driver`).
    learned = (f"; {result.learning_batches} of {result.batches} batches took their "
               "learning step" if strategy.learns_between_batches else "")
    console(stderr=True).print(
        f"{args.strategy} on {args.task} test instance {args.instance}: return "
        f"{solution.total_return:.3f} (verified {solution.verified:.3f}{won}) after "
        f"{result.rollouts:,} rollouts in {result.seconds:.1f} s "
        f"(+{result.compile_seconds:.1f} s compile){learned}")
    if args.out:
        # The search is done: a failed write keeps its result (saved elsewhere, path said).
        write_json(args.out, payload, force=True, what="the search result")
        console(stderr=True).print(f"written to {args.out}")
    if aborted is not None:
        raise CeilingError(aborted)
    return 0
