"""Does a cell's speed probe track what its time budget buys? Rollouts, CPU share and probe of
one timed cell under three conditions of the machine, side by side in one run.

Every `ceiling bench` cell records its CPU share and its speed probe (`ceiling.bench.speed`).
This runs one sweep cell the way a sweep does (`ceiling.bench.run.compute_cell`: sampling from
the shipped MAPPO on RWARE tiny-2ag-hard, 5 s x 64 by default), pinned to one core, over
rounds of three conditions in turn:

- idle: nothing else on the machine;
- shared core: a busy process on the cell's own core (what the CPU share catches);
- other core busy: a process streaming a large array through memory on the other core (the
  cell keeps its whole core; only its speed can tell).

It prints, per condition, the mean rollouts, CPU share and probe, and the rollouts and probe
as ratios to the idle condition's: a probe that tracks the budget moves with the rollouts.

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
        python benchmarks/speed_probe.py

Needs Linux and at least two cores; run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# The competitors: a spinning interpreter, and a loop that streams 512 MB through memory.
SPIN = "while True:\n    pass\n"
STREAM = ("import numpy as np\na = np.ones(64 * 2 ** 20)\nb = np.empty_like(a)\n"
          "while True:\n    np.multiply(a, 1.0001, out=b)\n    a, b = b, a\n")

SUITE = """name: speed-probe
instances: 1
seeds: [0]
widths: [{width}]
budgets:
  - seconds: {seconds}
tasks:
  {task}:
    checkpoints: [{checkpoint}]
strategies:
  - {strategy}
"""


def competitor(code: str, core: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["taskset", "-c", str(core), sys.executable, "-c", code],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="rware:tiny-2ag-hard")
    parser.add_argument("--checkpoint", default="shipped:mappo")
    parser.add_argument("--strategy", default="sampling")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < 2:
        sys.exit("needs Linux and at least two usable cores")
    ours, other = cores[-1], cores[0]
    os.sched_setaffinity(0, {ours})

    from ceiling.bench.run import Prepared, compute_cell
    from ceiling.bench.suite import load_suite

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "suite.yaml"
        path.write_text(SUITE.format(**vars(args)))
        suite = load_suite(path)
    (cell,) = suite.cells()
    prepared = Prepared()
    compute_cell(cell, suite.name, prepared)  # compile the search and the probe first
    conditions = {"idle": None, "shared core": (SPIN, ours), "other core busy": (STREAM, other)}
    found: dict[str, list[tuple[int, float, float]]] = {name: [] for name in conditions}
    for _ in range(args.rounds):
        for name, busy in conditions.items():
            process = competitor(*busy) if busy else None
            try:
                time.sleep(1.0 if process else 0.0)  # let the competitor get going
                row, _ = compute_cell(cell, suite.name, prepared)
            finally:
                if process is not None:
                    process.kill()
                    process.wait()
            found[name].append((row.rollouts_done, float(row.cpu_share or 0.0),
                                float(row.speed or 0.0)))
    print(f"{cell.task}, {cell.strategy} from {cell.checkpoint.spec}, {args.seconds:g} s x "
          f"{args.width}, {args.rounds} rounds; the cell pinned to core {ours}, the other "
          f"core {other}\n")
    idle_rollouts, _, idle_speed = np.mean(found["idle"], axis=0)
    header = ["condition", "rollouts", "CPU share", "probe (iterations/s)",
              "rollouts / idle", "probe / idle"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for name, results in found.items():
        rollouts, share, speed = np.mean(results, axis=0)
        print(f"| {name} | {rollouts:,.0f} | {share:.2f} | {speed:,.0f} | "
              f"{rollouts / idle_rollouts:.2f} | {speed / idle_speed:.2f} |")


if __name__ == "__main__":
    main()
