"""COMPASS training: specialise the latents of a conditioned policy, winner takes all.

Starting from a converged IPPO/MAPPO checkpoint, `condition` adds a latent input z in [-1, 1]^d:
by default a full-rank map of `latent_scale * z` into the actor's first hidden layer, no bias,
so z = 0 is the base policy, with small random initial weights so that latents differ from the
first update on. Each update then, as Poppy and COMPASS do for actor-critic domains:

1. draws `num_envs` training instances and `num_latents` latents per instance from the prior;
2. plays one sampled rollout (temperature 1, or `compass_temperature`) of every (instance,
   latent) pair;
3. per instance, the latent with the best return wins and is trained on *that same rollout*
   (replayed from its key, so with its log-probabilities), with the contrastive advantage
   "best return minus second best" (`compass_advantage: second`): a latent is pushed towards
   what made it beat the other `num_latents - 1` on this instance, and an instance where the
   best two tie teaches nothing; or "best minus the mean over latents" (`mean`), which also
   learns from ties; or "second-early", where the tied best latent whose rewards came earliest
   wins a tie. No critic, no entropy bonus.

Only the latent weights learn at `latent_learning_rate`; the rest of the actor at
`trunk_lr_scale * learning_rate` (0 by default: the trunk stays the base policy, so z = 0 acts
exactly like it), and the critic not at all. Different regions of the latent space drift
towards different kinds of instances: that spread is what search in the latent space exploits.

Diagnostics at every evaluation, on the fixed test instances with fixed latents: best of the
latents with arg-max and with sampled actions, the mean latent, z = 0, the base policy's own
sampled best-of-L (the bar to clear), the share of instances whose best two latents tie, and
how spread the winning latents are. A low-rank conditioning (`latent_rank` > 0, the first
design) still trains and loads.
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

from ceiling.errors import CeilingError
from ceiling.policies.checkpoint import Checkpoint
from ceiling.policies.latent import sample_prior
from ceiling.policies.networks import Params, Policy, condition
from ceiling.policies.ppo import adam, ppo_epochs, ppo_loss
from ceiling.policies.rollout import (
    Episode,
    Transition,
    record_episode,
    run_episode,
    summarise,
)
from ceiling.tasks import Task, instances, make
from ceiling.tasks.instances import train_keys
from ceiling.training.config import PPOConfig
from ceiling.training.loop import Loop, run_loop, start_run_dir

EVAL_KEY = 0  # the evaluation latents are the same at every evaluation and in every run


class CompassRunner(NamedTuple):
    params: Params
    opt_state: optax.OptState
    key: jax.Array


class CompassMetrics(NamedTuple):
    train_return: jax.Array  # mean return of the winners' sampled rollouts (= best_latent)
    best_latent_return: jax.Array  # mean over instances of the best latent's sampled return
    mean_latent_return: jax.Array  # mean sampled return over all latents and instances
    latent_spread: jax.Array  # mean over instances of the std of returns over latents
    latent_range: jax.Array  # mean over instances of (best - worst) latent return
    tie_share: jax.Array  # share of instances whose best two latents tie (no gradient)
    replay_match: jax.Array  # share of winners whose replayed rollout repeats its return
    policy_loss: jax.Array
    approx_kl: jax.Array


def steps_per_update(config: PPOConfig, task: Task) -> int:
    """Simulated environment steps per update: every latent's rollout plus the winners'
    replays, each a fixed `horizon` scan."""
    return config.num_envs * (config.num_latents + 1) * task.spec.horizon


def num_compass_updates(config: PPOConfig, task: Task) -> int:
    return max(1, config.total_steps // steps_per_update(config, task))


def latent_returns(
    task: Task,
    policy: Policy,
    params: Params,
    instance_keys: jax.Array,
    latents: jax.Array,
    keys: jax.Array | None = None,
    temperature: float = 1.0,
    greedy: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Returns, win flags and early returns (`Episode.early_return`) [N, L] of latents
    [N, L, d] on instances [N, 2]: sampled with `keys` [N, L, 2] at `temperature`, arg-max
    without; or, with `greedy` [L] (booleans, `keys` given), arg-max in the columns it flags
    and sampled in the others, all in one episode scan."""
    flags: bool | jax.Array = keys is None if greedy is None else greedy
    keys = jnp.zeros((*latents.shape[:2], 2), jnp.uint32) if keys is None else keys

    def per_instance(
        instance_key: jax.Array, zs: jax.Array, ks: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        def one(z: jax.Array, k: jax.Array, g: bool | jax.Array) -> Episode:
            return run_episode(task, policy, params, instance_key, k, greedy=g,
                               temperature=temperature, latent=z)

        if isinstance(flags, bool):
            episodes = jax.vmap(lambda z, k: one(z, k, flags))(zs, ks)
        else:
            episodes = jax.vmap(one)(zs, ks, flags)
        return episodes.total_return, episodes.won, episodes.early_return

    return jax.vmap(per_instance)(instance_keys, latents, keys)


def winners_take_all(
    returns: jax.Array, latents: jax.Array, early: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """The best latent per instance: indices [N] and latents [N, d]. Without `early` [N, L]
    the first wins ties; with it, the one whose rewards came earliest among the tied."""
    if early is None:
        winner = jnp.argmax(returns, axis=1)
    else:
        tied_best = returns == returns.max(axis=1, keepdims=True)
        winner = jnp.argmax(jnp.where(tied_best, early, -jnp.inf), axis=1)
    return winner, latents[jnp.arange(latents.shape[0]), winner]


def contrastive_advantage(
    returns: jax.Array, baseline: str = "second", early: jax.Array | None = None
) -> jax.Array:
    """[N] the best return per instance of returns [N, L] minus the second best's ("second":
    0 on a tie, so a tied instance teaches nothing) or minus the mean over latents ("mean").

    "second-early" (needs `early` [N, L], `Episode.early_return`) breaks ties instead: where
    the best two returns tie, the tied latent whose rewards came strictly earliest wins, with
    the advantage of a typical win (the mean gap over this batch's untied instances, 1 if
    none); instances whose tied best also tie in earliness still teach nothing.
    """
    top_two, _ = jax.lax.top_k(returns, 2)
    if baseline == "mean":
        return top_two[:, 0] - returns.mean(axis=1)
    gap = top_two[:, 0] - top_two[:, 1]
    if baseline == "second":
        return gap
    assert baseline == "second-early" and early is not None, "second-early needs early returns"
    tied_best = returns == top_two[:, :1]
    first_two, _ = jax.lax.top_k(jnp.where(tied_best, early, -jnp.inf), 2)
    earlier = first_two[:, 0] > first_two[:, 1]
    untied = gap > 0
    typical = jnp.where(untied.any(), (gap * untied).sum() / jnp.maximum(untied.sum(), 1), 1.0)
    return jnp.where(untied, gap, jnp.where(earlier, typical, 0.0))


class _NoCritic(NamedTuple):
    """COMPASS's loss coefficients: the clip of `ppo_loss`, no value loss, no entropy bonus."""

    clip_eps: float
    value_coef: float = 0.0
    entropy_coef: float = 0.0


def select_and_record(
    task: Task,
    policy: Policy,
    params: Params,
    instance_keys: jax.Array,
    latents: jax.Array,
    key: jax.Array,
    temperature: float = 1.0,
    advantage: str = "second",
) -> tuple[jax.Array, jax.Array, jax.Array, Any, Transition, jax.Array]:
    """Winner takes all on sampled rollouts: play every latent of latents [E, L, d] once at
    `temperature`, keep the best per instance (ties broken as `advantage` says, see
    `contrastive_advantage`) and replay exactly its rollout (same key) with a record
    (log-probabilities under the untempered policy, as PPO's ratio needs).

    Returns the winners' latents [E, d], all sampled returns [E, L], the winners' contrastive
    advantages [E], their replayed episodes [E], their transitions time-major [T, E, ...] and
    the live mask [T, E].
    """
    num_envs, num_latents = latents.shape[:2]
    keys = jax.random.split(key, num_envs * num_latents).reshape(num_envs, num_latents, -1)
    returns, _, early = latent_returns(task, policy, params, instance_keys, latents, keys,
                                       temperature)
    winner, chosen = winners_take_all(returns, latents,
                                      early if advantage == "second-early" else None)
    chosen_keys = keys[jnp.arange(num_envs), winner]
    episodes, trajectories = jax.vmap(
        lambda ik, k, z: record_episode(task, policy, params, ik, k, temperature, z)
    )(instance_keys, chosen_keys, chosen)
    batch = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), trajectories.transitions)
    advantages = contrastive_advantage(returns, advantage, early)
    return chosen, returns, advantages, episodes, batch, trajectories.live.T


