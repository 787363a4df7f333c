"""Zero-shot evaluation's compile, side by side: with and without LLVM's expensive passes, and
greedy and sampled actions as two programs or as one.

`ceiling.policies.rollout.evaluate_batch` compiles one program per (task, network) with
`RUN_ONCE_COMPILER_OPTIONS`, the mode (greedy or sampled) a traced argument: what `ceiling
evaluate` and the demo's zero-shot table wait for is the compile, not the run. This compiles
each checkpoint's evaluation every way in one process and prints a row per checkpoint:

- default options vs run-once, each with the mode static (two programs, as before 2026-12-08);
- two static programs vs the one traced program, both run-once (what the library does now);

with compile seconds, run seconds on 128 test instances, and whether every variant returns the
same 128 greedy and 128 sampled returns.

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
        python benchmarks/evaluate_compile.py

No compilation cache is used (each program is compiled here, not read from disk).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ceiling.compile_options import RUN_ONCE_COMPILER_OPTIONS
from ceiling.policies.checkpoint import load_checkpoint
from ceiling.policies.rollout import evaluate_episodes
from ceiling.policies.shipped import shipped_checkpoint
from ceiling.tasks import instances, make

DEFAULT = ["connector:con-5x5x3a:sable", "rware:tiny-2ag-hard:ippo", "rware:tiny-2ag-hard:sable"]
INSTANCES = 128


def measure(task_name: str, label: str, options: dict | None, traced: bool
            ) -> tuple[float, float, dict[bool, np.ndarray]]:
    """(compile seconds, run seconds, {greedy: the 128 returns}) of greedy and sampled
    evaluation: one program with the mode traced, or two with it static."""
    checkpoint = load_checkpoint(shipped_checkpoint(task_name, label), task=task_name)
    task, policy = make(task_name), checkpoint.policy

    def body(params: Any, keys: jax.Array, key: jax.Array, greedy: Any) -> Any:
        return evaluate_episodes(task, policy, params, keys, key, greedy)

    keys = instances(task_name, "test", INSTANCES)
    args = (checkpoint.params, keys, jax.random.PRNGKey(0))
    compile_seconds = run_seconds = 0.0
    returns = {}
    if traced:
        start = time.perf_counter()
        compiled = jax.jit(body, compiler_options=options).lower(
            *args, jnp.asarray(True)).compile()
        compile_seconds = time.perf_counter() - start
        programs = {greedy: (lambda g=greedy: compiled(*args, jnp.asarray(g)))
                    for greedy in (True, False)}
    else:
        programs = {}
        for greedy in (True, False):
            start = time.perf_counter()
            one = jax.jit(lambda p, k, key, g=greedy: body(p, k, key, g),
                          compiler_options=options).lower(*args).compile()
            compile_seconds += time.perf_counter() - start
            programs[greedy] = lambda one=one: one(*args)
    for greedy, program in programs.items():
        start = time.perf_counter()
        episodes = jax.block_until_ready(program())
        run_seconds += time.perf_counter() - start
        returns[greedy] = np.asarray(episodes.total_return)
    return compile_seconds, run_seconds, returns


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", default=DEFAULT, metavar="TASK:LABEL",
                        help="shipped checkpoints, e.g. rware:tiny-2ag-hard:ippo")
    args = parser.parse_args(argv)
    variants = {"default, 2 programs": (None, False),
                "run-once, 2 programs": (RUN_ONCE_COMPILER_OPTIONS, False),
                "run-once, 1 program": (RUN_ONCE_COMPILER_OPTIONS, True)}
    header = (["checkpoint"] + [f"compile ({name})" for name in variants]
              + [f"run greedy+sampled, {INSTANCES} ({name})" for name in variants]
              + ["same returns"])
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    totals = np.zeros(len(variants))
    for spec in args.checkpoints:
        task_name, _, label = spec.rpartition(":")
        results = [measure(task_name, label, options, traced)
                   for options, traced in variants.values()]
        totals += [result[0] for result in results]
        same = all(np.array_equal(result[2][greedy], results[0][2][greedy])
                   for result in results for greedy in (True, False))
        print(f"| {task_name} {label} | "
              + " | ".join(f"{result[0]:.1f} s" for result in results) + " | "
              + " | ".join(f"{result[1]:.2f} s" for result in results)
              + f" | {'yes' if same else 'NO'} |", flush=True)
    print("\ncompile, all checkpoints: "
          + ", ".join(f"{total:.1f} s {name} ({total / totals[0]:.2f}x)"
                      for name, total in zip(variants, totals, strict=True)))


if __name__ == "__main__":
    main()
