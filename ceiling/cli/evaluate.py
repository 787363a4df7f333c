"""`ceiling evaluate`: the zero-shot summary of a checkpoint on test instances."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ceiling.cli.common import (
    CHECKPOINT_HELP,
    check_writable,
    console,
    phase,
    resolve_checkpoint,
    write_json,
)
from ceiling.errors import CeilingError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="zero-shot evaluation of a checkpoint on test instances")
    p.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    p.add_argument("--task", help="fail unless the checkpoint was trained for this task (with "
                                  "shipped:LABEL: the task whose checkpoint to take)")
    p.add_argument("--instances", type=int, default=128, help="number of test instances")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of arg-max")
    p.add_argument("--seed", type=int, default=0, help="seed for stochastic actions")
    p.add_argument("--random", action="store_true",
                   help="play the uniform random policy instead (a baseline)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--out", help="also write the JSON result to this file")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ceiling.policies.checkpoint import load_checkpoint
    from ceiling.policies.evaluation import evaluate_checkpoint

    if args.instances < 1:
        raise CeilingError(f"--instances must be at least 1, got {args.instances}")
    if args.out:
        check_writable(args.out, args.force)  # before the evaluation, not after it
    args.checkpoint = resolve_checkpoint(args.checkpoint, args.task)
    checkpoint = load_checkpoint(args.checkpoint, task=args.task)  # bad ones before progress
    mode = "random policy" if args.random else "stochastic" if args.stochastic else "greedy"
    with phase(f"evaluating {checkpoint.task_name} {checkpoint.algorithm} ({mode}) on "
               f"{args.instances} test instances"):
        summary = evaluate_checkpoint(args.checkpoint, args.task, args.instances,
                                      args.stochastic, args.seed, uniform_random=args.random)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        lo, hi = summary["ci95"]
        line = (f"{summary['task']} {summary['algorithm']} ({summary['mode']}, "
                f"{summary['num_instances']} test instances): mean return "
                f"{summary['mean_return']:.3f}  95% CI [{lo:.3f}, {hi:.3f}]")
        if summary["win_rate"] is not None:
            line += f"  win rate {summary['win_rate']:.3f}"
        console().print(line)
    if args.out:  # after printing: a failed write still leaves the result on the screen
        write_json(args.out, summary, force=True, what="the evaluation")
    return 0