def make_compass_optimizer(config: PPOConfig, num_updates: int) -> optax.GradientTransformation:
    """Adam on the latent weights at `latent_learning_rate`, on the rest of the actor at
    `trunk_lr_scale * learning_rate` (frozen at 0); the critic is not trained."""
    steps = num_updates * config.num_epochs * config.num_minibatches
    decay = steps if config.anneal_lr else None
    latent = adam(config.latent_learning_rate, config.max_grad_norm, decay)
    trunk = (adam(config.learning_rate * config.trunk_lr_scale, config.max_grad_norm, decay)
             if config.trunk_lr_scale > 0 else optax.set_to_zero())

    def labels(params: Params) -> Any:
        def label(path: Any, _: Any) -> str:
            names = [str(getattr(k, "key", "")) for k in path]
            if names[0] != "actor":
                return "frozen"
            return "latent" if any(n.startswith("latent_") for n in names) else "trunk"

        return jax.tree_util.tree_map_with_path(label, params)

    return optax.multi_transform(
        {"latent": latent, "trunk": trunk, "frozen": optax.set_to_zero()}, labels)


def make_compass_update(
    task: Task, policy: Policy, config: PPOConfig, num_updates: int
) -> Callable[[CompassRunner], tuple[CompassRunner, CompassMetrics]]:
    optimizer = make_compass_optimizer(config, num_updates)
    num_envs, num_latents = config.num_envs, config.num_latents
    coefficients = _NoCritic(config.clip_eps)

    def update(runner: CompassRunner) -> tuple[CompassRunner, CompassMetrics]:
        key, instance_key, latent_key, record_key, epoch_key = jax.random.split(runner.key, 5)
        instance_keys = train_keys(instance_key, num_envs)
        latents = sample_prior(latent_key, (num_envs, num_latents, policy.config.latent_dim))
        chosen, returns, advantage, episodes, batch, live = select_and_record(
            task, policy, runner.params, instance_keys, latents, record_key,
            config.compass_temperature, config.compass_advantage)
        # The same advantage at every step of the winner's episode, in units of the spread of
        # returns (Adam makes the overall scale moot; this keeps tasks comparable).
        advantage = advantage / (returns.std() + 1e-8)
        advantages = jnp.broadcast_to(advantage[None, :, None], batch.value.shape)

        def loss(params: Params, indices: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
            take = lambda x: x[:, indices]  # noqa: E731  (environments; time kept whole)
            return ppo_loss(policy, coefficients, params, jax.tree_util.tree_map(take, batch),
                            take(advantages), take(batch.value), live=take(live),
                            latent=chosen[indices], normalise_advantages=False)

        params, opt_state, aux = ppo_epochs(
            loss, optimizer, runner.params, runner.opt_state, epoch_key, num_envs,
            config.num_epochs, config.num_minibatches)
        policy_loss, _, _, approx_kl = (x.mean() for x in aux)
        best = returns.max(axis=1)
        metrics = CompassMetrics(
            train_return=episodes.total_return.mean(),
            best_latent_return=best.mean(),
            mean_latent_return=returns.mean(),
            latent_spread=returns.std(axis=1).mean(),
            latent_range=(best - returns.min(axis=1)).mean(),
            tie_share=(contrastive_advantage(returns) == 0).mean(),
            replay_match=(jnp.abs(episodes.total_return - best) < 1e-4).mean(),
            policy_loss=policy_loss, approx_kl=approx_kl,
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
    return condition(base.policy, base.params, config.latent_dim, key, config.latent_rank,
                     config.latent_scale, config.latent_init, config.latent_layers)


class LatentScores(NamedTuple):
    """Per test instance: returns [N, L] of the fixed latents with arg-max actions (`greedy`,
    their win flags `wins`) and with sampled ones (`sampled`), z = 0's arg-max return [N], and
    the base policy's L sampled returns [N, L] (None without a base)."""

    greedy: np.ndarray
    wins: np.ndarray
    sampled: np.ndarray
    zero: np.ndarray
    base_sampled: np.ndarray | None


def make_latent_scores(
    task: Task,
    policy: Policy,
    test_keys: jax.Array,
    latents: jax.Array,
    base: tuple[Policy, Params] | None = None,
) -> Callable[[Params], LatentScores]:
    """`LatentScores` of a conditioned policy's parameters with the fixed latents [L, d] on
    the test instances [N, 2]; the sampled rollouts of latent l on instance i and the base's
    l-th sampled rollout there use the same action key. The base's are computed once."""
    count = test_keys.shape[0]
    per_instance = jnp.broadcast_to(latents, (count, *latents.shape))
    keys = jax.random.split(jax.random.PRNGKey(EVAL_KEY), count * latents.shape[0]).reshape(
        count, latents.shape[0], 2)

    # The latents greedy, the latents sampled and z = 0 greedy as columns of one batch with a
    # per-column mode: one episode scan to compile instead of three.
    size, dim = latents.shape
    columns = jnp.concatenate([per_instance, per_instance, jnp.zeros((count, 1, dim))], axis=1)
    column_keys = jnp.concatenate([keys, keys, keys[:, :1]], axis=1)
    greedy = jnp.concatenate([jnp.ones(size, bool), jnp.zeros(size, bool), jnp.ones(1, bool)])

    @jax.jit
    def returns(params: Params) -> tuple[jax.Array, ...]:
        totals, wins, _ = latent_returns(task, policy, params, test_keys, columns, column_keys,
                                         greedy=greedy)
        return totals[:, :size], wins[:, :size], totals[:, size:-1], totals[:, -1]

    base_sampled = None
    if base is not None:
        base_policy, base_params = base
        episodes = jax.jit(jax.vmap(jax.vmap(
            lambda ik, k: run_episode(task, base_policy, base_params, ik, k, greedy=False),
            (None, 0))))(test_keys, keys)
        base_sampled = np.asarray(episodes.total_return)

    def scores(params: Params) -> LatentScores:
        totals, wins, sampled, zero_totals = (np.asarray(x) for x in returns(params))
        return LatentScores(totals, wins, sampled, zero_totals, base_sampled)

    return scores


def make_evaluate(
    task: Task,
    policy: Policy,
    test_keys: jax.Array,
    latents: jax.Array,
    base: tuple[Policy, Params] | None = None,
) -> Callable[[Params], dict[str, Any]]:
    """Test-set diagnostics with the fixed evaluation latents [L, d]: the best latent per
    instance with arg-max actions (the summary's return: what a search over those latents
    finds) and with sampled ones, the mean latent, z = 0, the share of instances whose best two
    latents tie, the spread of the winning latents (their mean per-dimension std over
    instances, in units of the prior's), and the bar to clear: the `base` policy's own best of
    L sampled rollouts per instance (computed once)."""
    score = make_latent_scores(task, policy, test_keys, latents, base)
    prior_std = 1.0 / np.sqrt(3.0)  # of the uniform [-1, 1]

    def evaluate(params: Params) -> dict[str, Any]:
        found = score(params)
        totals = found.greedy
        best = totals.argmax(axis=1)
        rows = np.arange(totals.shape[0])
        summary = summarise(totals[rows, best],
                            found.wins[rows, best] if task.spec.has_win else None)
        ordered = np.sort(totals, axis=1)
        summary.update(
            zero_latent_return=float(found.zero.mean()),
            mean_latent_return=float(totals.mean()),
            sampled_best_return=float(found.sampled.max(axis=1).mean()),
            tie_share=float((ordered[:, -1] == ordered[:, -2]).mean()),
            winner_spread=float(np.asarray(latents)[best].std(axis=0).mean() / prior_std),
        )
        if found.base_sampled is not None:
            summary["base_sampled_best_return"] = float(found.base_sampled.max(axis=1).mean())
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
        for field, label in (("best_latent_return", "training: best latent, sampled"),
                             ("mean_latent_return", "training: mean over latents, sampled")):
            ax.plot(steps, [r[field] for r in train], label=label, alpha=0.8)
        spread_ax.plot(steps, [r["latent_spread"] for r in train], label="std over latents")
        spread_ax.plot(steps, [r["latent_range"] for r in train], label="best - worst latent")
    evals = [r for r in records if "eval_return" in r]
    if evals:
        ax.plot([r["step"] for r in evals], [r["eval_return"] for r in evals], "o-",
                markersize=3, label="test: best of eval latents")
        ax.plot([r["step"] for r in evals], [r["eval_zero_latent_return"] for r in evals],
                "s--", markersize=3, label="test: z = 0")
        if "eval_sampled_best_return" in evals[-1]:
            ax.plot([r["step"] for r in evals], [r["eval_sampled_best_return"] for r in evals],
                    "^-", markersize=3, label="test: best of eval latents, sampled")
        if "eval_base_sampled_best_return" in evals[-1]:
            ax.axhline(evals[-1]["eval_base_sampled_best_return"], color="grey", ls=":",
                       label="test: base policy, best of as many samples")
        if "eval_tie_share" in evals[-1]:
            spread_ax.plot([r["step"] for r in evals], [r["eval_tie_share"] for r in evals],
                           "o-", markersize=3, label="test: share of tied instances")
            spread_ax.plot([r["step"] for r in evals], [r["eval_winner_spread"] for r in evals],
                           "s-", markersize=3, label="test: spread of winning latents / prior")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("simulated environment steps")
    ax.set_ylabel("team return")
    spread_ax.set_title("latent specialisation (lines: training instances)", fontsize=9)
    spread_ax.set_xlabel("simulated environment steps")
    for axis in (ax, spread_ax):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="best", framealpha=0.8)
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
    resume: bool = False,
) -> dict[str, Any]:
    """COMPASS training from checkpoint `base` into run directory `out`; returns a summary.

    With `resume`, continue the interrupted run in `out` (same config and base checkpoint)."""
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
    start_run_dir(out, {"task": task_name, "from": str(base.path),
                        "base_algorithm": policy.config.algorithm, **config.to_dict()},
                  force, resume)

    num_updates = num_compass_updates(config, task)
    per_update = steps_per_update(config, task)
    optimizer = make_compass_optimizer(config, num_updates)
    runner = CompassRunner(params, optimizer.init(params), key)
    update = jax.jit(make_compass_update(task, policy, config, num_updates))
    test_keys = instances(task_name, "test", config.eval_instances)
    eval_latents = sample_prior(jax.random.PRNGKey(EVAL_KEY),
                                (config.num_latents, policy.config.latent_dim))
    base_pair = None if base.policy.config.conditioned else (base.policy, base.params)
    evaluate = make_evaluate(task, policy, test_keys, eval_latents, base_pair)

    start = time.perf_counter()
    compiled = update.lower(runner).compile()
    compile_seconds = time.perf_counter() - start

    def advance(runner: CompassRunner, call: int) -> tuple[CompassRunner, dict[str, Any]]:
        runner, metrics = compiled(runner)
        return runner, {"update": call,
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
    _, report = run_loop(loop, runner, out, compile_seconds, on_progress, resume)
    report["updates"] = num_updates
    return report
