"""Rollouts a timed search does pinned to one core against unpinned, alone and two at once.

A sweep worker runs one cell per core (`ceiling bench --ray`); this measures what pinning
each worker to its own core (`ceiling.bench.pinning`) buys. Each configuration runs `ceiling
solve` (sampling from the shipped MAPPO on RWARE tiny-4ag-hard, 10 s x 64 by default) in
fresh processes, side by side in one run of this script, and prints the rollouts each did
and the ratio to the unpinned process alone:

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
        python benchmarks/pinning.py

Needs Linux and at least two cores; run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile


def solve(args: argparse.Namespace, instance: int, out: str, core: int | None
          ) -> subprocess.Popen[bytes]:
    command = ["ceiling", "solve", "--checkpoint", args.checkpoint, "--task", args.task,
               "--strategy", args.strategy, "--seconds", str(args.seconds), "--width",
               str(args.width), "--instance", str(instance), "--out", out, "--force"]
    if core is not None:
        command = ["taskset", "-c", str(core), *command]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def rollouts(path: str) -> int:
    with open(path) as handle:
        return int(json.load(handle)["rollouts"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="shipped:mappo")
    parser.add_argument("--task", default="rware:tiny-4ag-hard")
    parser.add_argument("--strategy", default="sampling")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--width", type=int, default=64)
    args = parser.parse_args(argv)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < 2:
        sys.exit("needs Linux and at least two usable cores")
    # (name, the cores of the processes that run at once; None: unpinned)
    configurations: list[tuple[str, list[int | None]]] = [
        ("one process, unpinned", [None]),
        ("one process, pinned", [cores[0]]),
        ("two at once, unpinned", [None, None]),
        ("two at once, pinned to their own cores", [cores[0], cores[1]]),
    ]
    results: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, placement in configurations:
            outs = [os.path.join(scratch, f"{len(results)}-{i}.json")
                    for i in range(len(placement))]
            processes = [solve(args, i, out, core)
                         for i, (out, core) in enumerate(zip(outs, placement, strict=True))]
            if any(process.wait() != 0 for process in processes):
                sys.exit(f"{name}: ceiling solve failed (run it by hand to see why)")
            results[name] = [rollouts(out) for out in outs]
    reference = results["one process, unpinned"][0]
    print(f"{args.strategy} from {args.checkpoint} on {args.task}, {args.seconds:g} s x "
          f"{args.width}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    print("| configuration | rollouts per process | ratio to one unpinned |")
    print("|---|---|---|")
    for name, counts in results.items():
        ratios = ", ".join(f"{count / reference:.2f}" for count in counts)
        print(f"| {name} | {', '.join(f'{count:,}' for count in counts)} | {ratios} |")


if __name__ == "__main__":
    main()
