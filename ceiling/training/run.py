"""The training driver: chunks of jitted PPO updates, progress, metrics, evaluation, checkpoints.

`train()` builds the jitted core of `ppo.py` (SABLE: of `sable.py`) and hands it to the outer
loop shared with COMPASS training (`loop.py`: `metrics.jsonl`, periodic greedy evaluation on
the fixed test instances, `best/` and `last/` checkpoints, the convergence report); it owns
the run directory (never overwritten without `force`), the resolved config and the
learning-curve plot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ceiling.errors import CeilingError
from ceiling.policies.networks import NetworkConfig, make_policy
from ceiling.policies.rollout import evaluate_episodes, summarise
from ceiling.tasks import instances, make
from ceiling.training.config import PPOConfig
from ceiling.training.convergence import convergence_report as convergence_report
from ceiling.training.loop import Loop, run_loop, start_run_dir
from ceiling.training.ppo import Metrics, init_runner, make_train_chunk
from ceiling.training.sable import make_sable_update, sable_network

UPDATES_PER_CALL_TARGET_STEPS = 100_000  # env steps per jitted call, for a lively progress bar


def plot_learning_curve(records: list[dict[str, Any]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(r["step"], r["train_return"]) for r in records
             if r.get("train_return") is not None]
    evals = [(r["step"], r["eval_return"]) for r in records if "eval_return" in r]
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    if train:
        steps, returns = np.array(train).T
        window = max(1, len(returns) // 50)
        smooth = np.convolve(returns, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], smooth, label="training episodes (smoothed)", alpha=0.7)
    if evals:
        steps, returns = np.array(evals).T
        ax.plot(steps, returns, "o-", label="greedy, test instances", markersize=3)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("team return")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def train(
    task_name: str,
    config: PPOConfig,
    out: str | Path,
    force: bool = False,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Train `config.algorithm` on `task_name`, writing everything into `out`; returns a summary.

    With `resume`, continue the interrupted run in `out` (started with this same config)."""
    config.validate()
    if config.algorithm == "compass":
        raise CeilingError("COMPASS training starts from a base checkpoint: use "
                           "ceiling.training.compass.train_compass (ceiling train --algo "
                           "compass --from CHECKPOINT)")
    task = make(task_name)
    out = Path(out)
    start_run_dir(out, {"task": task_name, **config.to_dict()}, force, resume)

    make_update = None  # IPPO/MAPPO's update
    if config.algorithm == "sable":  # the autoregressive trainer (agents shuffled)
        network, make_update = sable_network(config), make_sable_update
    else:
        network = NetworkConfig(config.algorithm, config.hidden_sizes, config.activation,
                                architecture=config.architecture)
    policy = make_policy(task.spec, network)
    key = jax.random.PRNGKey(config.seed)
    runner = init_runner(task, policy, config, key)

    per_call = max(1, min(config.num_updates,
                          UPDATES_PER_CALL_TARGET_STEPS // config.steps_per_update,
                          config.eval_every // config.steps_per_update))
    num_calls = max(1, config.num_updates // per_call)
    chunk = make_train_chunk(task, policy, config, per_call, make=make_update)
    test_keys = instances(task_name, "test", config.eval_instances)
    eval_key = jax.random.PRNGKey(0)

    # A run evaluates tens of times, so its evaluation is compiled with XLA's optimising
    # passes (not `evaluate_batch`'s run-once program): 0.58 s instead of 2.2 s for 128 RWARE
    # tiny-4ag-hard episodes, the same returns (BENCHMARKS.md, "Training's evaluations and
    # start").
    greedy_episodes = jax.jit(lambda params: evaluate_episodes(task, policy, params, test_keys,
                                                               eval_key, greedy=True))

    def evaluate(params: Any) -> dict[str, Any]:
        episodes = greedy_episodes(params)
        wins = np.asarray(episodes.won) if task.spec.has_win else None
        return summarise(np.asarray(episodes.total_return), wins)

    start = time.perf_counter()
    chunk_compiled = chunk.lower(runner).compile()
    compile_seconds = time.perf_counter() - start
    steps_per_call = per_call * config.steps_per_update

    def advance(runner: Any, call: int) -> tuple[Any, dict[str, Any]]:
        runner, metrics = chunk_compiled(runner)
        return runner, chunk_record(metrics)

    loop = Loop(
        policy=policy, advance=advance, params=lambda r: r.params, evaluate=evaluate,
        num_calls=num_calls, steps_per_call=steps_per_call, eval_every=config.eval_every,
        initial={"train_return": None}, train_curve="train_return",
        plot=lambda records, path: plot_learning_curve(
            records, f"{config.algorithm.upper()} on {task_name}", path),
        meta={"config": config.to_dict()},
    )
    _, report = run_loop(loop, runner, out, compile_seconds, on_progress, resume)
    return report


def chunk_record(metrics: Metrics) -> dict[str, Any]:
    """A metrics.jsonl line's fields from the stacked metrics of a chunk of updates."""
    episodes = float(metrics.episodes.sum())
    return {
        "train_return": (float(metrics.episode_return_sum.sum()) / episodes
                         if episodes else None),
        "episodes": int(episodes),
        "policy_loss": float(metrics.policy_loss.mean()),
        "value_loss": float(metrics.value_loss.mean()),
        "entropy": float(metrics.entropy.mean()),
        "approx_kl": float(metrics.approx_kl.mean()),
    }
