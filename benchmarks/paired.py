"""Paired comparisons of the configurations in a `ceiling bench` store, per task and cell.

For each task and (time budget, rollout budget, width) in the store, one row per
configuration (strategy, checkpoint, options): instances, mean return, rollouts spent per
cell, and its paired difference from each `--versus` configuration on the instances both
measured (mean, 95 % bootstrap interval over instances, and on how many instances it is better
and worse). The figures that BENCHMARKS.md quotes for the claims sweep come from here:

    python benchmarks/paired.py results/bench/cpu/store.sqlite --seconds 30 --width 64 \\
        --versus sampling:mappo --versus latent-sampling:compass

`--instances 32:64` keeps the test instances 32 to 63 only. `--gain-from 10` adds each
configuration's own gain from a 10 s budget to the cell's (same
task, width and configuration, paired on the instances both budgets measured).

`--replaced` compares instead the cells that were run again (`ceiling bench --rerun`) with
the rows they replaced (the store's `replaced` table; the first row stored for each cell), per
task, budget and configuration: mean return and rollouts before and after, and the paired
difference new - old. `--against OLD.sqlite` does the same against an earlier copy of the
store (every cell stored in both under one config hash at different times). BENCHMARKS.md's
rerun of the claims sweep comes from

    python benchmarks/paired.py results/bench/cpu/store.sqlite --replaced

Each table also gives each configuration's machine speed in that cell: the mean of its cells'
speed probes (`ceiling.bench.speed`) over the store's median, "-" for cells stored before the
probe; a note under the table says when its configurations' speeds differ by more than 10 %,
as a time budget buys fewer rollouts on a slower machine.

A configuration is named `strategy:checkpoint`, with its options appended as JSON when it
has any (`compass:compass:{"temperature": 0.0}`); `--list` prints the names in the store.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from typing import Any

import numpy as np

from ceiling.bench.claim_measures import paired_diff
from ceiling.bench.speed import row_speeds
from ceiling.bench.store import Store
from ceiling.bootstrap import mean_ci

SEED = 0
Cell = tuple[str, float | None, int | None, int]  # task, seconds, rollouts, width


def label(row: dict[str, Any]) -> str:
    options = row["options"]
    name = f"{row['strategy']}:{row['algorithm']}"
    return f"{name}:{json.dumps(options, sort_keys=True)}" if options else name


def group(rows: list[dict[str, Any]]) -> dict[Cell, dict[str, list[dict[str, Any]]]]:
    """{cell: {configuration label: rows}}; greedy (budget-free) rows join every cell of
    their task, since a budget does not change them."""
    cells: dict[Cell, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    budget_free = [r for r in rows if r["strategy"] == "greedy"]
    for r in rows:
        if r["strategy"] != "greedy":
            cells[(r["task"], r["seconds"], r["rollouts"], r["width"])][label(r)].append(r)
    for cell, configs in cells.items():
        for r in budget_free:
            if r["task"] == cell[0]:
                configs[label(r)].append(r)
    return cells


def compare(a: dict[int, float], b: dict[int, float]) -> dict[str, Any]:
    """a - b on the instances both measured."""
    differences = paired_diff(a, b)
    if not differences.size:
        return {"instances": 0}
    mean, low, high = mean_ci(differences, seed=SEED)
    return {"instances": differences.size, "difference": mean, "ci95": (low, high),
            "better": int((differences > 0).sum()), "worse": int((differences < 0).sum())}


def budget_text(cell: Cell) -> str:
    _, seconds, rollouts, width = cell
    parts = ([f"{seconds:g} s"] if seconds else []) + ([f"{rollouts} rollouts"] if rollouts
                                                         else [])
    return f"{' and '.join(parts) or 'no budget'} x {width}"


def returns_of(configs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[int, float]]:
    return {name: {r["instance"]: r["total_return"] for r in rows}
            for name, rows in configs.items()}


def difference_text(c: dict[str, Any]) -> str:
    return ("no shared instance" if not c["instances"] else
            f"{c['difference']:+.2f} [{c['ci95'][0]:+.2f}, {c['ci95'][1]:+.2f}] "
            f"({c['better']}/{c['worse']})")


def table(cell: Cell, configs: dict[str, list[dict[str, Any]]], versus: list[str],
          earlier: tuple[float, dict[str, dict[int, float]]] | None = None) -> str:
    """`earlier`: (a smaller time budget, the same task and width's returns there), for the
    gain column."""
    returns = returns_of(configs)
    order = sorted(configs, key=lambda name: -np.mean(list(returns[name].values())))
    header = ["configuration", "instances", "mean return", "rollouts per cell", "speed"]
    header += [f"- {v} [95 % CI] (better/worse)" for v in versus]
    if earlier:
        header.append(f"gain from {earlier[0]:g} s [95 % CI] (better/worse)")
    lines = [f"### {cell[0]}, {budget_text(cell)}", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    speeds = {}
    for name in order:
        rows = configs[name]
        measured = [r["relative_speed"] for r in rows if r.get("relative_speed") is not None
                    and r["strategy"] != "greedy"]
        if measured:
            speeds[name] = float(np.mean(measured))
        cells = [f"`{name}`", str(len(rows)), f"{np.mean(list(returns[name].values())):.2f}",
                 f"{np.mean([r['rollouts_done'] for r in rows]):,.0f}",
                 f"{speeds[name]:.2f}" if name in speeds else "-"]
        for v in versus:
            if v == name or v not in returns:
                cells.append("-")
                continue
            cells.append(difference_text(compare(returns[name], returns[v])))
        if earlier:
            before = earlier[1].get(name)
            cells.append("-" if before is None or name.startswith("greedy:")
                         else difference_text(compare(returns[name], before)))
        lines.append("| " + " | ".join(cells) + " |")
    if speeds and max(speeds.values()) > 1.1 * min(speeds.values()):
        lines += ["", f"note: these searches ran at machine speeds from "
                      f"{min(speeds.values()):.2f} to {max(speeds.values()):.2f} of the store's "
                      "median (speed probe): a time budget bought fewer rollouts on the slower"]
    return "\n".join(lines)


def rerun_table(old: list[dict[str, Any]], new: list[dict[str, Any]],
                same_time: bool = False) -> str:
    """The cells of `new` that `old` holds too, stored at another time (or, `same_time`,
    whenever: `old` are replaced rows): per task, budget and configuration, old and new mean
    return and rollouts, and the paired difference."""
    before = {r["config_hash"]: r for r in old}
    pairs: dict[tuple[Cell, str], list[tuple[dict[str, Any], dict[str, Any]]]] = defaultdict(
        list)
    for r in new:
        was = before.get(r["config_hash"])
        if was is not None and (same_time or was["created"] != r["created"]):
            pairs[((r["task"], r["seconds"], r["rollouts"], r["width"]), label(r))].append(
                (was, r))
    if not pairs:
        return "no cell was run again"
    header = ["task", "budget", "configuration", "instances", "mean return (old -> new)",
              "rollouts per cell (old -> new)", "new - old [95 % CI] (better/worse)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (cell, name), found in sorted(pairs.items(), key=lambda i: (order_key(i[0][0]),
                                                                     i[0][1])):
        returns = [{r["instance"]: r["total_return"] for r in side} for side in zip(*found,
                                                                                    strict=True)]
        rollouts = [np.mean([r["rollouts_done"] for r in side]) for side in zip(*found,
                                                                                strict=True)]
        lines.append("| " + " | ".join([
            cell[0], budget_text(cell), f"`{name}`", str(len(found)),
            f"{np.mean(list(returns[0].values())):.2f} -> {np.mean(list(returns[1].values())):.2f}",
            f"{rollouts[0]:,.0f} -> {rollouts[1]:,.0f}",
            difference_text(compare(returns[1], returns[0]))]) + " |")
    return "\n".join(lines)


def replaced_rows(db: str) -> list[dict[str, Any]]:
    """The first row stored for each cell in the store's `replaced` table (the earliest
    replaced), decoded as `Store.rows()` decodes its rows (none before schema version 4)."""
    with Store(db, create=False) as store:
        if store.version < 4:
            return []
        found = store.connection.execute(
            "SELECT row FROM replaced ORDER BY replaced DESC, rowid DESC").fetchall()
    first = {}
    for (text,) in found:  # the earliest last, so it stays
        row = json.loads(text)
        row["options"] = json.loads(row["options"])
        first[row["config_hash"]] = row
    return list(first.values())


def instance_range(text: str) -> tuple[int, int]:
    """`32:64` -> (32, 64): the instances from 32 up to, not including, 64."""
    first, _, stop = text.partition(":")
    try:
        bounds = int(first), int(stop)
    except ValueError:
        bounds = (0, 0)
    if not 0 <= bounds[0] < bounds[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: want FIRST:STOP, whole numbers with "
                                         "0 <= FIRST < STOP, e.g. 32:64")
    return bounds


def order_key(cell: Cell) -> tuple[str, float, int, int]:
    return cell[0], cell[1] or 0.0, cell[2] or 0, cell[3]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", help="a ceiling bench results database")
    parser.add_argument("--task", action="append", help="only this task (repeatable)")
    parser.add_argument("--seconds", type=float, help="only cells with this time budget")
    parser.add_argument("--width", type=int, help="only cells with this width")
    parser.add_argument("--versus", action="append", default=[],
                        help="a configuration to difference every other against (repeatable)")
    parser.add_argument("--instances", metavar="FIRST:STOP", type=instance_range,
                        help="only test instances FIRST to STOP - 1 (e.g. 32:64)")
    parser.add_argument("--gain-from", type=float, metavar="SECONDS",
                        help="add each configuration's gain from this smaller time budget")
    parser.add_argument("--list", action="store_true", help="print the configurations and stop")
    parser.add_argument("--against", metavar="OLD_DB",
                        help="compare the cells run again since this copy of the store")
    parser.add_argument("--replaced", action="store_true",
                        help="compare the cells run again with the rows they replaced")
    args = parser.parse_args(argv)
    if args.gain_from is not None and (args.seconds is None or args.gain_from >= args.seconds):
        sys.exit("--gain-from needs --seconds, and a smaller budget than it")
    with Store(args.db, create=False) as store:
        rows = store.rows()
    relative = row_speeds(rows)
    for r in rows:
        r["relative_speed"] = relative[r["config_hash"]]
    if args.instances is not None:
        rows = [r for r in rows if r["instance"] in range(*args.instances)]
    if not rows:
        sys.exit(f"{args.db} holds no results" + (
            f" on instances {args.instances[0]}:{args.instances[1]}" if args.instances else ""))
    tasks = sorted({r["task"] for r in rows})
    unknown = sorted(set(args.task or []) - set(tasks))
    if unknown:
        sys.exit(f"--task {', '.join(unknown)}: not in {args.db}; its tasks: {', '.join(tasks)}")
    if args.against:
        with Store(args.against, create=False) as store:
            print(rerun_table(store.rows(), rows))
        return
    if args.replaced:
        print(rerun_table(replaced_rows(args.db), rows, same_time=True))
        return
    names = sorted({label(r) for r in rows})
    if args.list:
        print("\n".join(names))
        return
    missing = [v for v in args.versus if v not in names]
    if missing:
        sys.exit(f"--versus {', '.join(missing)}: no such configuration in {args.db}; "
                 f"its configurations: {', '.join(names)}")
    grouped = group(rows)
    cells = {cell: configs for cell, configs in grouped.items()
             if (not args.task or cell[0] in args.task)
             and (args.seconds is None or cell[1] == args.seconds)
             and (args.width is None or cell[3] == args.width)}
    if not cells:
        sys.exit(f"no cell of {args.db} matches --task/--seconds/--width")

    def earlier(cell: Cell) -> tuple[float, dict[str, dict[int, float]]] | None:
        if args.gain_from is None:
            return None
        before = grouped.get((cell[0], args.gain_from, cell[2], cell[3]), {})
        return args.gain_from, returns_of(before)

    print("\n\n".join(table(cell, cells[cell], args.versus, earlier(cell))
                       for cell in sorted(cells, key=order_key)))


if __name__ == "__main__":
    main()
