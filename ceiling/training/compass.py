"""COMPASS training: specialise the latents of a conditioned policy, winner takes all.

Starting from a converged IPPO/MAPPO checkpoint, `condition` adds a latent input that starts at
zero (the policy acts exactly like its base for every latent). Each update then:

1. draws `num_envs` training instances and `num_latents` latents per instance from the prior;
2. scores every (instance, latent) pair by one arg-max rollout, the way `compass` search will
   score candidates at inference;
3. per instance keeps only the best latent (winner takes all, as in Poppy and COMPASS), plays
   one stochastic rollout of the policy with that latent, and takes the base algorithm's PPO
   steps on those rollouts alone.

Only winners are trained, so a latent improves on the instances where it already is the best,
and different regions of the latent space drift towards different kinds of instances: that
spread is what search in the latent space exploits. The spread of greedy returns across latents
per instance, and best-latent against mean-latent return, are logged at every update.

Advantages come from the base checkpoint's critic through GAE (the critic keeps training on the
winners' rollouts). The alternative, Monte-Carlo returns with the other latents' mean as the
baseline (Poppy's choice), would need a stochastic rollout of every latent to be unbiased; the
critic of a converged policy is a far lower-variance baseline, and the winners' policy starts
out identical to the policy that critic was trained on.

The selection rollouts are arg-max and the trained rollout is sampled: selecting on sampled
returns would reward lucky action noise rather than the latent, and PPO needs on-policy
samples with their log-probabilities.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import yaml

from ceiling.errors import CeilingError
from ceiling.policies.checkpoint import Checkpoint
from ceiling.policies.latent import sample_prior
from ceiling.policies.networks import Params, Policy, condition
from ceiling.policies.ppo import gae, ppo_epochs, ppo_loss
from ceiling.policies.rollout import Transition, record_episode, run_episode, summarise
from ceiling.tasks import Task, instances, make
from ceiling.tasks.instances import train_keys
from ceiling.training.config import PPOConfig
from ceiling.training.loop import Loop, prepare_run_dir, run_loop
from ceiling.training.ppo import make_optimizer

EVAL_KEY = 0  # the evaluation latents are the same at every evaluation and in every run


class CompassRunner(NamedTuple):
    params: Params
    opt_state: optax.OptState
    key: jax.Array


class CompassMetrics(NamedTuple):
    train_return: jax.Array  # mean return of the winners' sampled rollouts
    best_latent_return: jax.Array  # mean over instances of the best latent's greedy return
    mean_latent_return: jax.Array  # mean greedy return over all latents and instances
    latent_spread: jax.Array  # mean over instances of the std of greedy returns over latents
    latent_range: jax.Array  # mean over instances of (best - worst) latent greedy return
    policy_loss: jax.Array
    value_loss: jax.Array
    entropy: jax.Array
    approx_kl: jax.Array


def steps_per_update(config: PPOConfig, task: Task) -> int:
    """Simulated environment steps per update: every latent's scoring rollout plus the
    winners' rollouts, each a fixed `horizon` scan."""
    return config.num_envs * (config.num_latents + 1) * task.spec.horizon


def num_compass_updates(config: PPOConfig, task: Task) -> int:
    return max(1, config.total_steps // steps_per_update(config, task))


def greedy_latent_returns(
    task: Task, policy: Policy, params: Params, instance_keys: jax.Array, latents: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Arg-max returns and win flags [N, L] of latents [N, L, d] on instances [N, 2]."""

    def per_instance(instance_key: jax.Array, zs: jax.Array) -> tuple[jax.Array, jax.Array]:
        episodes = jax.vmap(lambda z: run_episode(
            task, policy, params, instance_key, instance_key, greedy=True, latent=z))(zs)
        return episodes.total_return, episodes.won

    return jax.vmap(per_instance)(instance_keys, latents)


def winners_take_all(returns: jax.Array, latents: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The best latent per instance: indices [N] (first wins ties) and latents [N, d]."""
    winner = jnp.argmax(returns, axis=1)
    return winner, latents[jnp.arange(latents.shape[0]), winner]


def select_and_record(
    task: Task,
    policy: Policy,
    params: Params,
    instance_keys: jax.Array,
    latents: jax.Array,
    key: jax.Array,
) -> tuple[jax.Array, jax.Array, Any, Transition, jax.Array]:
    """Winner takes all: score latents [E, L, d] greedily, keep the best per instance, and
    record one sampled rollout of each winner; only those rollouts reach the loss.

    Returns the chosen latents [E, d], all greedy returns [E, L], the winners' episodes [E],
    their transitions time-major [T, E, ...] and the live mask [T, E].
    """
    returns, _ = greedy_latent_returns(task, policy, params, instance_keys, latents)
    _, chosen = winners_take_all(returns, latents)
    episodes, trajectories = jax.vmap(
        lambda ik, k, z: record_episode(task, policy, params, ik, k, 1.0, z)
    )(instance_keys, jax.random.split(key, instance_keys.shape[0]), chosen)
    batch = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), trajectories.transitions)
    return chosen, returns, episodes, batch, trajectories.live.T


