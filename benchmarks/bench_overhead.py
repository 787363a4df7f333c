"""The benchmark harness's own cost on a suite, and the local executor against Ray.

Harness overhead is the share of a sweep's wall time spent outside `ceiling.search.solve`
(suite cells, key derivation, row building, one SQLite transaction per cell, the progress
callback); compile time is inside `solve` and so is not overhead. Target: < 5 %. Each repeat
sweeps the suite into a fresh store, so every cell runs; the Ray time includes starting the
local Ray instance and its workers' JAX start-up and compiles, the fixed price of `--ray`.

    python benchmarks/bench_overhead.py                       # suites/smoke.yaml, 3 repeats
    python benchmarks/bench_overhead.py --suite my.yaml --repeats 5 --no-ray

The script reports; it does not assert.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from ceiling.bench.run import Prepared, pending_cells, preflight, run_local, store_random_baselines
from ceiling.bench.store import Store
from ceiling.bench.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]


PHASES: dict[str, list[float]] = {}


def sweep_local(suite_path: Path, prepared: Prepared) -> tuple[float, float, int]:
    """(wall seconds, seconds inside solve, cells) of one sweep into a fresh store."""
    suite = load_suite(suite_path)
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "r.sqlite") as store:
        marks = [time.perf_counter()]
        cells, _ = pending_cells(suite, store)
        preflight(suite, cells, prepared)
        marks.append(time.perf_counter())
        store_random_baselines(suite, store, prepared)
        marks.append(time.perf_counter())
        stats = run_local(suite, store, cells, prepared, on_update=lambda s, c: None)
        marks.append(time.perf_counter())
    for name, a, b in zip(("load + build strategies", "random-policy baseline", "cells"),
                          marks, marks[1:], strict=False):
        PHASES.setdefault(name, []).append(b - a)
    return marks[-1] - marks[0], stats.solve_seconds, len(cells)


def sweep_ray(suite_path: Path) -> tuple[float, int]:
    from ceiling.bench.ray_executor import run_ray

    suite = load_suite(suite_path)
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "r.sqlite") as store:
        start = time.perf_counter()
        cells, _ = pending_cells(suite, store)
        stats = run_ray(suite, store, cells, max_retries=1)
        assert stats.failed == 0
        return time.perf_counter() - start, len(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default=str(ROOT / "suites" / "smoke.yaml"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    suite_path = Path(args.suite)

    # First sweep compiles (inside solve); later ones reuse the built strategies, which is
    # what a long sweep looks like after its first cell of each group.
    cold = sweep_local(suite_path, Prepared())
    warm_prepared = Prepared()
    sweep_local(suite_path, warm_prepared)
    warm = [sweep_local(suite_path, warm_prepared) for _ in range(args.repeats)]
    for label, (wall, solve, cells) in [("local, cold (compiles)", cold)] + [
            (f"local, warm #{i + 1}", w) for i, w in enumerate(warm)]:
        print(f"{label:24s} {cells} cells  wall {wall:7.3f} s  in solve {solve:7.3f} s  "
              f"overhead {100 * (wall - solve) / wall:5.1f} %  "
              f"({1000 * (wall - solve) / cells:.1f} ms/cell outside solve)")
    print("cold sweep phases: " + ", ".join(f"{name} {times[0]:.3f} s"
                                            for name, times in PHASES.items()))
    loop = PHASES["cells"][0]
    print(f"cold cell loop: overhead {100 * (loop - cold[1]) / loop:.1f} % of its wall "
          f"(the fixed start-up above is paid once per sweep)")
    per_cell = np.median([(w - s) / c for w, s, c in warm])
    print(f"median harness cost per cell (warm): {1000 * per_cell:.1f} ms")
    if not args.no_ray:
        wall, cells = sweep_ray(suite_path)
        print(f"ray (local instance)      {cells} cells  wall {wall:7.3f} s "
              f"({wall / cold[0]:.1f}x the cold local sweep, start-up included)")


if __name__ == "__main__":
    main()
