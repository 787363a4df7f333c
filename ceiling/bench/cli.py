"""`ceiling bench SUITE.yaml --db results.sqlite` and `ceiling report results.sqlite --out DIR`.

Thin: validate the suite (every problem at once), open the store, run the missing cells with
the chosen executor under a progress bar, and print what was done. Handlers raise
`CeilingError`; `ceiling.cli.main` prints it as one `ceiling: error: ...` and exits 2.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any


def _progress(enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("done {task.fields[done]} · running {task.fields[running]} · "
                               "failed {task.fields[failed]}"),
                    TimeElapsedColumn(), TextColumn("{task.fields[cell]}"),
                    console=Console(stderr=True), disable=not enabled, transient=False)


def cmd_bench(args: argparse.Namespace) -> int:
    from ceiling.bench.run import (
        Prepared,
        SweepStats,
        pending_cells,
        preflight,
        run_local,
        store_random_baselines,
    )
    from ceiling.bench.store import Store
    from ceiling.bench.suite import load_suite

    suite = load_suite(args.suite)
    if args.compile_cache:
        import jax

        # Persist compiled programs: a resumed sweep (or the next suite) skips the compiles.
        jax.config.update("jax_compilation_cache_dir", args.compile_cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    if args.ray_address is not None:
        args.ray = True
    if args.dry_run and not Path(args.db).exists():  # a dry run creates nothing
        cells = suite.cells()
        print(f"suite {suite.name}: {len(cells)} cells, 0 already in {args.db}, "
              f"{len(cells)} to run", flush=True)
        preflight(suite, cells, Prepared())  # bad option values, inexact rollout budgets
        return 0
    with Store(args.db) as store:
        cells, skipped = pending_cells(suite, store)
        print(f"suite {suite.name}: {len(cells) + skipped} cells, {skipped} already in "
              f"{args.db}, {len(cells)} to run", flush=True)
        prepared = Prepared()
        preflight(suite, cells, prepared)  # before any cell runs, and in a dry run
        if args.dry_run or not cells:
            return 0
        store_random_baselines(suite, store, prepared)
        executor = "ray" if args.ray else "local"
        command = ["ceiling", "bench", args.suite, "--db", args.db]
        command += ["--ray-address", args.ray_address] if args.ray_address else (
            ["--ray"] if args.ray else [])

        def record_sweep() -> None:  # once cells can run: a refused Ray join records nothing
            store.add_sweep(suite.name, suite.path, shlex.join(command), executor, len(cells))

        stats = SweepStats(total=len(cells))
        with _progress(not args.quiet) as progress:
            bar = progress.add_task(f"{suite.name}", total=len(cells), done=0, running=0,
                                    failed=0, cell="")

            def on_update(current: SweepStats, cell: str) -> None:
                progress.update(bar, completed=current.done + current.failed,
                                done=current.done, running=current.running,
                                failed=current.failed, cell=cell)

            if args.ray:
                from ceiling.bench.ray_executor import run_ray

                run_ray(suite, store, cells, address=args.ray_address, on_update=on_update,
                        stats=stats, max_retries=args.retries, on_start=record_sweep)
            else:
                record_sweep()
                run_local(suite, store, cells, prepared, on_update=on_update, stats=stats)
        if args.ray:  # cells ran side by side: solve time adds up to more than the wall
            timing = (f"{stats.solve_seconds:.1f} s inside solve on the workers, "
                      f"{stats.solve_seconds / max(stats.wall_seconds, 1e-9):.2f} cells in "
                      f"parallel on average")
        else:
            share = 1.0 - stats.solve_seconds / stats.wall_seconds if stats.wall_seconds else 0.0
            timing = f"harness overhead {100 * share:.1f} %"
        print(f"suite {suite.name}: {stats.done} cells stored, {stats.failed} failed, "
              f"{skipped} skipped; {stats.wall_seconds:.1f} s wall, {timing} ({executor})",
              flush=True)
    return 1 if stats.failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    from ceiling.bench.report import write_report

    written = write_report(args.db, args.out, force=args.force)
    for path in written:
        print(path)
    return 0


def add_bench_parsers(sub: Any) -> None:
    p = sub.add_parser("bench", help="run a benchmark suite into a resumable SQLite store")
    p.add_argument("suite", help="suite YAML (see suites/smoke.yaml)")
    p.add_argument("--db", required=True, help="results database; stored cells are skipped")
    p.add_argument("--ray", action="store_true", help="run cells as tasks on a local Ray")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="join an existing Ray cluster (implies --ray)")
    p.add_argument("--retries", type=int, default=3, help="Ray retries per cell")
    p.add_argument("--compile-cache", default=None, metavar="DIR",
                   help="persistent JAX compilation cache, so a resumed sweep skips compiles "
                        "(also JAX_COMPILATION_CACHE_DIR)")
    p.add_argument("--dry-run", action="store_true",
                   help="validate (building every strategy, checking every budget) and count "
                        "cells only")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("report", help="tables and plots (HTML + Markdown) from a results store")
    p.add_argument("db", help="results database written by `ceiling bench`")
    p.add_argument("--out", default="report", help="output directory")
    p.add_argument("--force", action="store_true", help="overwrite an existing report")
    p.set_defaults(func=cmd_report)
