"""The training outer loop that PPO (IPPO/MAPPO) and COMPASS training share.

A trainer supplies a compiled `advance(runner) -> (runner, fields)` that runs one jitted chunk of
updates, and an `evaluate(params) -> summary` on the fixed test instances; `run_loop` owns the
rest: `metrics.jsonl` (one line per chunk, flushed), greedy evaluations every `eval_every`
environment steps and at the end, the `best/` checkpoint at the best evaluation, the `last/`
checkpoint, the convergence report and the learning curve.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ceiling.errors import CeilingError
from ceiling.policies.checkpoint import save_checkpoint
from ceiling.policies.networks import Params, Policy
from ceiling.training.convergence import convergence_report

STANDARD_SUMMARY = ("mean_return", "ci95", "win_rate", "num_instances")


@dataclasses.dataclass(frozen=True)
class Loop:
    """What a trainer tells the outer loop."""

    policy: Policy
    advance: Callable[[Any], tuple[Any, dict[str, Any]]]  # one chunk: metrics fields
    params: Callable[[Any], Params]  # the parameters inside a runner
    evaluate: Callable[[Params], dict[str, Any]]  # `summarise`-style dict, extras allowed
    num_calls: int  # chunks to run
    steps_per_call: int  # environment steps one chunk simulates
    eval_every: int  # environment steps between evaluations
    initial: dict[str, Any]  # fields of the record before training (step 0)
    train_curve: str  # the record field the convergence report reads as training return
    plot: Callable[[list[dict[str, Any]], Path], None]  # the learning curve
    meta: dict[str, Any]  # recorded under "training" in every checkpoint's manifest


def prepare_run_dir(out: Path, force: bool) -> None:
    if out.exists():
        if not force:
            raise CeilingError(f"run directory {out} already exists; pass --force to replace it")
        shutil.rmtree(out)
    out.mkdir(parents=True)


def eval_fields(summary: dict[str, Any]) -> dict[str, Any]:
    """A record's evaluation fields: return, CI, win rate, and `eval_<extra>` for the rest."""
    fields = {"eval_return": summary["mean_return"], "eval_ci95": summary["ci95"]}
    if summary.get("win_rate") is not None:
        fields["eval_win_rate"] = summary["win_rate"]
    fields.update({f"eval_{k}": v for k, v in summary.items() if k not in STANDARD_SUMMARY})
    return fields


def run_loop(
    loop: Loop,
    runner: Any,
    out: Path,
    compile_seconds: float,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train for `loop.num_calls` chunks, writing everything into `out`; returns the final
    runner and the convergence report (also written to `convergence.json`)."""
    total_steps = loop.num_calls * loop.steps_per_call
    records: list[dict[str, Any]] = []
    evaluations: list[tuple[int, float]] = []
    best_return = -math.inf
    next_eval = steps = 0
    final: dict[str, Any] = {}
    start = time.perf_counter()
    with (out / "metrics.jsonl").open("w") as metrics_file:
        for call in range(loop.num_calls + 1):
            record: dict[str, Any] = {"step": 0, **loop.initial}
            if call > 0:
                runner, fields = loop.advance(runner)
                steps += loop.steps_per_call
                record = {"step": steps, **fields}
            record["seconds"] = time.perf_counter() - start
            record["steps_per_second"] = steps / max(record["seconds"], 1e-9)
            if steps >= next_eval or call == loop.num_calls:
                params = loop.params(runner)
                final = loop.evaluate(params)
                record.update(eval_fields(final))
                evaluations.append((steps, final["mean_return"]))
                next_eval = steps + loop.eval_every
                if final["mean_return"] > best_return:
                    best_return = final["mean_return"]
                    save_checkpoint(out / "best", loop.policy, params, force=True, extra={
                        "training": {**loop.meta, "step": steps, "eval": final}})
            records.append(record)
            metrics_file.write(json.dumps(record) + "\n")
            metrics_file.flush()
            if on_progress is not None:
                on_progress({**record, "total_steps": total_steps})

    curve = [(r["step"], r[loop.train_curve]) for r in records
             if r.get(loop.train_curve) is not None]
    report = convergence_report(evaluations, steps, curve)
    report.update({"total_steps": steps, "train_seconds": time.perf_counter() - start,
                   "compile_seconds": compile_seconds, "best_eval_return": best_return,
                   "final_eval": final})
    save_checkpoint(out / "last", loop.policy, loop.params(runner), force=True, extra={
        "training": {**loop.meta, "step": steps, "eval": final, "convergence": report}})
    (out / "convergence.json").write_text(json.dumps(report, indent=2) + "\n")
    loop.plot(records, out / "learning_curve.png")
    return runner, report
