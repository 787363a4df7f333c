"""`ceiling tune`: choose a strategy's options for one checkpoint by measurement on train
instances, and optionally record the best as the checkpoint's search defaults.

Every candidate option set (the options searched with today, then the `--grid` values over
them) searches the same `--instances` train instances from the same search keys under the same
budget; the table ranks them by mean return, each with its paired difference from today's
options (95 % bootstrap CI over instances). The run is kept in `--out` after every search, so
an interrupted run resumes where it stopped when given the same command; more `--grid`
values may be added on resume. `--record` writes the best candidate with `ceiling defaults`
(replacing recorded defaults needs `--force`), after which `ceiling solve`, `ceiling bench`
and `ceiling demo` search the checkpoint with it.

    ceiling tune --checkpoint shipped:mappo --task rware:tiny-4ag-hard --strategy sampling \\
        --grid temperature=0.2,0.4,0.6,0.8,1.5 --rollouts 6400 --out tune.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
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

KIND = "ceiling-tune"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("tune", help="choose a strategy's options for a checkpoint on train "
                                    "instances", description=__doc__)
    p.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    p.add_argument("--task", help="the checkpoint's task (needed for shipped:LABEL)")
    p.add_argument("--strategy", required=True, help="the strategy to tune")
    p.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="values of one option to try (repeatable: their product is tried)")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="an option every candidate shares, over the checkpoint's defaults")
    p.add_argument("--instances", type=int, default=16, help="train instances to search")
    p.add_argument("--train-seed", type=int, default=1,
                   help="the seed the train instances are drawn from")
    p.add_argument("--seconds", type=float, help="wall-clock budget per search")
    p.add_argument("--rollouts", type=int,
                   help="rollout budget per search (exact to rerun; the recommended limit)")
    p.add_argument("--width", type=int, default=64, help="parallel attempts per batch")
    p.add_argument("--seed", type=int, default=0, help="search seed")
    p.add_argument("--out", required=True,
                   help="the run's JSON: written after every search, resumed from if it holds "
                        "a run of the same settings")
    p.add_argument("--record", action="store_true",
                   help="record the best candidate as the checkpoint's search defaults")
    p.add_argument("--force", action="store_true",
                   help="start --out over if it holds a run of other settings (one of the "
                        "same settings is always resumed); replace recorded defaults with "
                        "--record")
    p.set_defaults(func=cmd_tune)


def parse_grid(pairs: list[str]) -> dict[str, list[Any]]:
    """{option: [values]} from `NAME=V1,V2,...`; values read as numbers, booleans or text."""
    from ceiling.search.tune import parse_values
    from ceiling.training.config import parse_scalar

    return parse_assignments(
        pairs, "--grid", form="NAME=V1,V2,...",
        parse=lambda text: [parse_scalar(value) for value in parse_values(text)])


def previous_run(path: str, settings: dict[str, Any], force: bool) -> dict[str, Any]:
    """The results of the run kept at `path` if it has `settings` ({} if there is none). A
    file of other settings, or one that is not a tuning run, is refused naming what differs,
    or with `force` started over; a run of the same settings is always resumed."""
    target = Path(path)
    check_writable(path, force=True)
    if not target.exists():
        return {}
    try:
        kept = json.loads(target.read_text())
    except (OSError, json.JSONDecodeError):
        kept = None
    if not isinstance(kept, dict) or kept.get("kind") != KIND:
        if force:
            return {}
        raise CeilingError(f"--out {path} exists and is not a tuning run; pass --force to "
                           "overwrite it")
    there = kept.get("settings", {})
    differ = sorted(name for name in {*settings, *there}
                    if settings.get(name) != there.get(name))
    if differ and force:
        return {}
    if differ:
        raise CeilingError(
            f"--out {path} holds a run of other settings (" + ", ".join(
                f"{name}: {there.get(name)!r} there, {settings.get(name)!r} here"
                for name in differ) + "); give another --out, or --force to start over")
    return {key: entry["returns"] for key, entry in kept.get("results", {}).items()}


def cmd_tune(args: argparse.Namespace) -> int:
    import jax

    from ceiling import search
    from ceiling.policies.checkpoint import load_checkpoint, read_manifest
    from ceiling.search.tune import candidates, options_key, summarise, tune
    from ceiling.tasks import instances, make, task_spec

    # Every input error before anything compiles.
    if args.task is not None:
        task_spec(args.task)
    args.checkpoint = resolve_checkpoint(args.checkpoint, args.task)
    manifest = read_manifest(args.checkpoint)
    task_name = args.task or str(manifest["task"])
    if search.strategy_class(args.strategy).budget_free:  # an unknown name fails here
        raise CeilingError(f"{args.strategy} makes one deterministic attempt: it has nothing "
                           "to tune; tune a searching strategy")
    if args.instances < 1:
        raise CeilingError(f"--instances must be at least 1, got {args.instances}")
    budget = search.Budget(seconds=args.seconds, rollouts=args.rollouts)
    keys = search.search_keys(args.seed, task_name, list(range(args.instances)))
    checkpoint = load_checkpoint(args.checkpoint, task=task_name)
    reference = search.with_checkpoint_defaults(
        args.strategy, checkpoint.search_defaults(args.strategy),
        parse_assignments(args.option, "--option"), str(args.checkpoint))
    option_sets = candidates(args.strategy, reference, parse_grid(args.grid))
    task = make(task_name)
    # An inexact rollout budget fails here, before anything is written.
    search.make_strategy(args.strategy, task, checkpoint.policy, args.width,
                         **reference).batch_limit(budget)
    # What a search's result depends on (with its options, the key of its result): a kept run
    # resumes only if these match. Today's options are not among them, so a run resumes after
    # `--record` changed them; its candidates are then compared with the new ones.
    settings = {
        "checkpoint": str(args.checkpoint), "checkpoint_sha256": str(manifest["sha256"]),
        "task": task_name, "strategy": args.strategy, "split": "train",
        "train_seed": args.train_seed, "instances": args.instances, "seconds": args.seconds,
        "rollouts": args.rollouts, "width": args.width, "seed": args.seed,
    }
    done = previous_run(args.out, settings, args.force)
    instance_keys = instances(task_name, "train", args.instances,
                              key=jax.random.PRNGKey(args.train_seed))
    results: dict[str, dict[str, Any]] = {
        options_key(o): {"options": o, "returns": {str(i): r for i, r in
                                                   done.get(options_key(o), {}).items()}}
        for o in option_sets}
    # Kept runs of candidates not asked for this time stay in the file, unsummarised.
    for key, returns in done.items():
        results.setdefault(key, {"options": json.loads(key),
                                 "returns": {str(i): r for i, r in returns.items()}})

    def save(summary: list[dict[str, Any]] | None = None) -> None:
        write_json(args.out, {"kind": KIND, "ceiling_version": __version__,
                              "settings": settings, "reference": reference,
                              "results": results, "summary": summary},
                   force=True, what="the tuning run")

    total = len(option_sets) * args.instances
    kept = sum(str(i) in results[options_key(o)]["returns"] for o in option_sets
               for i in range(args.instances))
    if kept:
        console(stderr=True).print(f"resuming: {kept} of {total} searches kept in {args.out}")
    with phase(f"tuning {args.strategy} on {task_name}", total=total,
               info="compiling") as progress:
        progress.update(completed=kept)

        def on_result(options: dict[str, Any], instance: int, solution: search.Solution,
                      seconds: float) -> None:
            results[options_key(options)]["returns"][str(instance)] = solution.verified
            save()
            progress.update(f"train instance {instance}, {options_key(options)}: "
                            f"{solution.verified:.3f} in {seconds:.1f} s", advance=1)

        found = tune(args.strategy, task, checkpoint.policy, checkpoint.params, option_sets,
                     instance_keys, keys, budget, args.width,
                     done={key: {int(i): r for i, r in entry["returns"].items()}
                           for key, entry in results.items()},
                     on_result=on_result)
    rows = summarise(found)
    summary = [{"options": row.options, "mean": row.mean,
                "versus_reference": row.versus_reference, "better": row.better,
                "worse": row.worse} for row in rows]
    save(summary)
    print_table(args, task_name, reference, rows)
    best = rows[0]
    if args.record:
        from ceiling.cli.defaults import record_defaults

        record_defaults(str(args.checkpoint), args.strategy, best.options, args.force)
    elif best.options != reference:
        console().print(f"to search with it by default: ceiling defaults {args.checkpoint} "
                        f"--strategy {args.strategy} " + " ".join(
                            f"--option {name}={value}" for name, value in best.options.items()))
    return 0


def print_table(args: argparse.Namespace, task: str, reference: dict[str, Any],
                rows: list[Any]) -> None:
    from rich.table import Table

    budget = " / ".join(part for part in (
        f"{args.seconds:g} s" if args.seconds is not None else "",
        f"{args.rollouts:,} rollouts" if args.rollouts is not None else "") if part)
    table = Table(title=f"{args.strategy} on {task}, {args.instances} train instances, "
                        f"{budget} x width {args.width}")
    for column in ("options", "mean return [95 % CI]", "− today's [95 % CI]", "better / worse"):
        table.add_column(column)
    for index, row in enumerate(rows):
        mean, diff = row.mean, row.versus_reference
        notes = [note for note, applies in (("the strategy's defaults", not row.options),
                                            ("today's", row.options == reference),
                                            ("best", index == 0)) if applies]
        table.add_row(
            json.dumps(row.options, sort_keys=True) + (f" ({', '.join(notes)})" if notes else ""),
            f"{mean[0]:.3f} [{mean[1]:.3f}, {mean[2]:.3f}]",
            f"{diff[0]:+.3f} [{diff[1]:+.3f}, {diff[2]:+.3f}]",
            f"{row.better} / {row.worse}")
    console().print(table)
