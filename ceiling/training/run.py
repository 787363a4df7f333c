"""The training driver: chunks of jitted PPO updates, progress, metrics, evaluation, checkpoints.

`train()` owns everything around the jitted core in `ppo.py`: a run directory (never
overwritten without `force`), the resolved config, `metrics.jsonl`, periodic greedy evaluation
on the fixed test instances, `best/` and `last/` checkpoints, the convergence report and the
learning-curve plot.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import yaml

from ceiling.errors import CeilingError
from ceiling.policies.checkpoint import save_checkpoint
from ceiling.policies.networks import NetworkConfig, Policy
from ceiling.policies.rollout import evaluate_batch, summarise
from ceiling.tasks import instances, make
from ceiling.training.config import PPOConfig
from ceiling.training.ppo import Metrics, init_runner, make_train_chunk

CONVERGENCE_TOLERANCE = 0.05  # at most 5 % improvement over the last quarter of training
CONVERGENCE_WINDOW = 0.10  # evaluations averaged over 10 % of training at each end
UPDATES_PER_CALL_TARGET_STEPS = 100_000  # env steps per jitted call, for a lively progress bar


def _window_mean(
    points: list[tuple[int, float]], low: float, high: float
) -> tuple[float, list[int]] | None:
    inside = [(s, r) for s, r in points if low <= s <= high]
    if not inside:
        return None
    return float(np.mean([r for _, r in inside])), [s for s, _ in inside]


def _trend(points: list[tuple[int, float]], total_steps: int, width: float) -> dict[str, Any]:
    """Mean over the `width` of training before 3/4, against the mean over the last `width`."""
    quarter_mark = 0.75 * total_steps
    start = _window_mean(points, (0.75 - width) * total_steps, quarter_mark)
    end = _window_mean(points, (1.0 - width) * total_steps, total_steps)
    if start is None:  # too few points: the last one before the mark stands in
        step, value = [(s, r) for s, r in points if s <= quarter_mark][-1]
        start = (value, [step])
    if end is None:
        end = (points[-1][1], [points[-1][0]])
    return {
        "start_of_last_quarter": {"mean": start[0], "steps": start[1]},
        "end": {"mean": end[0], "steps": end[1]},
        "relative_improvement": (end[0] - start[0]) / max(abs(start[0]), 1e-8),
    }


def convergence_report(
    evaluations: list[tuple[int, float]],
    total_steps: int,
    train_returns: list[tuple[int, float]] | None = None,
) -> dict[str, Any]:
    """Relative improvement of greedy test return over the last quarter of training.

    Converged means the greedy test-set return at the end of training is at most 5 % above the
    one at the start of the last quarter (relative to the absolute value of the latter). Both
    are means over the evaluations in a window of 10 % of training (before 3/4, and at the
    end), because a single greedy evaluation swings with small parameter changes (arg-max
    flips in near-tie states). The same comparison on the training-episode return is reported
    beside it.
    """
    if len(evaluations) < 2:
        return {"converged": None, "reason": "fewer than two evaluations"}
    evaluation = _trend(evaluations, total_steps, CONVERGENCE_WINDOW)
    return {
        "converged": bool(evaluation["relative_improvement"] <= CONVERGENCE_TOLERANCE),
        "tolerance": CONVERGENCE_TOLERANCE,
        "window": CONVERGENCE_WINDOW,
        "relative_improvement": evaluation["relative_improvement"],
        "eval_return": evaluation,
        "train_return": _trend(train_returns, total_steps, CONVERGENCE_WINDOW)
        if train_returns else None,
    }


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


def prepare_run_dir(out: Path, force: bool) -> None:
    if out.exists():
        if not force:
            raise CeilingError(f"run directory {out} already exists; pass --force to replace it")
        shutil.rmtree(out)
    out.mkdir(parents=True)


def train(
    task_name: str,
    config: PPOConfig,
    out: str | Path,
    force: bool = False,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train `config.algorithm` on `task_name`, writing everything into `out`; returns a summary."""
    config.validate()
    if config.algorithm == "compass":
        raise CeilingError("COMPASS training starts from a base checkpoint: use "
                           "ceiling.training.compass.train_compass (ceiling train --algo "
                           "compass --from CHECKPOINT)")
    task = make(task_name)
    out = Path(out)
    prepare_run_dir(out, force)
    (out / "config.yaml").write_text(
        yaml.safe_dump({"task": task_name, **config.to_dict()}, sort_keys=False)
    )

    network = NetworkConfig(config.algorithm, config.hidden_sizes, config.activation)
    policy = Policy(task.spec, network)
    key = jax.random.PRNGKey(config.seed)
    runner = init_runner(task, policy, config, key)

    per_call = max(1, min(config.num_updates,
                          UPDATES_PER_CALL_TARGET_STEPS // config.steps_per_update,
                          config.eval_every // config.steps_per_update))
    num_calls = max(1, config.num_updates // per_call)
    chunk = make_train_chunk(task, policy, config, per_call)
    test_keys = instances(task_name, "test", config.eval_instances)
    eval_key = jax.random.PRNGKey(0)

    def evaluate(params: Any) -> dict[str, Any]:
        episodes = evaluate_batch(task, policy, params, test_keys, eval_key, greedy=True)
        wins = np.asarray(episodes.won) if task.spec.has_win else None
        return summarise(np.asarray(episodes.total_return), wins)

    start = time.perf_counter()
    chunk_compiled = chunk.lower(runner).compile()
    compile_seconds = time.perf_counter() - start
    total_steps = num_calls * per_call * config.steps_per_update
    records: list[dict[str, Any]] = []
    evaluations: list[tuple[int, float]] = []
    best_return = -math.inf
    next_eval = steps = 0
    final: dict[str, Any] = {}
    train_start = time.perf_counter()
    training_meta: dict[str, Any] = {"config": config.to_dict()}
    with (out / "metrics.jsonl").open("w") as metrics_file:
        for call in range(num_calls + 1):
            record: dict[str, Any] = {"step": 0, "train_return": None}
            if call > 0:
                runner, metrics = chunk_compiled(runner)
                steps += per_call * config.steps_per_update
                record = chunk_record(metrics, steps)
            record["seconds"] = time.perf_counter() - train_start
            record["steps_per_second"] = steps / max(record["seconds"], 1e-9)
            if steps >= next_eval or call == num_calls:
                final = evaluate(runner.params)
                record.update(eval_return=final["mean_return"], eval_ci95=final["ci95"])
                if final["win_rate"] is not None:
                    record["eval_win_rate"] = final["win_rate"]
                evaluations.append((steps, final["mean_return"]))
                next_eval = steps + config.eval_every
                if final["mean_return"] > best_return:
                    best_return = final["mean_return"]
                    save_checkpoint(out / "best", policy, runner.params, force=True, extra={
                        "training": {**training_meta, "step": steps, "eval": final}})
            records.append(record)
            metrics_file.write(json.dumps(record) + "\n")
            metrics_file.flush()
            if on_progress is not None:
                on_progress({**record, "total_steps": total_steps})

    train_curve = [(r["step"], r["train_return"]) for r in records
                   if r.get("train_return") is not None]
    report = convergence_report(evaluations, steps, train_curve)
    report.update({"total_steps": steps, "train_seconds": time.perf_counter() - train_start,
                   "compile_seconds": compile_seconds, "best_eval_return": best_return,
                   "final_eval": final})
    save_checkpoint(out / "last", policy, runner.params, force=True, extra={
        "training": {**training_meta, "step": steps, "eval": final, "convergence": report}})
    (out / "convergence.json").write_text(json.dumps(report, indent=2) + "\n")
    plot_learning_curve(records, f"{config.algorithm.upper()} on {task_name}",
                        out / "learning_curve.png")
    return report


def chunk_record(metrics: Metrics, steps: int) -> dict[str, Any]:
    """One metrics.jsonl line from the stacked metrics of a chunk of updates."""
    episodes = float(metrics.episodes.sum())
    return {
        "step": steps,
        "train_return": (float(metrics.episode_return_sum.sum()) / episodes
                         if episodes else None),
        "episodes": int(episodes),
        "policy_loss": float(metrics.policy_loss.mean()),
        "value_loss": float(metrics.value_loss.mean()),
        "entropy": float(metrics.entropy.mean()),
        "approx_kl": float(metrics.approx_kl.mean()),
    }
