"""Solution quality of each strategy under a time budget, on the test instances of each task.

For every task, the base policy is the best shipped zero-shot policy: every shipped IPPO/MAPPO
checkpoint of the task is evaluated greedily on the same test instances and the one with the
higher mean return is used, as in the reference study ("gain over the best zero-shot
policy"). COMPASS's strategies (`compass`, `latent-sampling`) search with the task's shipped
COMPASS checkpoint instead (trained from the MAPPO checkpoint). Each strategy then
searches each of the first `--instances` test instances for `--seconds` (one or more budgets)
at `--width` parallel attempts, through `ceiling.search.solve` (compile time excluded, every
solution replayed and verified).

Rows are appended to `--results` (JSON lines) as they finish, and a rerun skips the rows it
already holds, so a long run can be stopped and resumed. The table printed at the end gives,
per task, strategy and budget: mean verified return with a 95 % CI over instances, the gain of
the mean over greedy's in %, how many instances improved on / fell below the greedy return,
and the mean number of rollouts the budget allowed.

    python benchmarks/quality.py                                  # 32 instances, 10 s, width 64
    python benchmarks/quality.py --tasks connector:con-5x5x3a --instances 4 --seconds 1
    python benchmarks/quality.py --seconds 3 10 30 --strategies greedy sampling compass

The script reports; it does not assert.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ceiling.policies.checkpoint import Checkpoint, load_checkpoint
from ceiling.policies.rollout import evaluate_batch, summarise
from ceiling.policies.shipped import shipped_checkpoints
from ceiling.search import STRATEGIES, Budget, make_strategy, solve
from ceiling.tasks import make
from ceiling.tasks.instances import instances
from ceiling.training.config import parse_scalar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import environment as machine_environment  # noqa: E402  (a sibling script)

SHIPPED_TASKS = ("rware:tiny-2ag-hard", "connector:con-5x5x3a", "smax:3m")
BASE_ALGORITHMS = ("ippo", "mappo")
LATENT_STRATEGIES = ("compass", "latent-sampling")
TABLE_ORDER = ("greedy", "sampling", "sgbs", "finetune", "latent-sampling", "compass")


def compass_checkpoint(task_name: str, base: Checkpoint) -> Checkpoint:
    """The shipped COMPASS checkpoint of `task_name` (trained from one of its base policies,
    which may not be `base`, the best zero-shot one on these instances: then it says so)."""
    path = shipped_checkpoints().get((task_name, "compass"))
    if path is None:
        raise SystemExit(f"no shipped COMPASS checkpoint for {task_name}")
    checkpoint = load_checkpoint(path)
    if checkpoint.policy.config.algorithm != base.algorithm:
        print(f"note: the COMPASS checkpoint of {task_name} was trained from "
              f"{checkpoint.policy.config.algorithm}; the best zero-shot base policy on these "
              f"instances is {base.algorithm}", flush=True)
    return checkpoint


def best_zero_shot(task_name: str, num_instances: int) -> tuple[Checkpoint, dict[str, float]]:
    """The shipped checkpoint of `task_name` with the best greedy mean on these instances."""
    task = make(task_name)
    keys = instances(task_name, "test", num_instances)
    scores: dict[str, float] = {}
    best: Checkpoint | None = None
    for (name, algorithm), path in sorted(shipped_checkpoints().items()):
        if name != task_name or algorithm not in BASE_ALGORITHMS:
            continue
        checkpoint = load_checkpoint(path)
        episodes = evaluate_batch(task, checkpoint.policy, checkpoint.params, keys,
                                  jax.random.PRNGKey(0), greedy=True)
        scores[algorithm] = float(np.mean(episodes.total_return))
        if best is None or scores[algorithm] > scores[best.algorithm]:
            best = checkpoint
    if best is None:
        raise SystemExit(f"no shipped checkpoint for {task_name}")
    return best, scores


def parse_options(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """`STRATEGY:NAME=VALUE` pairs -> {strategy: {name: value}}."""
    options: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        strategy, sep, setting = pair.partition(":")
        name, eq, value = setting.partition("=")
        if not sep or not eq or not name:
            raise SystemExit(f"--option expects STRATEGY:NAME=VALUE, got {pair!r}")
        options.setdefault(strategy, {})[name] = parse_scalar(value)
    return options


def row_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["task"], row["algorithm"], row["strategy"], json.dumps(row["options"],
            sort_keys=True), row["seconds"], row["width"], row["instance"], row["seed"])


def load_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    results_path = Path(args.results)
    rows = load_rows(results_path)
    done = {row_key(r) for r in rows}
    options = parse_options(args.option)
    for task_name in args.tasks:
        checkpoint, scores = best_zero_shot(task_name, args.instances)
        print(f"{task_name}: greedy mean on {args.instances} test instances "
              + ", ".join(f"{a} {s:.3f}" for a, s in scores.items())
              + f" -> base policy {checkpoint.algorithm}", flush=True)
        task = make(task_name)
        keys = instances(task_name, "test", args.instances)
        for strategy_name in args.strategies:
            used = (compass_checkpoint(task_name, checkpoint)
                    if strategy_name in LATENT_STRATEGIES else checkpoint)
            strategy = make_strategy(strategy_name, task, used.policy, args.width,
                                     **options.get(strategy_name, {}))
            budgets = [None] if strategy_name == "greedy" else args.seconds
            for seconds in budgets:
                budget = Budget(seconds=seconds if seconds is not None else 1.0,
                                width=args.width)
                for index in range(args.instances):
                    row = {"task": task_name, "algorithm": used.algorithm,
                           "strategy": strategy_name,
                           "options": options.get(strategy_name, {}), "seconds": seconds,
                           "width": args.width, "instance": index, "seed": args.seed}
                    if row_key(row) in done:
                        continue
                    result = solve(strategy, used.params, keys[index], budget,
                                   jax.random.PRNGKey(args.seed + index))
                    row.update(total_return=result.solution.verified,
                               won=result.solution.won, rollouts=result.rollouts,
                               search_seconds=result.seconds,
                               compile_seconds=result.compile_seconds)
                    with results_path.open("a") as handle:
                        handle.write(json.dumps(row) + "\n")
                    rows.append(row)
                    print(f"  {strategy_name:9s} {seconds}s instance {index:3d}: "
                          f"{row['total_return']:.3f} ({result.rollouts} rollouts)", flush=True)
    return rows


def table(rows: list[dict[str, Any]], tasks: list[str], num_instances: int) -> str:
    lines = ["| task | policy | strategy | budget | mean return [95 % CI] | gain over greedy "
             "| better / worse than greedy | rollouts |",
             "|---|---|---|---|---|---|---|---|"]
    for task_name in tasks:
        mine = [r for r in rows if r["task"] == task_name and r["instance"] < num_instances]
        greedy = {r["instance"]: r["total_return"] for r in mine if r["strategy"] == "greedy"}
        groups: dict[tuple[str, Any, str], list[dict[str, Any]]] = {}
        for r in mine:
            label = r["strategy"] + "".join(f" {k}={v}" for k, v in sorted(r["options"].items()))
            groups.setdefault((label, r["seconds"], r["algorithm"]), []).append(r)
        order = {name: i for i, name in enumerate(TABLE_ORDER)}
        for (label, seconds, algorithm), group in sorted(
                groups.items(), key=lambda item: (item[0][0] != "greedy",
                                                  item[0][1] or 0.0,
                                                  order.get(item[0][0].split()[0], 99))):
            returns = np.array([r["total_return"] for r in group])
            summary = summarise(returns, None)
            low, high = summary["ci95"]
            gain = better = worse = "–"
            if greedy and label != "greedy":
                # Against greedy on the same instances (a budget may cover fewer of them).
                paired = [(r["total_return"], greedy[r["instance"]]) for r in group
                          if r["instance"] in greedy]
                base = float(np.mean([b for _, b in paired]))
                mean = float(np.mean([a for a, _ in paired]))
                gain = f"{100 * (mean - base) / abs(base):+.1f} %"
                better = str(sum(a > b + 1e-6 for a, b in paired))
                worse = str(sum(a < b - 1e-6 for a, b in paired))
            budget = "1 rollout" if seconds is None else f"{seconds:g} s"
            lines.append(
                f"| {task_name} | {algorithm} | {label} | {budget} | {returns.mean():.3f} "
                f"[{low:.3f}, {high:.3f}] | {gain} | {better} / {worse} (of {len(group)}) "
                f"| {np.mean([r['rollouts'] for r in group]):,.0f} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=list(SHIPPED_TASKS))
    p.add_argument("--strategies", nargs="+", default=["greedy", "sampling", "sgbs", "finetune"],
                   choices=sorted(STRATEGIES))
    p.add_argument("--instances", type=int, default=32)
    p.add_argument("--seconds", type=float, nargs="+", default=[10.0])
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--option", action="append", default=[], metavar="STRATEGY:NAME=VALUE")
    p.add_argument("--results", default="quality.jsonl",
                   help="JSON lines file; rows already in it are skipped (resume)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    env = machine_environment()
    print(" | ".join(f"{k}: {v}" for k, v in env.items()), flush=True)
    rows = run(args)
    print()
    print(table(rows, args.tasks, args.instances))


if __name__ == "__main__":
    main()