def make_compass_update(
    task: Task, policy: Policy, config: PPOConfig, num_updates: int
) -> Callable[[CompassRunner], tuple[CompassRunner, CompassMetrics]]:
    optimizer = make_optimizer(config, num_updates)
    num_envs, num_latents = config.num_envs, config.num_latents

    def update(runner: CompassRunner) -> tuple[CompassRunner, CompassMetrics]:
        key, instance_key, latent_key, record_key, epoch_key = jax.random.split(runner.key, 5)
        instance_keys = train_keys(instance_key, num_envs)
        latents = sample_prior(latent_key, (num_envs, num_latents, policy.config.latent_dim))
        chosen, returns, episodes, batch, live = select_and_record(
            task, policy, runner.params, instance_keys, latents, record_key)
        # Every episode has ended by the horizon, so no bootstrap value is needed.
        advantages, targets = gae(batch, jnp.zeros_like(batch.value[0]), config.gamma,
                                  config.gae_lambda)

        def loss(params: Params, indices: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
            take = lambda x: x[:, indices]  # noqa: E731  (environments; time kept whole)
            return ppo_loss(policy, config, params, jax.tree_util.tree_map(take, batch),
                            take(advantages), take(targets), live=take(live),
                            latent=chosen[indices])

        params, opt_state, aux = ppo_epochs(
            loss, optimizer, runner.params, runner.opt_state, epoch_key, num_envs,
            config.num_epochs, config.num_minibatches)
        policy_loss, value_loss, entropy, approx_kl = (x.mean() for x in aux)
        metrics = CompassMetrics(
            train_return=episodes.total_return.mean(),
            best_latent_return=returns.max(axis=1).mean(),
            mean_latent_return=returns.mean(),
            latent_spread=returns.std(axis=1).mean(),
            latent_range=(returns.max(axis=1) - returns.min(axis=1)).mean(),
            policy_loss=policy_loss, value_loss=value_loss, entropy=entropy,
            approx_kl=approx_kl,
        )
        return CompassRunner(params, opt_state, key), metrics

    return update


def compass_policy(
    base: Checkpoint, config: PPOConfig, key: jax.Array
) -> tuple[Policy, Params]:
    """The conditioned policy to train: a base checkpoint conditioned afresh, or a COMPASS
    checkpoint whose latent size matches the config (training goes on from it)."""
    network = base.policy.config
    if network.conditioned:
        if network.latent_dim != config.latent_dim:
            raise CeilingError(
                f"checkpoint {base.path} has latent size {network.latent_dim}, but the config "
                f"asks for latent_dim {config.latent_dim}; set latent_dim={network.latent_dim} "
                "or start from an unconditioned IPPO/MAPPO checkpoint")
        return base.policy, base.params
    return condition(base.policy, base.params, config.latent_dim, key, config.latent_rank)


def make_evaluate(
    task: Task, policy: Policy, test_keys: jax.Array, latents: jax.Array
) -> Callable[[Params], dict[str, Any]]:
    """Greedy test returns: the best of the fixed evaluation latents per instance (what a
    search over those latents would return), the mean over latents, and the prior's centre."""

    @jax.jit
    def returns(params: Params) -> tuple[jax.Array, jax.Array, jax.Array]:
        per_instance = jnp.broadcast_to(latents, (test_keys.shape[0], *latents.shape))
        totals, wins = greedy_latent_returns(task, policy, params, test_keys, per_instance)
        zero = jnp.zeros((test_keys.shape[0], 1, latents.shape[-1]))
        zero_totals, _ = greedy_latent_returns(task, policy, params, test_keys, zero)
        return totals, wins, zero_totals[:, 0]

    def evaluate(params: Params) -> dict[str, Any]:
        totals, wins, zero_totals = (np.asarray(x) for x in returns(params))
        best = totals.argmax(axis=1)
        rows = np.arange(totals.shape[0])
        summary = summarise(totals[rows, best],
                            wins[rows, best] if task.spec.has_win else None)
        summary["zero_latent_return"] = float(zero_totals.mean())
        summary["mean_latent_return"] = float(totals.mean())
        return summary

    return evaluate


def plot_compass_curve(records: list[dict[str, Any]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, spread_ax) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110)
    train = [r for r in records if "best_latent_return" in r]
    if train:
        steps = [r["step"] for r in train]
        for field, label in (("best_latent_return", "best latent per instance (greedy)"),
                             ("mean_latent_return", "mean over latents (greedy)"),
                             ("train_return", "winners, sampled actions")):
            ax.plot(steps, [r[field] for r in train], label=label, alpha=0.8)
        spread_ax.plot(steps, [r["latent_spread"] for r in train], label="std over latents")
        spread_ax.plot(steps, [r["latent_range"] for r in train], label="best - worst latent")
    evals = [r for r in records if "eval_return" in r]
    if evals:
        ax.plot([r["step"] for r in evals], [r["eval_return"] for r in evals], "o-",
                markersize=3, label="test: best of eval latents")
        ax.plot([r["step"] for r in evals], [r["eval_zero_latent_return"] for r in evals],
                "s--", markersize=3, label="test: z = 0")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("simulated environment steps")
    ax.set_ylabel("team return (lines: training instances; markers: test)")
    spread_ax.set_title("latent specialisation: spread of greedy returns per instance",
                        fontsize=9)
    spread_ax.set_xlabel("simulated environment steps")
    for axis in (ax, spread_ax):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def train_compass(
    task_name: str,
    config: PPOConfig,
    base: Checkpoint,
    out: str | Path,
    force: bool = False,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """COMPASS training from checkpoint `base` into run directory `out`; returns a summary."""
    config.validate()
    if config.algorithm != "compass":
        raise CeilingError(f"train_compass needs algorithm 'compass', got {config.algorithm!r}")
    if base.task_name != task_name:
        raise CeilingError(f"checkpoint {base.path} was trained for {base.task_name!r}, "
                           f"not {task_name!r}")
    task = make(task_name)
    out = Path(out)
    key = jax.random.PRNGKey(config.seed)
    key, condition_key = jax.random.split(key)
    policy, params = compass_policy(base, config, condition_key)
    prepare_run_dir(out, force)
    (out / "config.yaml").write_text(yaml.safe_dump(
        {"task": task_name, "from": str(base.path), "base_algorithm": policy.config.algorithm,
         **config.to_dict()}, sort_keys=False))

    num_updates = num_compass_updates(config, task)
    per_update = steps_per_update(config, task)
    optimizer = make_optimizer(config, num_updates)
    runner = CompassRunner(params, optimizer.init(params), key)
    update = jax.jit(make_compass_update(task, policy, config, num_updates))
    test_keys = instances(task_name, "test", config.eval_instances)
    eval_latents = sample_prior(jax.random.PRNGKey(EVAL_KEY),
                                (config.num_latents, policy.config.latent_dim))
    evaluate = make_evaluate(task, policy, test_keys, eval_latents)

    start = time.perf_counter()
    compiled = update.lower(runner).compile()
    compile_seconds = time.perf_counter() - start

    updates_done = [0]

    def advance(runner: CompassRunner) -> tuple[CompassRunner, dict[str, Any]]:
        runner, metrics = compiled(runner)
        updates_done[0] += 1
        return runner, {"update": updates_done[0],
                        **{k: float(v) for k, v in metrics._asdict().items()}}

    loop = Loop(
        policy=policy, advance=advance, params=lambda r: r.params, evaluate=evaluate,
        num_calls=num_updates, steps_per_call=per_update,
        eval_every=max(1, config.eval_every // per_update) * per_update,
        initial={"update": 0}, train_curve="best_latent_return",
        plot=lambda records, path: plot_compass_curve(
            records, f"COMPASS ({policy.config.algorithm.upper()} base) on {task_name}", path),
        meta={"config": config.to_dict(), "from": str(base.path),
              "base_sha256": base.manifest.get("sha256")},
    )
    _, report = run_loop(loop, runner, out, compile_seconds, on_progress)
    report["updates"] = num_updates
    return report
