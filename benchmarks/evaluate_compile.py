"""Zero-shot evaluation's programs compiled with and without LLVM's expensive passes, side by
side: compile seconds, run seconds on 16 and 128 test instances, and whether the returns are
the same.

`ceiling.policies.rollout.evaluate_batch` is compiled with `RUN_ONCE_COMPILER_OPTIONS` (what
`ceiling evaluate` and the demo's zero-shot table wait for is the compile, not the run). This
compiles each (checkpoint, greedy or sampled) evaluation both ways in one process and prints
a row per program:

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
        python benchmarks/evaluate_compile.py

No compilation cache is used (each program is compiled here, not read from disk).
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from ceiling.compile_options import RUN_ONCE_COMPILER_OPTIONS
from ceiling.policies import rollout
from ceiling.policies.checkpoint import load_checkpoint
from ceiling.policies.shipped import shipped_checkpoint
from ceiling.tasks import instances, make

DEFAULT = ["connector:con-5x5x3a:sable", "rware:tiny-2ag-hard:ippo", "rware:tiny-2ag-hard:sable"]


def measure(task_name: str, label: str, greedy: bool, options: dict | None
            ) -> tuple[float, float, float, np.ndarray]:
    """(compile seconds, run seconds on 16 and on 128 instances, the 128 returns)."""
    checkpoint = load_checkpoint(shipped_checkpoint(task_name, label), task=task_name)
    task = make(task_name)
    body = rollout.evaluate_batch.__wrapped__  # the function under the library's jit

    program = jax.jit(lambda params, keys, key: body(task, checkpoint.policy, params, keys,
                                                     key, greedy),
                      compiler_options=options)
    timings, returns = [], np.empty(0)
    compile_seconds = 0.0
    for count in (16, 128):
        keys = instances(task_name, "test", count)
        start = time.perf_counter()
        compiled = program.lower(checkpoint.params, keys, jax.random.PRNGKey(0)).compile()
        if count == 16:
            compile_seconds = time.perf_counter() - start
        start = time.perf_counter()
        episodes = jax.block_until_ready(compiled(checkpoint.params, keys,
                                                  jax.random.PRNGKey(0)))
        timings.append(time.perf_counter() - start)
        returns = np.asarray(episodes.total_return)
    return compile_seconds, timings[0], timings[1], returns


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", default=DEFAULT, metavar="TASK:LABEL",
                        help="shipped checkpoints, e.g. rware:tiny-2ag-hard:ippo")
    args = parser.parse_args(argv)
    header = ["program", "compile (default)", "compile (run-once)", "ratio",
              "run 16 / 128 (default)", "run 16 / 128 (run-once)", "same returns"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    totals = np.zeros(2)
    for spec in args.checkpoints:
        task_name, _, label = spec.rpartition(":")
        for greedy in (True, False):
            default = measure(task_name, label, greedy, None)
            once = measure(task_name, label, greedy, RUN_ONCE_COMPILER_OPTIONS)
            totals += (default[0], once[0])
            print(f"| {task_name} {label} {'greedy' if greedy else 'sampled'} | "
                  f"{default[0]:.1f} s | {once[0]:.1f} s | {once[0] / default[0]:.2f} | "
                  f"{default[1]:.2f} / {default[2]:.2f} s | {once[1]:.2f} / {once[2]:.2f} s | "
                  f"{'yes' if np.array_equal(default[3], once[3]) else 'NO'} |", flush=True)
    print(f"\ncompile, all programs: {totals[0]:.1f} s default, {totals[1]:.1f} s run-once "
          f"({totals[1] / totals[0]:.2f}x)")


if __name__ == "__main__":
    main()
