"""Start-up times of the `ceiling` command, this tree against an earlier one, in one run.

Each command runs as a fresh process (what a user waits for), alternating between the trees so
that a busy machine slows both alike; the table gives the median wall time of each and their
ratio. The earlier tree is any source checkout of ceiling, e.g. the last commit:

    git archive HEAD | tar -x -C /tmp/ceiling-before
    python benchmarks/startup.py --before /tmp/ceiling-before --repeats 3

`solve (warm)` runs after one untimed run has filled ceiling's compilation cache (a folder made
for the benchmark); the other rows run with the cache off (`CEILING_COMPILE_CACHE=off`), as on
a first run. The script reports; it does not assert.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = str(ROOT / "ceiling/checkpoints/rware-tiny-2ag-hard/mappo")
LOAD = ("from ceiling.policies.checkpoint import load_checkpoint; "
        f"load_checkpoint('{CHECKPOINT}')")
COMMANDS = {
    "ceiling tasks": ["-m", "ceiling.cli", "tasks"],
    "load a checkpoint (python -c)": ["-c", LOAD],
    "greedy solve": ["-m", "ceiling.cli", "solve", "--checkpoint", CHECKPOINT, "--task",
                     "rware:tiny-2ag-hard", "--strategy", "greedy", "--rollouts", "1"],
}


def timed(tree: Path, argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of `python ARGV` run from `tree` (Python puts the working
    directory first on its path, so that tree's `ceiling` is the one imported)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    finished = subprocess.run([sys.executable, *argv], cwd=tree, capture_output=True, text=True,
                              env={**env, "PYTHONPATH": str(tree)}, timeout=900)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if finished.returncode != 0:
        raise SystemExit(f"{argv} failed in {tree}:\n{finished.stderr[-2000:]}")
    return seconds, (after.ru_utime + after.ru_stime) - (used.ru_utime + used.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="an earlier source tree")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cold = {**os.environ, "CEILING_COMPILE_CACHE": "off"}
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for name, argv in COMMANDS.items():
        for _ in range(args.repeats):
            for label, tree in (("before", args.before.resolve()), ("now", ROOT)):
                times.setdefault((name, label), []).append(timed(tree, argv, cold))
    with tempfile.TemporaryDirectory() as cache:
        warm = {**os.environ, "CEILING_COMPILE_CACHE": cache}
        timed(ROOT, COMMANDS["greedy solve"], warm)  # fills the cache
        times[("greedy solve (warm cache)", "now")] = [
            timed(ROOT, COMMANDS["greedy solve"], warm) for _ in range(args.repeats)]
    print(f"median of {args.repeats} runs, alternating; wall seconds (CPU seconds); "
          f"before = {args.before}")
    print("| command | before | now | now / before (wall) |")
    print("|---|---|---|---|")

    def cell(runs: list[tuple[float, float]]) -> tuple[float, str]:
        wall = statistics.median(r[0] for r in runs)
        return wall, f"{wall:.1f} s ({statistics.median(r[1] for r in runs):.1f} s)"

    for name in [*COMMANDS, "greedy solve (warm cache)"]:
        now, shown = cell(times[(name, "now")])
        if (name, "before") not in times:
            print(f"| {name} | – | {shown} | – |")
        else:
            then, shown_before = cell(times[(name, "before")])
            print(f"| {name} | {shown_before} | {shown} | {now / then:.2f} |")


if __name__ == "__main__":
    main()
