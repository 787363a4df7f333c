"""Environment throughput with random actions versus IPPO training throughput, in one run.

For each task (by default one per family) at `--num-envs` parallel environments, this measures
two jitted programs that do the same environment work: `rollout_length` steps of
`jax.vmap(task.step)` with uniformly random legal actions and the trainer's automatic reset of
finished environments (raw throughput), and one full IPPO update from `ceiling.training.ppo`
(rollout, GAE, 4 epochs x 4 minibatches; training throughput). Both count environment steps
(one joint action in one environment). Each program is compiled and run once untimed, then
the two are timed alternately `--repeats` times so that drift in machine load hits both
alike; the table reports the median of each and the ratio training / raw, the figure to watch.
The target is a ratio of at least 40 % on `rware:tiny-2ag` at 256 environments.

A second table sets SABLE (`ceiling.training.sable`, the paper's network: 1 block, embedding
64, 1 head) beside MAPPO (the shipped (128, 128) MLP) on the same tasks: training steps/s of one
full update of each, and search rollouts/s of one `sampling` batch of `--search-width` attempts
of each (random-init networks; a rollout is one whole episode). Their programs are timed
alternately too. SABLE acts agent by agent, so its search rate is the figure to watch; the
target is at least half MAPPO's on 4-agent tasks (`rware:tiny-4ag-hard`). `--no-sable` skips
the table.

Run from the repository root:

    python benchmarks/throughput.py
    python benchmarks/throughput.py --tasks rware:tiny-2ag --num-envs 16 --repeats 2
    python benchmarks/throughput.py --tasks rware:tiny-4ag-hard --num-envs 64 --search-width 64
    python benchmarks/throughput.py --json throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

import ceiling
from ceiling.errors import CeilingError
from ceiling.policies.joint import sample_action
from ceiling.policies.networks import NetworkConfig, Policy, make_policy
from ceiling.search import instance_key, make_strategy, search_key
from ceiling.tasks import Task, TaskState, TimeStep, make
from ceiling.training.config import PPOConfig
from ceiling.training.ppo import init_runner, make_train_chunk, step_with_reset
from ceiling.training.sable import make_sable_update, sable_network

DEFAULT_TASKS = ("rware:tiny-2ag", "connector:con-5x5x3a", "smax:3m")
TARGET_TASK = "rware:tiny-2ag"
TARGET_RATIO = 0.40  # training throughput as a fraction of random-action throughput
TARGET_NUM_ENVS = 256  # the environment count the target is stated at
SABLE_SEARCH_TARGET = 0.5  # SABLE search rollouts/s as a fraction of MAPPO's, 4-agent tasks
SEARCH_STRATEGY = "sampling"


class RandomCarry(NamedTuple):
    """The state a random-action rollout carries: the environment part of a `Runner`."""

    env_state: TaskState  # [E] batched
    timestep: TimeStep  # [E] batched
    key: jax.Array


class Timing(NamedTuple):
    compile_seconds: float
    call_seconds: list[float]  # one entry per timed call
    steps_per_call: int

    @property
    def steps_per_second(self) -> float:
        return self.steps_per_call / statistics.median(self.call_seconds)


def make_random_rollout(
    task: Task, num_envs: int, rollout_length: int
) -> Callable[[RandomCarry], RandomCarry]:
    """A jitted function stepping [E] environments `rollout_length` times with random actions.

    The environment work mirrors the trainer's `env_step`: the same key split, `vmap` of
    `task.step`, and a `lax.cond` that resets only the finished environments to fresh training
    instances, so the two measurements differ only by the policy and the learning.
    """

    def env_step(carry: RandomCarry, _: None) -> tuple[RandomCarry, None]:
        key, action_key, reset_key = jax.random.split(carry.key, 3)
        # Zero logits on legal actions, -inf elsewhere: uniform over the legal actions.
        uniform_logits = jnp.where(carry.timestep.action_mask, 0.0, -jnp.inf)
        action = sample_action(action_key, uniform_logits)
        env_state, _transition, carried_ts = step_with_reset(task, carry.env_state, action,
                                                             reset_key)
        return RandomCarry(env_state=env_state, timestep=carried_ts, key=key), None

    def rollout(carry: RandomCarry) -> RandomCarry:
        carry, _ = jax.lax.scan(env_step, carry, None, rollout_length)
        return carry

    return jax.jit(rollout)


def _compile(function: Any, argument: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    compiled = function.lower(argument).compile()
    return compiled, time.perf_counter() - start


def _timed(function: Callable[[Any], Any], argument: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = jax.block_until_ready(function(argument))
    return result, time.perf_counter() - start


def measure_task(
    task_name: str, num_envs: int, rollout_length: int, repeats: int, seed: int = 0
) -> dict[str, Any]:
    """Raw and training throughput of one task, timed alternately; a row of the report."""
    task = make(task_name)
    config = PPOConfig(num_envs=num_envs, rollout_length=rollout_length, seed=seed)
    config.validate()
    policy = Policy(
        task.spec, NetworkConfig(config.algorithm, config.hidden_sizes, config.activation)
    )
    # Both programs start from the same instances: the random rollout takes the runner's
    # environment part.
    runner = init_runner(task, policy, config, jax.random.PRNGKey(seed))
    carry = RandomCarry(env_state=runner.env_state, timestep=runner.timestep, key=runner.key)

    random_rollout, random_compile = _compile(
        make_random_rollout(task, num_envs, rollout_length), carry
    )
    train_chunk, train_compile = _compile(
        make_train_chunk(task, policy, config, num_updates=1), runner
    )
    carry, _ = _timed(random_rollout, carry)  # warm-up: first-call allocations
    (runner, _), _ = _timed(train_chunk, runner)

    random_seconds: list[float] = []
    train_seconds: list[float] = []
    for _ in range(repeats):
        carry, seconds = _timed(random_rollout, carry)
        random_seconds.append(seconds)
        (runner, _), seconds = _timed(train_chunk, runner)
        train_seconds.append(seconds)

    steps_per_call = config.steps_per_update  # num_envs * rollout_length in both programs
    raw = Timing(random_compile, random_seconds, steps_per_call)
    train = Timing(train_compile, train_seconds, steps_per_call)
    return {
        "task": task_name,
        "num_envs": num_envs,
        "rollout_length": rollout_length,
        "repeats": repeats,
        "raw_steps_per_second": raw.steps_per_second,
        "train_steps_per_second": train.steps_per_second,
        "ratio": train.steps_per_second / raw.steps_per_second,
        "raw_compile_seconds": raw.compile_seconds,
        "train_compile_seconds": train.compile_seconds,
        "raw_call_seconds": raw.call_seconds,
        "train_call_seconds": train.call_seconds,
    }


def measure_sable(
    task_name: str, num_envs: int, rollout_length: int, repeats: int, search_width: int,
    seed: int = 0, embed_dim: int = 64,
) -> dict[str, Any]:
    """MAPPO versus SABLE on one task: training steps/s (one full update each) and search
    rollouts/s (one `sampling` batch of `search_width` episodes each), timed alternately."""
    task = make(task_name)
    programs: dict[str, tuple[Any, Any, int]] = {}  # name -> (compiled, argument, units/call)
    compile_seconds: dict[str, float] = {}
    for algorithm in ("mappo", "sable"):
        config = PPOConfig(algorithm=algorithm, num_envs=num_envs, rollout_length=rollout_length,
                           seed=seed, architecture="sable" if algorithm == "sable" else "mlp",
                           embed_dim=embed_dim)
        config.validate()
        if algorithm == "sable":
            network, make_update = sable_network(config), make_sable_update
        else:
            network = NetworkConfig("mappo", config.hidden_sizes, config.activation)
            make_update = None
        policy = make_policy(task.spec, network)
        runner = init_runner(task, policy, config, jax.random.PRNGKey(seed))
        chunk, compile_seconds[f"{algorithm}_train"] = _compile(
            make_train_chunk(task, policy, config, num_updates=1, make=make_update), runner)
        programs[f"{algorithm}_train"] = (chunk, runner, config.steps_per_update)
        strategy = make_strategy(SEARCH_STRATEGY, task, policy, search_width)
        state = strategy.init(search_key(seed, task_name, 0), runner.params,
                              instance_key(task_name, 0))
        step, compile_seconds[f"{algorithm}_search"] = _compile(jax.jit(strategy.step), state)
        programs[f"{algorithm}_search"] = (step, state, strategy.rollouts_per_step)

    seconds: dict[str, list[float]] = {name: [] for name in programs}
    for round_ in range(repeats + 1):  # round 0 warms up: first-call allocations
        for name, (compiled, argument, units) in programs.items():
            result, elapsed = _timed(compiled, argument)
            programs[name] = (compiled, result[0] if name.endswith("_train") else result, units)
            if round_ > 0:
                seconds[name].append(elapsed)
    rates = {name: programs[name][2] / statistics.median(times)
             for name, times in seconds.items()}
    return {
        "task": task_name, "num_agents": task.spec.num_agents, "num_envs": num_envs,
        "rollout_length": rollout_length, "search_width": search_width, "repeats": repeats,
        "embed_dim": embed_dim,
        "mappo_train_steps_per_second": rates["mappo_train"],
        "sable_train_steps_per_second": rates["sable_train"],
        "train_ratio": rates["sable_train"] / rates["mappo_train"],
        "mappo_search_rollouts_per_second": rates["mappo_search"],
        "sable_search_rollouts_per_second": rates["sable_search"],
        "search_ratio": rates["sable_search"] / rates["mappo_search"],
        "compile_seconds": compile_seconds,
    }


def format_sable_report(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    first = rows[0]
    lines = ["", "", f"SABLE vs MAPPO: training steps/s (one update, {first['num_envs']} envs) "
             f"and search rollouts/s ({SEARCH_STRATEGY}, width {first['search_width']}; SABLE "
             f"embedding {first['embed_dim']}); median "
             f"of {first['repeats']} alternating calls, compile excluded", ""]
    header = (f"| {'task':<24} | {'agents':>6} | {'MAPPO train':>11} | {'SABLE train':>11} "
              f"| {'ratio':>6} | {'MAPPO search':>12} | {'SABLE search':>12} | {'ratio':>6} |")
    lines += [header, "|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|"]
    for row in rows:
        lines.append(
            f"| {row['task']:<24} | {row['num_agents']:>6} "
            f"| {row['mappo_train_steps_per_second']:>11,.0f} "
            f"| {row['sable_train_steps_per_second']:>11,.0f} | {row['train_ratio']:>6.2f} "
            f"| {row['mappo_search_rollouts_per_second']:>12,.1f} "
            f"| {row['sable_search_rollouts_per_second']:>12,.1f} "
            f"| {row['search_ratio']:>6.2f} |")
    for row in rows:
        if row["num_agents"] >= 4:
            verdict = "PASS" if row["search_ratio"] >= SABLE_SEARCH_TARGET else "FAIL"
            lines.append(f"\nSABLE search on {row['task']}: {verdict}: {row['search_ratio']:.2f} "
                         f"x MAPPO vs target >= {SABLE_SEARCH_TARGET}")
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    """What the figures depend on, printed with them so they can be pasted with context."""
    device = jax.devices()[0]
    argv = getattr(sys, "orig_argv", None) or ["python", *sys.argv]
    return {
        "command": shlex.join(argv),
        "ceiling": ceiling.__version__,
        "jax": jax.__version__,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "device": f"{device.device_kind} x{jax.device_count()}",
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "machine": platform.platform(),
    }


def target_verdict(row: dict[str, Any]) -> str:
    verdict = "PASS" if row["ratio"] >= TARGET_RATIO else "FAIL"
    text = f"{verdict}: {row['ratio']:.1%} vs target >= {TARGET_RATIO:.0%}"
    if row["num_envs"] != TARGET_NUM_ENVS:
        text += f" (measured at {row['num_envs']} envs; target is stated at {TARGET_NUM_ENVS})"
    return text


def format_report(env: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [f"{key}: {value}" for key, value in env.items()]
    if rows:
        lines.append(
            f"timing: median of {rows[0]['repeats']} alternating calls per program, "
            f"{rows[0]['rollout_length']} steps per environment per call; compile excluded"
        )
    lines.append("")
    header = (f"| {'task':<24} | {'envs':>5} | {'raw steps/s':>12} | {'training steps/s':>16} "
              f"| {'training / raw':>14} | {'compile raw / train (s)':>23} |")
    lines += [header, "|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|"]
    for row in rows:
        compile_text = f"{row['raw_compile_seconds']:.1f} / {row['train_compile_seconds']:.1f}"
        lines.append(
            f"| {row['task']:<24} | {row['num_envs']:>5} | {row['raw_steps_per_second']:>12,.0f} "
            f"| {row['train_steps_per_second']:>16,.0f} | {row['ratio']:>14.1%} "
            f"| {compile_text:>23} |"
        )
    for row in rows:
        if row["task"] == TARGET_TASK:
            lines += ["", f"target on {TARGET_TASK}: {target_verdict(row)}"]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Random-action vs IPPO training throughput per task, as a ratio."
    )
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS),
                        help=f"task names (default: {' '.join(DEFAULT_TASKS)})")
    parser.add_argument("--num-envs", type=int, default=TARGET_NUM_ENVS,
                        help="parallel environments (default: %(default)s); "
                             "must be divisible by 4, the number of minibatches")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed calls of each program after one warm-up (default: "
                             "%(default)s)")
    parser.add_argument("--rollout-length", type=int, default=128,
                        help="steps per environment per call (default: %(default)s)")
    parser.add_argument("--search-width", type=int, default=64,
                        help="parallel attempts of the SABLE vs MAPPO search batch "
                             "(default: %(default)s)")
    parser.add_argument("--embed-dim", type=int, default=64,
                        help="SABLE's embedding width (default: %(default)s, the paper's)")
    parser.add_argument("--no-sable", action="store_true",
                        help="skip the SABLE vs MAPPO table")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also write the environment and the rows to PATH as JSON")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.search_width < 1:
        parser.error(f"--search-width must be at least 1, got {args.search_width}")
    try:
        PPOConfig(num_envs=args.num_envs, rollout_length=args.rollout_length).validate()
        for name in args.tasks:
            make(name)
    except CeilingError as err:
        parser.error(str(err))
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    env = environment()
    rows, sable_rows = [], []
    for name in args.tasks:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        rows.append(measure_task(name, args.num_envs, args.rollout_length, args.repeats))
        if not args.no_sable:
            sable_rows.append(measure_sable(name, args.num_envs, args.rollout_length,
                                            args.repeats, args.search_width,
                                            embed_dim=args.embed_dim))
    print(format_report(env, rows) + format_sable_report(sable_rows))
    if args.json is not None:
        args.json.write_text(json.dumps({"environment": env, "rows": rows,
                                         "sable_rows": sable_rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
