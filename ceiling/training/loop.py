"""The training outer loop that PPO (IPPO/MAPPO) and COMPASS training share.

A trainer supplies a compiled `advance(runner) -> (runner, fields)` that runs one jitted chunk of
updates, and an `evaluate(params) -> summary` on the fixed test instances; `run_loop` owns the
rest: `metrics.jsonl` (one line per chunk, flushed), greedy evaluations every `eval_every`
environment steps and at the end, the `best/` checkpoint at the best evaluation, the `last/`
checkpoint, the convergence report and the learning curve.

Runs are resumable. After every evaluation, and at least every `SAVE_EVERY_SECONDS`, the loop
writes the whole runner (parameters, optimiser state, environments, random key) and its own
counters to `resume/` in the run directory, atomically; `run_loop(..., resume=True)` restores
them, drops any `metrics.jsonl` lines written after that save, and carries on. SIGTERM stops a
run cleanly: the loop finishes its current chunk, writes the resume state and raises
`KeyboardInterrupt`, so nothing is lost (the CLI then says how to continue). Every random
draw lives in the runner, so an interrupted and resumed run ends with exactly the parameters of
an uninterrupted one. `resume/` is removed once the run has finished.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jax
import numpy as np
import yaml

from ceiling.errors import CeilingError
from ceiling.policies.checkpoint import save_checkpoint
from ceiling.policies.networks import Params, Policy
from ceiling.training.config import FIELDS
from ceiling.training.convergence import convergence_report, read_metrics

STANDARD_SUMMARY = ("mean_return", "ci95", "win_rate", "num_instances")
RESUME_DIR = "resume"  # inside a run directory: the state an interrupted run restarts from
SAVE_EVERY_SECONDS = 60.0  # resume state written at least this often (and at every evaluation)


@dataclasses.dataclass(frozen=True)
class Loop:
    """What a trainer tells the outer loop."""

    policy: Policy
    advance: Callable[[Any, int], tuple[Any, dict[str, Any]]]  # (runner, chunk number 1..)
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
            raise CeilingError(f"run directory {out} already exists; pass --force to replace "
                               "it, or --resume to continue it")
        shutil.rmtree(out)
    out.mkdir(parents=True)


def start_run_dir(out: Path, header: dict[str, Any], force: bool, resume: bool) -> None:
    """Create run directory `out` with `config.yaml` = `header`, or, with `resume`, check that
    the existing one was started with exactly this header."""
    if not resume:
        prepare_run_dir(out, force)
        (out / "config.yaml").write_text(yaml.safe_dump(header, sort_keys=False))
        return
    if force:
        raise CeilingError("--resume continues a run and --force replaces it: pass one")
    path = out / "config.yaml"
    if not path.exists():
        raise CeilingError(f"cannot resume {out}: no run was started there ({path} is missing)")
    stored = yaml.safe_load(path.read_text())
    wanted = yaml.safe_load(yaml.safe_dump(header, sort_keys=False))
    defaults = _field_defaults()
    differ = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k)
                    and not (k not in stored and k in defaults and wanted[k] == defaults[k]))
    if differ:
        raise CeilingError(f"cannot resume {out} with a different configuration; differing "
                           "fields: " + ", ".join(f"{k} (run: {stored.get(k)!r}, now: "
                                                  f"{wanted.get(k)!r})" for k in differ))


def _field_defaults() -> dict[str, Any]:
    """The training config's defaults, as its `config.yaml` writes them. A field added after a
    run was started is missing from that run's file; its default is what the code did before
    the field existed (every new field is added so), so a run at that default resumes."""
    fields = {name: f.default for name, f in FIELDS.items()
              if f.default is not dataclasses.MISSING}
    return yaml.safe_load(yaml.safe_dump(fields))


def eval_fields(summary: dict[str, Any]) -> dict[str, Any]:
    """A record's evaluation fields: return, CI, win rate, and `eval_<extra>` for the rest."""
    fields = {"eval_return": summary["mean_return"], "eval_ci95": summary["ci95"]}
    if summary.get("win_rate") is not None:
        fields["eval_win_rate"] = summary["win_rate"]
    fields.update({f"eval_{k}": v for k, v in summary.items() if k not in STANDARD_SUMMARY})
    return fields


def save_resume_state(out: Path, runner: Any, counters: dict[str, Any]) -> None:
    """Write the runner's leaves and the loop's counters to `out/resume/`, atomically."""
    target = out / RESUME_DIR
    tmp = out / f".{RESUME_DIR}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    leaves = jax.tree_util.tree_leaves(runner)
    np.savez(tmp / "runner.npz", *[np.asarray(leaf) for leaf in leaves])
    (tmp / "counters.json").write_text(json.dumps(counters))
    old = out / f".{RESUME_DIR}.old"
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    if old.exists():
        shutil.rmtree(old)


