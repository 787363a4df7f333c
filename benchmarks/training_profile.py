"""Where IPPO training time goes: environment, policy in the rollout, and the PPO epochs.

`throughput.py` gives one ratio, training steps/s over random-action steps/s. This script
splits the training update into its parts, all measured side by side in one run (each
program compiled first, then all timed alternately `--repeats` times, medians reported):

- `raw`: the environments alone (random legal actions, the trainer's automatic reset);
- `update(E)`: one full IPPO update with E PPO epochs, for E in 1, 2 and 4 (the default).
  A straight line through these gives the cost of one epoch (the slope) and of everything
  that does not depend on the epochs (the intercept: the rollout with the actor and critic
  forward passes, plus GAE);
- `gradient`: the pure network work of one epoch, measured alone: the PPO loss and its
  gradient on the same number of samples, split into the same minibatches, plus the Adam
  updates, with no environment in the program.

If the measured epoch cost is close to `gradient`, the epochs carry no overhead beyond the
network arithmetic they must do; the intercept minus `raw` is what acting with the policy
adds to the rollout. The shares of a default (4-epoch) update are printed per task.

Run from the repository root:

    python benchmarks/training_profile.py
    python benchmarks/training_profile.py --tasks connector:con-5x5x3a --num-envs 64 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import (  # noqa: E402  (the sibling benchmark: its raw program and report header)
    RandomCarry,
    environment,
    make_random_rollout,
)

from ceiling.policies.networks import NetworkConfig, make_policy  # noqa: E402
from ceiling.policies.ppo import ppo_epochs, ppo_loss  # noqa: E402
from ceiling.tasks import make  # noqa: E402
from ceiling.training.config import PPOConfig  # noqa: E402
from ceiling.training.ppo import init_runner, make_optimizer, make_train_chunk  # noqa: E402

DEFAULT_TASKS = ("connector:con-5x5x3a", "smax:3m", "rware:tiny-4ag-hard",
                 "connector:con-10x10x10a", "smax:smacv2_5_units")
EPOCHS = (1, 2, 4)


def make_gradient_epoch(policy: Any, config: PPOConfig, batch: Any) -> Any:
    """One PPO epoch of minibatch gradients and Adam steps on a fixed rollout `batch`."""
    optimizer = make_optimizer(config)

    def loss(params: Any, indices: jax.Array) -> Any:
        take = lambda x: x[:, indices]  # noqa: E731
        transitions, advantages, targets = batch
        return ppo_loss(policy, config, params, jax.tree_util.tree_map(take, transitions),
                        take(advantages), take(targets))

    def epoch(carry: Any) -> Any:
        params, opt_state, key = carry
        key, sub = jax.random.split(key)
        params, opt_state, _ = ppo_epochs(loss, optimizer, params, opt_state, sub,
                                          config.num_envs, 1, config.num_minibatches)
        return params, opt_state, key

    return jax.jit(epoch)


def fake_batch(task: Any, policy: Any, config: PPOConfig, runner: Any) -> Any:
    """A rollout-shaped batch [T, E, ...] built from the runner's current timesteps."""
    from ceiling.policies.rollout import Transition

    ts = runner.timestep
    length = config.rollout_length
    tile = lambda x: jax.numpy.broadcast_to(x, (length, *x.shape))  # noqa: E731
    agents = task.spec.num_agents
    zeros = jax.numpy.zeros((length, config.num_envs, agents), jax.numpy.float32)
    transitions = Transition(
        observation=tile(ts.observation), action_mask=tile(ts.action_mask),
        global_state=tile(ts.global_state),
        action=jax.numpy.argmax(tile(ts.action_mask), -1).astype(jax.numpy.int32),
        log_prob=zeros - 1.0, value=zeros, reward=zeros[..., 0], done=zeros[..., 0] > 0,
    )
    return transitions, zeros + 0.1, zeros


def timed(function: Any, argument: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = jax.block_until_ready(function(argument))
    return result, time.perf_counter() - start


def profile_task(name: str, num_envs: int, repeats: int) -> dict[str, Any]:
    task = make(name)
    base = PPOConfig(num_envs=num_envs)
    policy = make_policy(task.spec, NetworkConfig(base.algorithm, base.hidden_sizes,
                                                  base.activation))
    runner = init_runner(task, policy, base, jax.random.PRNGKey(0))
    programs: dict[str, tuple[Any, Any]] = {
        "raw": (make_random_rollout(task, num_envs, base.rollout_length),
                RandomCarry(runner.env_state, runner.timestep, runner.key)),
    }
    for epochs in EPOCHS:
        config = PPOConfig(num_envs=num_envs, num_epochs=epochs)
        programs[f"update({epochs})"] = (make_train_chunk(task, policy, config, 1), runner)
    batch = fake_batch(task, policy, base, runner)
    programs["gradient"] = (make_gradient_epoch(policy, base, batch),
                            (runner.params, runner.opt_state, runner.key))

    compiled = {k: (f.lower(arg).compile(), arg) for k, (f, arg) in programs.items()}
    state = {k: timed(f, arg)[0] for k, (f, arg) in compiled.items()}  # warm-up
    seconds: dict[str, list[float]] = {k: [] for k in compiled}
    for _ in range(repeats):
        for k, (f, _arg) in compiled.items():
            out, s = timed(f, state[k] if k in ("raw", "gradient") else compiled[k][1])
            if k in ("raw", "gradient"):
                state[k] = out
            seconds[k].append(s)
    median = {k: statistics.median(v) for k, v in seconds.items()}
    slope, intercept = np.polyfit(EPOCHS, [median[f"update({e})"] for e in EPOCHS], 1)
    total = median[f"update({base.num_epochs})"]
    steps = base.steps_per_update
    return {
        "task": name, "num_envs": num_envs, "seconds": median,
        "raw_steps_per_second": steps / median["raw"],
        "train_steps_per_second": steps / total,
        "ratio": median["raw"] / total,
        "share_environment": median["raw"] / total,
        "share_policy_in_rollout": (intercept - median["raw"]) / total,
        "share_epochs": base.num_epochs * slope / total,
        "epoch_seconds": slope, "gradient_epoch_seconds": median["gradient"],
    }


def format_rows(rows: list[dict[str, Any]], repeats: int) -> str:
    lines = [f"timing: median of {repeats} alternating calls per program; one update = "
             "128 steps x envs; shares are of a default 4-epoch update", "",
             "| task | envs | raw steps/s | training steps/s | training / raw | environment | "
             "policy in rollout (+GAE) | 4 PPO epochs | one epoch: measured / pure gradient |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['num_envs']} | {r['raw_steps_per_second']:,.0f} | "
            f"{r['train_steps_per_second']:,.0f} | {r['ratio']:.1%} | "
            f"{r['share_environment']:.0%} | {r['share_policy_in_rollout']:.0%} | "
            f"{r['share_epochs']:.0%} | {r['epoch_seconds']:.3f} s / "
            f"{r['gradient_epoch_seconds']:.3f} s |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS))
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.num_envs % 4:
        parser.error("--repeats must be >= 1 and --num-envs divisible by 4")
    for key, value in environment().items():
        print(f"{key}: {value}")
    rows = []
    for name in args.tasks:
        print(f"profiling {name} ...", file=sys.stderr, flush=True)
        rows.append(profile_task(name, args.num_envs, args.repeats))
    print(format_rows(rows, args.repeats))


if __name__ == "__main__":
    main()
