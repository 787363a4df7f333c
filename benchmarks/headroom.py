"""Headroom of a task for search, measured from a `ceiling bench` store (suites/headroom.yaml).

For each task in the store, on the instances every row shares:

- normalised greedy zero-shot return of the best base policy: (greedy - random) / (best -
  random), where random is the uniform random policy's mean return (the store's baselines)
  and best is the mean over instances of the best return any cell found on that instance.
  A task has headroom when this is below `MAX_NORMALISED_GREEDY` (0.8). Shown beside it, not
  tested: the best found over greedy, (best - greedy) / greedy, the improvement over zero-shot
  the reference study reports (only where greedy is positive). It tells a task whose random
  policy is far below zero (Connector's step costs) apart from one without headroom;
- sampling at the largest budget against the smallest (30 s x 64 against 3 s x 64 in the
  suite), per sampling temperature: the mean paired difference with a 95 % bootstrap interval
  over instances. Headroom also needs this interval to exclude 0 (more search keeps paying).

Run from the repository root after the sweep:

    ceiling bench suites/headroom.yaml --db results/bench/headroom/store.sqlite
    python benchmarks/headroom.py results/bench/headroom/store.sqlite

`--also STORE` (repeatable) adds another store's rows of the same tasks, for instance the
claims sweep's (`results/bench/cpu/store.sqlite`): its greedy rows of other base policies
(SABLE) and its searches count towards the best base policy and the best return found. The
stores must have searched with the same checkpoints under each label (checked).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from typing import Any

import numpy as np

from ceiling.bench.stats import pooled_checkpoints, zero_shot
from ceiling.bench.store import Store
from ceiling.bootstrap import paired_replicates, percentile_interval

MAX_NORMALISED_GREEDY = 0.8
SEED = 0


def task_headroom(rows: list[dict[str, Any]], random: dict[int, float],
                  scaling: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The headroom figures of one task's rows (see the module docstring); the sampling
    budgets are compared on `scaling`'s rows (default: `rows`), per base policy and
    temperature."""
    algorithm, _ = zero_shot(rows)[rows[0]["task"]]
    greedy = {r["instance"]: r["total_return"] for r in rows
              if r["strategy"] == "greedy" and r["algorithm"] == algorithm}
    best: dict[int, float] = defaultdict(lambda: -np.inf)
    for r in rows:
        best[r["instance"]] = max(best[r["instance"]], r["total_return"])
    instances = sorted(set(greedy) & set(best) & set(random))
    if not instances:
        raise SystemExit(f"{rows[0]['task']}: no instance has greedy, random and search rows")
    low = float(np.mean([random[i] for i in instances]))
    high = float(np.mean([best[i] for i in instances]))
    greedy_mean = float(np.mean([greedy[i] for i in instances]))
    result: dict[str, Any] = {
        "task": rows[0]["task"], "algorithm": algorithm, "instances": len(instances),
        "random": low, "greedy": greedy_mean, "best": high,
        "normalised_greedy": (greedy_mean - low) / (high - low) if high > low else 1.0,
        "sampling": [],
    }
    by_policy: dict[tuple[str, float], dict[float, dict[int, float]]] = defaultdict(dict)
    for r in rows if scaling is None else scaling:
        if r["strategy"] == "sampling" and r["seconds"] is not None:
            temperature = float(r["options"].get("temperature", 1.0))
            by_policy[r["algorithm"], temperature].setdefault(r["seconds"], {})[
                r["instance"]] = r["total_return"]
    for (policy, temperature), budgets in sorted(by_policy.items()):
        if len(budgets) < 2:
            continue
        small, large = min(budgets), max(budgets)
        shared = sorted(set(budgets[small]) & set(budgets[large]))
        a = np.array([budgets[small][i] for i in shared])
        b = np.array([budgets[large][i] for i in shared])
        replicates = paired_replicates(lambda x, y: (y - x).mean(axis=1), [a, b],
                                       np.random.default_rng(SEED))
        result["sampling"].append({
            "policy": policy, "temperature": temperature, "small": small, "large": large,
            "mean_small": float(a.mean()), "mean_large": float(b.mean()),
            "difference": float((b - a).mean()), "ci95": percentile_interval(replicates),
            "instances": len(shared)})
    return result


def gain_over_greedy(result: dict[str, Any]) -> str:
    """The best found over greedy as a signed percentage, or "-" where greedy is not
    positive (a relative gain is then meaningless)."""
    if result["greedy"] <= 0:
        return "-"
    return f"{100 * (result['best'] - result['greedy']) / result['greedy']:+.0f} %"


def verdict(result: dict[str, Any]) -> str:
    low_greedy = result["normalised_greedy"] < MAX_NORMALISED_GREEDY
    scaling = any(s["ci95"][0] > 0 for s in result["sampling"])
    if low_greedy and scaling:
        return "headroom"
    reasons = []
    if not low_greedy:
        reasons.append(f"greedy at {result['normalised_greedy']:.2f} of the best")
    if not scaling:
        reasons.append("more sampling does not pay (every interval includes 0)")
    return "NO headroom: " + "; ".join(reasons)


def format_table(results: list[dict[str, Any]]) -> str:
    lines = ["| task | base | instances | random | greedy | best found | normalised greedy | "
             "best over greedy | sampling (base, T): small -> large budget "
             "(difference, 95 % CI) | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        sampling = "; ".join(
            f"{s['policy'].upper()}, T={s['temperature']:g}: {s['mean_small']:.2f} "
            f"({s['small']:g} s) -> {s['mean_large']:.2f} ({s['large']:g} s), "
            f"{s['difference']:+.2f} [{s['ci95'][0]:+.2f}, {s['ci95'][1]:+.2f}]"
            for s in r["sampling"]) or "-"
        lines.append(
            f"| `{r['task']}` | {r['algorithm'].upper()} | {r['instances']} | {r['random']:.2f} | "
            f"{r['greedy']:.2f} | {r['best']:.2f} | {r['normalised_greedy']:.2f} | "
            f"{gain_over_greedy(r)} | {sampling} | {verdict(r)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", help="a ceiling bench results database")
    parser.add_argument("--also", action="append", default=[], metavar="STORE",
                        help="another store whose rows of the same tasks count towards the best "
                             "base policy and the best return found (repeatable)")
    args = parser.parse_args(argv)
    with Store(args.db, create=False) as store:
        own, baselines = store.rows(), store.baselines("random")
    rows = list(own)
    if not rows:
        sys.exit(f"{args.db} holds no results")
    tasks = sorted({r["task"] for r in rows})
    for path in args.also:
        with Store(path, create=False) as store:
            rows += [r for r in store.rows() if r["task"] in tasks]
    pooled = pooled_checkpoints(rows)
    if pooled:
        sys.exit("the stores searched with different checkpoints under one label:\n"
                 + "\n".join(pooled))
    results = []
    for task in tasks:
        if task not in baselines:
            sys.exit(f"{args.db} holds no random baseline for {task}")
        results.append(task_headroom([r for r in rows if r["task"] == task], baselines[task],
                                     [r for r in own if r["task"] == task]))
    print(format_table(results))


if __name__ == "__main__":
    main()