def load_resume_state(out: Path, template: Any) -> tuple[Any, dict[str, Any]]:
    """The runner and counters saved by `save_resume_state`; `template` gives the structure."""
    source = out / RESUME_DIR
    if not (source / "counters.json").exists():
        if (out / "convergence.json").exists():
            raise CeilingError(f"run {out} has already finished; nothing to resume")
        raise CeilingError(f"run {out} has no resume state ({source} is missing): it stopped "
                           "before its first save; start it again with --force")
    counters = json.loads((source / "counters.json").read_text())
    leaves, treedef = jax.tree_util.tree_flatten(template)
    with np.load(source / "runner.npz") as saved:
        stored = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    if len(stored) != len(leaves) or any(
            a.shape != np.shape(b) or a.dtype != np.asarray(b).dtype
            for a, b in zip(stored, leaves, strict=True)):
        raise CeilingError(f"the resume state in {source} does not match this run's "
                           "configuration (different network, environments or trainer version)")
    return jax.tree_util.tree_unflatten(treedef, [jax.numpy.asarray(a) for a in stored]), counters


@contextmanager
def stop_requests() -> Iterator[list[int]]:
    """While open, SIGTERM appends its signal number to the yielded list instead of killing the
    process (main thread only; elsewhere the list stays empty and SIGTERM keeps its handler)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def _rewrite_metrics(path: Path, records: list[dict[str, Any]]) -> None:
    """Make `path` hold exactly `records` (the lines up to the resume point; none for a new
    run), atomically and on disk before training goes on: a run killed during its first chunk
    after a resume (SIGKILL, a session's end) must not lose the lines it resumed with."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as lines:
        lines.writelines(json.dumps(record) + "\n" for record in records)
        lines.flush()
        os.fsync(lines.fileno())
    os.replace(tmp, path)


def run_loop(
    loop: Loop,
    runner: Any,
    out: Path,
    compile_seconds: float,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    resume: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Train for `loop.num_calls` chunks, writing everything into `out`; returns the final
    runner and the convergence report (also written to `convergence.json`). With `resume`,
    continue from the state in `out/resume/` (`runner` then only gives its structure)."""
    total_steps = loop.num_calls * loop.steps_per_call
    records: list[dict[str, Any]] = []
    evaluations: list[tuple[int, float]] = []
    best_return = -math.inf
    next_eval = steps = first_call = 0
    elapsed = 0.0
    final: dict[str, Any] = {}
    if resume:
        runner, counters = load_resume_state(out, runner)
        if (counters["num_calls"], counters["steps_per_call"]) != (loop.num_calls,
                                                                   loop.steps_per_call):
            raise CeilingError(f"the resume state in {out / RESUME_DIR} is for "
                               f"{counters['num_calls']} chunks of {counters['steps_per_call']} "
                               f"steps, this run has {loop.num_calls} of {loop.steps_per_call}")
        records = read_metrics(out)[: counters["records"]]
        evaluations = [tuple(e) for e in counters["evaluations"]]  # type: ignore[misc]
        best_return, next_eval = counters["best_return"], counters["next_eval"]
        steps, first_call, elapsed = counters["steps"], counters["call"] + 1, counters["elapsed"]
        final = counters["final"]
    start = time.perf_counter() - elapsed
    last_save = time.perf_counter()
    _rewrite_metrics(out / "metrics.jsonl", records)
    with (out / "metrics.jsonl").open("a") as metrics_file, stop_requests() as stop:
        for call in range(first_call, loop.num_calls + 1):
            record: dict[str, Any] = {"step": 0, **loop.initial}
            if call > 0:
                runner, fields = loop.advance(runner, call)
                steps += loop.steps_per_call
                record = {"step": steps, **fields}
            record["seconds"] = time.perf_counter() - start
            record["steps_per_second"] = steps / max(record["seconds"], 1e-9)
            evaluated = steps >= next_eval or call == loop.num_calls
            if evaluated:
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
            if call < loop.num_calls and (
                    evaluated or stop or time.perf_counter() - last_save >= SAVE_EVERY_SECONDS):
                save_resume_state(out, runner, {
                    "call": call, "steps": steps, "records": len(records),
                    "evaluations": evaluations, "best_return": best_return,
                    "next_eval": next_eval, "elapsed": time.perf_counter() - start,
                    "final": final, "num_calls": loop.num_calls,
                    "steps_per_call": loop.steps_per_call})
                last_save = time.perf_counter()
            if on_progress is not None:
                on_progress({**record, "total_steps": total_steps})
            if stop and call < loop.num_calls:
                raise KeyboardInterrupt(f"SIGTERM at {steps:,} steps; resume state saved")

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
    shutil.rmtree(out / RESUME_DIR, ignore_errors=True)
    return runner, report
