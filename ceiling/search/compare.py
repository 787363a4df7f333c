"""Strategies side by side on a few test instances: the table and anytime plot of `ceiling demo`.

For each strategy and instance, `compare` runs the driver under the same budget and key and
keeps the verified solution and the anytime trace; `summarise_comparison` turns them into mean
returns and gains over the greedy zero-shot rollout, and `plot_anytime` draws the mean best
return against wall-clock seconds.
"""

from __future__ import annotations

import concurrent.futures
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ceiling.policies.checkpoint import Checkpoint
from ceiling.policies.rollout import summarise
from ceiling.search import (
    STRATEGIES,
    Budget,
    SearchResult,
    instance_key,
    make_strategy,
    search_keys,
    solve,
    with_checkpoint_defaults,
)
from ceiling.tasks import make


class Comparison:
    """Strategies built for one checkpoint and compiling in a background thread: start it
    early, do other work, then `run` the searches. A context manager (closing drops compiles
    not yet started).

    Strategies named in `other_checkpoints` search with that checkpoint instead (COMPASS's
    strategies need its latent-conditioned one, trained from `checkpoint`). Every option and
    budget error is raised here, before anything compiles.

    The compiles run in order, one at a time, each filling its strategy's jit cache with one
    discarded batch; XLA releases the GIL while compiling, so on a second core they overlap
    whatever the caller does meanwhile (`ceiling demo`: its zero-shot table) and the searches
    of the strategies before them. Compiles are outside every budget anyway; the searches may
    share the machine with a compile, which suits a demonstration, not a measurement (`ceiling
    bench` compiles each strategy before its cells).
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        strategies: Sequence[str],
        budget: Budget,
        other_checkpoints: Mapping[str, Checkpoint] | None = None,
        *,
        width: int,
    ) -> None:
        self.task_name = checkpoint.task_name
        self.budget = budget
        task = make(self.task_name)
        self.used = {name: (other_checkpoints or {}).get(name, checkpoint) for name in strategies}
        self.built = {name: make_strategy(name, task, self.used[name].policy, width,
                                          **self._defaults(name))
                      for name in strategies}
        for strategy in self.built.values():
            strategy.batch_limit(budget)  # an inexact rollout budget fails here too
        self._pool = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="ceiling-compile")
        self._compiled = {name: self._pool.submit(self._compile, name) for name in self.built}

    def _defaults(self, name: str) -> dict[str, Any]:
        """The search defaults the checkpoint strategy `name` runs on records for it."""
        used = self.used[name]
        return with_checkpoint_defaults(name, used.search_defaults(name), {}, str(used.path))

    def _compile(self, name: str) -> None:
        strategy = self.built[name]
        state = strategy.init(jax.random.PRNGKey(0), self.used[name].params,
                              instance_key(self.task_name, 0))
        strategy.compiled_programs(state)  # what `solve` runs, kept with the strategy

    def run(
        self,
        num_instances: int,
        seed: int = 0,
        on_result: Callable[[str, int, SearchResult], None] | None = None,
    ) -> dict[str, list[SearchResult]]:
        """{strategy: [result per instance]} on the first `num_instances` test instances, each
        search keyed by the search identity (seed, task, instance) as in `ceiling solve` and
        `ceiling bench`."""
        search = search_keys(seed, self.task_name, range(num_instances))
        results: dict[str, list[SearchResult]] = {}
        for name, strategy in self.built.items():
            self._compiled[name].result()
            results[name] = []
            for index in range(num_instances):
                result = solve(strategy, self.used[name].params,
                               instance_key(self.task_name, index), self.budget,
                               jax.numpy.asarray(search[index]))
                results[name].append(result)
                if on_result is not None:
                    on_result(name, index, result)
        return results

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Comparison:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def compare(
    checkpoint: Checkpoint,
    strategies: Sequence[str],
    num_instances: int,
    budget: Budget,
    seed: int = 0,
    on_result: Callable[[str, int, SearchResult], None] | None = None,
    other_checkpoints: Mapping[str, Checkpoint] | None = None,
    *,
    width: int,
) -> dict[str, list[SearchResult]]:
    """`Comparison(...).run(...)` in one call: {strategy: [result per instance]}."""
    with Comparison(checkpoint, strategies, budget, other_checkpoints, width=width) as comparison:
        return comparison.run(num_instances, seed, on_result)


def summarise_comparison(results: dict[str, list[SearchResult]]) -> list[dict[str, Any]]:
    """A row per strategy: mean verified return, its 95 % CI, rollouts, and gain over greedy."""
    baseline = None
    zero_shot = [name for name in results if STRATEGIES[name].budget_free]
    if zero_shot:
        baseline = float(np.mean([r.solution.verified for r in results[zero_shot[0]]]))
    rows = []
    for name, per_instance in results.items():
        returns = np.array([r.solution.verified for r in per_instance])
        summary = summarise(returns, None)
        gain = None
        if baseline is not None and abs(baseline) > 1e-8:
            gain = 100.0 * (returns.mean() - baseline) / abs(baseline)
        rows.append({
            "strategy": name,
            "mean_return": summary["mean_return"],
            "ci95": summary["ci95"],
            "mean_rollouts": float(np.mean([r.rollouts for r in per_instance])),
            "gain_over_greedy_percent": gain,
        })
    return rows


def anytime_curve(per_instance: list[SearchResult], grid: np.ndarray) -> np.ndarray:
    """Mean over instances of the best return found by each time in `grid`.

    NaN until every instance has finished its first batch, so the curve never mixes instances
    in and out of the mean (which would make it jump down).
    """
    curves = []
    for result in per_instance:
        seconds = np.array([p.seconds for p in result.trace])
        best = np.array([p.best_return for p in result.trace])
        index = np.searchsorted(seconds, grid, side="right") - 1
        curves.append(np.where(index >= 0, best[np.maximum(index, 0)], np.nan))
    if not curves:
        return grid * np.nan
    return np.mean(np.array(curves), axis=0)


def plot_anytime(results: dict[str, list[SearchResult]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    horizon = max(r.trace[-1].seconds for rs in results.values() for r in rs)
    grid = np.linspace(0.0, horizon, 200)
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    styles = ("-", "--", "-.", ":")  # curves that coincide stay distinguishable
    searched = [name for name in results if not STRATEGIES[name].budget_free]
    for name, per_instance in results.items():
        if STRATEGIES[name].budget_free:
            level = float(np.mean([r.solution.verified for r in per_instance]))
            ax.axhline(level, color="grey", linestyle=(0, (4, 4)), linewidth=1,
                       label=f"{name} (zero-shot)")
            continue
        curve = anytime_curve(per_instance, grid)
        (line,) = ax.plot(grid, curve, linestyle=styles[searched.index(name) % len(styles)],
                          label=name)
        # the final value as a dot: a strategy whose first batch ends late is a short line
        ax.plot(grid[-1], curve[-1], marker="o", markersize=4, color=line.get_color())
    ax.set_xlabel("seconds of search (compile time excluded)")
    ax.set_ylabel("best return found (mean over instances)")
    ax.set_title(textwrap.fill(title, 80), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
