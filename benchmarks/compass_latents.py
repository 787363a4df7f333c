"""Do a COMPASS checkpoint's latents specialise? Its latent diagnostics on many test instances.

On the first `--instances` test instances (128 by default, the issue's protocol), with the 64
fixed evaluation latents its training logged (`ceiling.training.compass.EVAL_KEY`), per
instance: the best latent with arg-max actions (what a search over those latents can find),
the best with sampled actions, the mean latent, z = 0, and the base policy's greedy return and
own best of 64 sampled rollouts (the bar the issue sets: same action keys). Means with 95 %
percentile-bootstrap CIs over instances, and the paired difference between the best latent and
the base's best sample, so "at least the base's stochastic best-of-64" is a CI, not a guess.

Run from the repository root:

    python benchmarks/compass_latents.py \
        --checkpoint ceiling/checkpoints/rware-tiny-2ag-hard/compass

The base is the checkpoint the COMPASS run started from (its manifest's `training.from`);
`--base DIR` overrides it. `--split train` measures on training instances instead (drawn
with `--train-seed`), for choosing between training settings without looking at the test set.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import jax
import numpy as np

from ceiling.bootstrap import mean_ci
from ceiling.policies.checkpoint import load_checkpoint
from ceiling.policies.latent import sample_prior
from ceiling.policies.rollout import evaluate_batch
from ceiling.tasks import instances, make
from ceiling.training.compass import EVAL_KEY, make_latent_scores


def measure(checkpoint_dir: str, base_dir: str | None, count: int,
            num_latents: int, split: str = "test", train_seed: int = 0) -> dict[str, Any]:
    compass = load_checkpoint(checkpoint_dir)
    if not compass.policy.config.conditioned:
        sys.exit(f"{checkpoint_dir} is not a COMPASS (latent-conditioned) checkpoint")
    base_dir = base_dir or compass.manifest.get("training", {}).get("from")
    if not base_dir:
        sys.exit(f"{checkpoint_dir} does not record the checkpoint it started from; give --base")
    base = load_checkpoint(base_dir, task=compass.task_name)
    task = make(compass.task_name)
    keys = instances(compass.task_name, split, count, jax.random.PRNGKey(train_seed))
    latents = sample_prior(jax.random.PRNGKey(EVAL_KEY),
                           (num_latents, compass.policy.config.latent_dim))
    found = make_latent_scores(task, compass.policy, keys, latents,
                               (base.policy, base.params))(compass.params)
    assert found.base_sampled is not None
    greedy_episodes = evaluate_batch(task, base.policy, base.params, keys, jax.random.PRNGKey(0))
    base_greedy = np.asarray(greedy_episodes.total_return)
    best = found.greedy.max(axis=1)
    ordered = np.sort(found.greedy, axis=1)
    columns = {
        "base greedy": base_greedy,
        "z = 0": found.zero,
        "mean latent": found.greedy.mean(axis=1),
        f"best of {num_latents} latents, arg-max": best,
        f"best of {num_latents} latents, sampled": found.sampled.max(axis=1),
        f"base: best of {num_latents} samples": found.base_sampled.max(axis=1),
        "best latent − base's best sample (paired)": best - found.base_sampled.max(axis=1),
    }
    result: dict[str, Any] = {
        "task": compass.task_name, "split": split, "instances": count, "latents": num_latents,
        "rows": {name: mean_ci(values) for name, values in columns.items()},
        "tie_share": float((ordered[:, -1] == ordered[:, -2]).mean()),
        "z0_vs_base_percent": 100 * (found.zero.mean() - base_greedy.mean())
        / abs(base_greedy.mean()),
    }
    if task.spec.has_win:
        winner = found.greedy.argmax(axis=1)
        result["best_latent_win_rate"] = float(
            found.wins[np.arange(count), winner].mean())
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a COMPASS checkpoint directory")
    parser.add_argument("--base", help="the base checkpoint (default: the one it started from)")
    parser.add_argument("--instances", type=int, default=128, help="instances (128)")
    parser.add_argument("--split", choices=("test", "train"), default="test",
                        help="the test set's first instances (default), or training ones")
    parser.add_argument("--train-seed", type=int, default=0,
                        help="the key training instances are drawn with (--split train)")
    parser.add_argument("--latents", type=int, default=64, help="fixed latents (64)")
    args = parser.parse_args(argv)
    if args.instances < 2 or args.latents < 2:
        parser.error("--instances and --latents must be at least 2")
    result = measure(args.checkpoint, args.base, args.instances, args.latents, args.split,
                     args.train_seed)
    print(f"{result['task']}: {result['instances']} {result['split']} instances, "
          f"{result['latents']} fixed latents\n")
    print("| measure | mean [95 % CI] |\n|---|---|")
    for name, (mean, low, high) in result["rows"].items():
        print(f"| {name} | {mean:.3f} [{low:.3f}, {high:.3f}] |")
    print(f"\nz = 0 vs base greedy: {result['z0_vs_base_percent']:+.2f} %; best two latents "
          f"tie on {result['tie_share']:.0%} of instances")
    if "best_latent_win_rate" in result:
        print(f"best latent's win rate: {result['best_latent_win_rate']:.3f}")


if __name__ == "__main__":
    main()
