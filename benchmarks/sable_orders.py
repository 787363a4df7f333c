"""Does a SABLE policy depend on the order its agents act in?

SABLE is trained with the agents shuffled into a random order per environment and step, so
that the joint policy does not depend on one ordering; at inference the agents act in the
task's order. This script plays the greedy policy of a SABLE checkpoint on the first
`--instances` test instances once per agent ordering (every permutation for up to 4 agents,
else `--orders` random ones, always including the task's order), with the same ordering at
every step, and reports per ordering the mean return with its 95 % CI and the paired
difference from the task's order (percentile bootstrap over instances).

"Training noise" is the yardstick the issue names: the standard deviation of the greedy test
return over the evaluations in the last third of the checkpoint's training (`metrics.jsonl`),
i.e. how much the same measurement moved while the policy was converged.

Run from the repository root:

    python benchmarks/sable_orders.py --checkpoint ceiling/checkpoints/connector-con-5x5x3a/sable
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ceiling.policies.checkpoint import load_checkpoint
from ceiling.policies.rollout import evaluate_batch, summarise
from ceiling.tasks import instances, make
from ceiling.training.sable import permute_agents, restore_agents


class OrderedPolicy:
    """`policy` acting with its agents in `order` (a tuple: agent order[i] acts i-th)."""

    def __init__(self, policy: Any, order: tuple[int, ...]) -> None:
        self.policy, self.order = policy, order

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OrderedPolicy) and (self.policy, self.order) == (
            other.policy, other.order)

    def __hash__(self) -> int:
        return hash((self.policy, self.order))

    def acting(self, params: Any) -> tuple[OrderedPolicy, Any]:
        return self, params  # what `evaluate_batch` asks every policy for

    def decide(self, params: Any, observation: jax.Array, action_mask: jax.Array,
               key: jax.Array | None, greedy: bool, temperature: float = 1.0,
               latent: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        order = jax.numpy.asarray(self.order, jax.numpy.int32)
        action, logits = self.policy.decide(
            params, permute_agents(observation, order), permute_agents(action_mask, order),
            key, greedy, temperature, latent)
        return restore_agents(action, order), restore_agents(logits, order)


def orderings(num_agents: int, count: int, seed: int) -> list[tuple[int, ...]]:
    identity = tuple(range(num_agents))
    if num_agents <= 4:
        return list(itertools.permutations(identity))
    rng = np.random.default_rng(seed)
    found = {identity}
    while len(found) < count:
        found.add(tuple(int(i) for i in rng.permutation(num_agents)))
    return [identity, *sorted(found - {identity})]


def paired_ci(diff: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    index = rng.integers(0, diff.size, (resamples, diff.size))
    means = diff[index].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def training_noise(checkpoint: Path) -> tuple[float, int]:
    """Std of the greedy eval return over the last third of training, and the point count."""
    records = [json.loads(line) for line in (checkpoint / "metrics.jsonl").read_text().splitlines()
               if line.strip()]
    evals = [(r["step"], r["eval_return"]) for r in records if r.get("eval_return") is not None]
    last = max(step for step, _ in evals)
    tail = [value for step, value in evals if step >= 2 * last / 3]
    return float(np.std(tail, ddof=1)), len(tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a SABLE checkpoint directory")
    parser.add_argument("--instances", type=int, default=128)
    parser.add_argument("--orders", type=int, default=8,
                        help="orderings to try when there are more than 4 agents")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    checkpoint = load_checkpoint(args.checkpoint)
    if checkpoint.algorithm != "sable":
        print(f"{args.checkpoint} is a {checkpoint.algorithm} checkpoint, not sable",
              file=sys.stderr)
        return 2
    task = make(checkpoint.task_name)
    keys = instances(checkpoint.task_name, "test", args.instances)
    play = functools.partial(evaluate_batch, task)
    returns = {}
    for order in orderings(task.spec.num_agents, args.orders, args.seed):
        episodes = play(OrderedPolicy(checkpoint.policy, order), checkpoint.params, keys,
                        jax.random.PRNGKey(args.seed), greedy=True)
        returns[order] = np.asarray(episodes.total_return, dtype=np.float64)
    identity = tuple(range(task.spec.num_agents))
    noise, points = training_noise(Path(args.checkpoint))
    print(f"command: python benchmarks/sable_orders.py {' '.join(argv or sys.argv[1:])}")
    print(f"{checkpoint.task_name}, SABLE greedy, {args.instances} test instances; "
          f"training noise (std of the greedy test return over the last third of training, "
          f"{points} evaluations): {noise:.3f}")
    print("| agent order | mean return [95 % CI] | minus task order [95 % CI] "
          "| instances that differ |")
    print("|---|---|---|---|")
    for order, values in returns.items():
        summary = summarise(values, None)
        lo, hi = summary["ci95"]
        diff = values - returns[identity]
        dlo, dhi = paired_ci(diff)
        differ = int(np.sum(np.abs(diff) > 1e-6))
        print(f"| {' '.join(map(str, order))} | {summary['mean_return']:.3f} [{lo:.3f}, {hi:.3f}] "
              f"| {diff.mean():+.3f} [{dlo:+.3f}, {dhi:+.3f}] | {differ} of {values.size} |")
    means = [values.mean() for values in returns.values()]
    print(f"spread of the mean over orderings (max - min): {max(means) - min(means):.3f}; "
          f"training noise: {noise:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
