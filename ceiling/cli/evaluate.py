"""`ceiling evaluate`: the zero-shot summary of a checkpoint on test instances."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ceiling.cli.common import console, refuse_existing, write_json
from ceiling.errors import CeilingError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="zero-shot evaluation of a checkpoint on test instances")
    p.add_argument("--checkpoint", required=True, help="checkpoint directory")
    p.add_argument("--task", help="fail unless the checkpoint was trained for this task")
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
    from ceiling.policies.evaluation import evaluate_checkpoint

    if args.instances < 1:
        raise CeilingError(f"--instances must be at least 1, got {args.instances}")
    if args.out:
        refuse_existing(args.out, args.force)  # before the evaluation, not after it
    summary = evaluate_checkpoint(args.checkpoint, args.task, args.instances, args.stochastic,
                                  args.seed, uniform_random=args.random)
    if args.out:
        write_json(args.out, summary, args.force)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    lo, hi = summary["ci95"]
    line = (f"{summary['task']} {summary['algorithm']} ({summary['mode']}, "
            f"{summary['num_instances']} test instances): mean return "
            f"{summary['mean_return']:.3f}  95% CI [{lo:.3f}, {hi:.3f}]")
    if summary["win_rate"] is not None:
        line += f"  win rate {summary['win_rate']:.3f}"
    console().print(line)
    return 0
