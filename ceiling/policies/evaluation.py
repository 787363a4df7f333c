"""Zero-shot evaluation of a checkpoint: one episode per test instance, no search.

`evaluate_checkpoint` plays a checkpoint's policy on the first test instances of its task —
arg-max actions (greedy), sampled actions (stochastic), or the uniform random policy over
legal actions as a baseline — and summarises the returns (mean, 95 % CI, win rate). It is what
`ceiling evaluate` and `ceiling demo` print, and the zero-shot reference a search improves on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ceiling import __version__
from ceiling.errors import CeilingError
from ceiling.policies.checkpoint import load_checkpoint
from ceiling.policies.rollout import evaluate_batch, summarise
from ceiling.tasks import instances, make


def evaluate_checkpoint(
    checkpoint: str | Path,
    task: str | None,
    num_instances: int,
    stochastic: bool,
    seed: int,
    uniform_random: bool = False,
) -> dict[str, Any]:
    """Zero-shot summary of `checkpoint` on the first `num_instances` test instances.

    `task`, when given, must be the checkpoint's task. `stochastic` samples actions (from
    `seed`) instead of taking the arg-max; `uniform_random` plays the random policy over legal
    actions instead (all-zero parameters give uniform logits). Returns `summarise`'s fields
    (`mean_return`, `ci95`, `win_rate`, `num_instances`) plus the task, algorithm, checkpoint,
    mode (`greedy`, `stochastic` or `random`), seconds and package version.
    """
    if num_instances < 1:
        raise CeilingError(f"the number of test instances must be at least 1, got {num_instances}")
    loaded = load_checkpoint(checkpoint, task)
    task_obj = make(loaded.task_name)
    keys = instances(loaded.task_name, "test", num_instances)
    params = loaded.params
    if uniform_random:
        params = jax.tree_util.tree_map(jax.numpy.zeros_like, params)
        stochastic = True
    start = time.perf_counter()
    episodes = evaluate_batch(task_obj, loaded.policy, params, keys,
                              jax.random.PRNGKey(seed), greedy=not stochastic)
    returns = np.asarray(episodes.total_return)
    summary = summarise(returns, np.asarray(episodes.won) if task_obj.spec.has_win else None)
    summary.update({
        "task": loaded.task_name, "algorithm": loaded.manifest["algorithm"],
        "checkpoint": str(checkpoint),
        "mode": "random" if uniform_random else "stochastic" if stochastic else "greedy",
        "seconds": time.perf_counter() - start, "ceiling_version": __version__,
    })
    return summary
