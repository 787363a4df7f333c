"""Tune COMPASS's search: CMA-ES settings against latent sampling at an equal rollout budget.

Issue 13 asks that `compass` (CMA-ES over the latent) beat `latent-sampling` (the same
policy's latents drawn uniformly, the ablation). This script scores each configuration given
with `--config NAME=JSON` (the `compass` strategy's options: `num_distributions`,
`sigma_init`, `temperature`) and `latent-sampling` on the same instances, with the same
search keys and the same number of rollouts, and prints each configuration's mean return and
its paired difference from latent sampling (95 % percentile-bootstrap CI over instances,
better / worse counts).

A rollout budget, not seconds, so the numbers do not depend on what else runs on the machine
and any rerun reproduces them exactly; `--rollouts 768` at width 64 is 12 generations, about
what 10 s buys on RWARE. Tune on the `train` split (the default: `--instances` keys drawn
from `--train-seed`); report on `--split test`. Every instance of a configuration runs in one
vmapped call (`ceiling.search.solve_instances`), and each solution is replayed and verified.

    python benchmarks/compass_search.py \\
        --checkpoint ceiling/checkpoints/rware-tiny-4ag-hard/compass \\
        --config default='{}' --config one='{"num_distributions": 1}'
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import jax
import numpy as np

from ceiling.bootstrap import mean_ci
from ceiling.policies.checkpoint import load_checkpoint
from ceiling.search import Budget, make_strategy, search_keys, solve_instances
from ceiling.tasks import instances, make

SEED = 0


def run(checkpoint_dir: str, configs: dict[str, dict[str, Any]], temperature: float,
        split: str, count: int, rollouts: int, width: int, train_seed: int) -> dict[str, Any]:
    """Each compass configuration and latent sampling (at `temperature`, the one the
    configurations share) on the same instances, keys and rollout budget."""
    checkpoint = load_checkpoint(checkpoint_dir)
    if not checkpoint.policy.config.conditioned:
        sys.exit(f"{checkpoint_dir} is not a COMPASS (latent-conditioned) checkpoint")
    task = make(checkpoint.task_name)
    # The test set ignores the key; train instances are drawn from it.
    keys = instances(checkpoint.task_name, split, count, key=jax.random.PRNGKey(train_seed))
    # One search key per instance, as `ceiling bench` derives them (seed, task, index); a
    # single key for the whole vmapped call, split per instance by solve_instances.
    key = jax.numpy.asarray(search_keys(SEED, checkpoint.task_name, [0])[0])
    budget = Budget(rollouts=rollouts)
    runs = {"latent-sampling": ("latent-sampling", {"temperature": temperature})}
    runs.update({name: ("compass", options) for name, options in configs.items()})
    returns: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for name, (strategy_name, options) in runs.items():
        strategy = make_strategy(strategy_name, task, checkpoint.policy, width, **options)
        start = time.perf_counter()
        solutions = solve_instances(strategy, checkpoint.params, keys, budget, key)
        seconds[name] = time.perf_counter() - start
        returns[name] = np.array([s.total_return for s in solutions])
        print(f"  {name}: {returns[name].mean():.3f} ({seconds[name]:.0f} s)", file=sys.stderr)
    reference = returns["latent-sampling"]
    rows = {}
    for name, values in returns.items():
        difference = values - reference
        rows[name] = {
            "options": runs[name][1], "mean": mean_ci(values),
            "versus_latent_sampling": mean_ci(difference),
            "better": int((difference > 0).sum()), "worse": int((difference < 0).sum()),
            "seconds": seconds[name],
        }
    return {"checkpoint": checkpoint_dir, "task": checkpoint.task_name, "split": split,
            "instances": count, "rollouts": rollouts, "width": width, "rows": rows}


def print_table(result: dict[str, Any]) -> None:
    print(f"{result['task']}, {result['instances']} {result['split']} instances, "
          f"{result['rollouts']} rollouts x width {result['width']} "
          f"(checkpoint {result['checkpoint']})")
    print("| configuration | options | mean return | − latent sampling [95 % CI] "
          "| better / worse | seconds |")
    print("|---|---|---|---|---|---|")
    for name, row in result["rows"].items():
        mean, diff = row["mean"], row["versus_latent_sampling"]
        print(f"| {name} | `{json.dumps(row['options'], sort_keys=True)}` | {mean[0]:.3f} "
              f"| {diff[0]:+.3f} [{diff[1]:+.3f}, {diff[2]:+.3f}] "
              f"| {row['better']} / {row['worse']} | {row['seconds']:.0f} |")


def parse_config(text: str) -> tuple[str, dict[str, Any]]:
    name, sep, options = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--config wants NAME=JSON, got {text!r}")
    try:
        parsed = json.loads(options)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"--config {name}: not JSON ({err})") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(f"--config {name}: wants a JSON object of options")
    return name, parsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a COMPASS checkpoint directory")
    parser.add_argument("--config", type=parse_config, action="append", required=True,
                        help="NAME=JSON of compass options (repeatable)")
    parser.add_argument("--split", choices=("train", "test"), default="train")
    parser.add_argument("--instances", type=int, default=32)
    parser.add_argument("--train-seed", type=int, default=1,
                        help="the key the train instances are drawn from")
    parser.add_argument("--rollouts", type=int, default=768)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    configs = dict(args.config)
    temperatures = {options.get("temperature", 0.0) for options in configs.values()}
    if len(temperatures) > 1:
        parser.error("all --config entries must share one temperature (latent sampling, the "
                     "reference, is scored at it)")
    result = run(args.checkpoint, configs, temperatures.pop(), args.split, args.instances,
                 args.rollouts, args.width, args.train_seed)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
