"""Fine-tuning under a clock budget: how its learning settings spend the seconds, against sampling.

A fine-tuning learning batch costs its gradient work, not its rollouts: with SABLE on
`rware:tiny-4ag-hard` at width 64, four full-batch passes took about 40x a sampling batch, so
at 30 s the search learns once at most and scores below plain sampling (BENCHMARKS.md, the
claims sweep's seventeenth part). This script runs `sampling` and each fine-tuning
configuration given with `--config NAME=JSON` (the `finetune` strategy's options, e.g.
`{"num_updates": 1, "num_minibatches": 4}`: the same four gradient steps, each on a quarter of
the attempts) on the same instances and search keys under the same clock budget, the
strategies alternating per instance, and prints each one's mean return, its learning batches
and rollouts, and its paired difference from sampling (95 % percentile-bootstrap CI over
instances, better / worse counts). Every solution is replayed and verified by `solve`.

A clock budget, so run it on an otherwise idle core (`taskset -c N`, one thread: the XLA_FLAGS
of BENCHMARKS.md). Tune on the `train` split (the default); report on `--split test`.

    python benchmarks/finetune_budget.py \\
        --checkpoint ceiling/checkpoints/rware-tiny-4ag-hard/sable --config default='{}' \\
        --config quarters='{"num_updates": 1, "num_minibatches": 4}'
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import jax
import numpy as np

from ceiling.bootstrap import mean_ci
from ceiling.errors import CeilingError
from ceiling.outputs import check_writable, write_json
from ceiling.policies.checkpoint import load_checkpoint
from ceiling.search import Budget, make_strategy, search_key, solve
from ceiling.tasks import instances, make

SEED = 0


def run(checkpoint_dir: str, configs: dict[str, dict[str, Any]], split: str, count: int,
        seconds: float, width: int, train_seed: int) -> dict[str, Any]:
    """Sampling and each fine-tuning configuration on the same instances, keys and budget."""
    checkpoint = load_checkpoint(checkpoint_dir)
    name = checkpoint.task_name
    task = make(name)
    keys = instances(name, split, count, key=jax.random.PRNGKey(train_seed))
    strategies = {"sampling": make_strategy("sampling", task, checkpoint.policy, width)}
    for label, options in configs.items():
        strategies[label] = make_strategy("finetune", task, checkpoint.policy, width, **options)
    returns: dict[str, list[float]] = {label: [] for label in strategies}
    learning: dict[str, list[int]] = {label: [] for label in strategies}
    rollouts: dict[str, list[int]] = {label: [] for label in strategies}
    labels = list(strategies)
    for index in range(count):
        order = labels[index % len(labels):] + labels[:index % len(labels)]  # alternate
        for label in order:
            result = solve(strategies[label], checkpoint.params, keys[index],
                           Budget(seconds=seconds), search_key(SEED, name, index))
            returns[label].append(result.solution.total_return)
            learning[label].append(result.learning_batches)
            rollouts[label].append(result.rollouts)
        print(f"instance {index}: " + ", ".join(
            f"{label} {returns[label][-1]:.2f}" for label in labels), flush=True)
    base = np.asarray(returns["sampling"])
    rows = []
    for label in labels:
        values = np.asarray(returns[label])
        difference = values - base
        mean, low, high = mean_ci(difference)
        rows.append({
            "strategy": label, "options": configs.get(label, {}), "mean": float(values.mean()),
            "learning_batches": float(np.mean(learning[label])),
            "rollouts": float(np.mean(rollouts[label])),
            "minus_sampling": [mean, low, high],
            "better": int((difference > 0).sum()), "worse": int((difference < 0).sum()),
        })
    return {"checkpoint": checkpoint_dir, "task": name, "split": split, "instances": count,
            "seconds": seconds, "width": width, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a base-policy checkpoint directory")
    parser.add_argument("--config", action="append", default=[], metavar="NAME=JSON",
                        help="a fine-tuning configuration (its options as JSON); repeatable")
    parser.add_argument("--split", choices=["train", "test"], default="train")
    parser.add_argument("--instances", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--train-seed", type=int, default=0,
                        help="the key train instances are drawn with")
    parser.add_argument("--out", help="also write the table as JSON here")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    args = parser.parse_args()
    if args.out:
        try:  # refused now, not after the minutes of search
            check_writable(args.out, args.force)
        except CeilingError as err:
            parser.error(str(err))
    configs = {}
    for text in args.config or ["default={}"]:
        label, _, options = text.partition("=")
        if not label or label == "sampling":
            parser.error(f"--config {text!r}: give NAME=JSON, NAME not 'sampling'")
        try:
            configs[label] = json.loads(options)
        except json.JSONDecodeError as err:
            parser.error(f"--config {text!r}: the options are not JSON ({err})")
    start = time.perf_counter()
    table = run(args.checkpoint, configs, args.split, args.instances, args.seconds, args.width,
                args.train_seed)
    print(f"\n{table['task']}, {table['split']} instances: {table['instances']}, "
          f"{table['seconds']:g} s x {table['width']} ({time.perf_counter() - start:.0f} s)")
    print("| strategy | options | mean return | learning batches | rollouts "
          "| − sampling [95 % CI] | better / worse |")
    print("|---|---|---|---|---|---|---|")
    for row in table["rows"]:
        mean, low, high = row["minus_sampling"]
        print(f"| {row['strategy']} | `{json.dumps(row['options'])}` | {row['mean']:.2f} "
              f"| {row['learning_batches']:.1f} | {row['rollouts']:.0f} "
              f"| {mean:+.2f} [{low:+.2f}, {high:+.2f}] | {row['better']} / {row['worse']} |")
    if args.out:
        write_json(args.out, table, args.force, "the table")


if __name__ == "__main__":
    main()
