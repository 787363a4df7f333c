"""`ceiling bench SUITE.yaml --db results.sqlite` and `ceiling report results.sqlite --out DIR`.

Thin: validate the suite (every problem at once, option values, budgets and widths against
memory included), read what the store already holds, bring Ray up if asked, and only then
create or open the store for writing and run the missing cells under a progress display; print
what was done. So a suite that cannot run, or a Ray cluster that cannot be joined, leaves no
database file behind. Handlers raise `CeilingError`; `ceiling.cli.main` prints it as one
`ceiling: error: ...` and exits 2.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from pathlib import Path
from typing import Any

from ceiling.errors import CeilingError


class _SweepProgress:
    """The sweep's progress on stderr: a live bar in a terminal; in a log, a line per cell
    that failed and otherwise at most one line every `interval` seconds."""

    def __init__(self, name: str, total: int, enabled: bool, interval: float = 15.0) -> None:
        from ceiling.progress import Progress, stderr_is_terminal

        self.live = stderr_is_terminal()
        self.enabled, self.failed = enabled, 0
        self._plain = None
        self._rich: Any = None
        if not enabled:
            return
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("done {task.fields[done]} · running {task.fields[running]} · "
                           "failed {task.fields[failed]}"),
                TimeElapsedColumn(), TextColumn("{task.fields[cell]}"),
                console=Console(stderr=True), transient=False)
            self._bar = self._rich.add_task(name, total=total, done=0, running=0, failed=0,
                                            cell="")
        else:
            self._plain = Progress(f"suite {name}", total=total, interval=interval, live=False)

    def __enter__(self) -> _SweepProgress:
        for shown in (self._rich, self._plain):
            if shown is not None:
                shown.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        for shown in (self._rich, self._plain):
            if shown is not None:
                shown.__exit__(*exc)

    def update(self, stats: Any, cell: str) -> None:
        if self._rich is not None:
            self._rich.update(self._bar, completed=stats.done + stats.failed, done=stats.done,
                              running=stats.running, failed=stats.failed, cell=cell)
        elif self._plain is not None:
            news = stats.failed > self.failed
            self.failed = stats.failed
            self._plain.update(f"done {stats.done}, running {stats.running}, failed "
                               f"{stats.failed}" + (f"; now {cell}" if cell else ""),
                               completed=stats.done + stats.failed, announce=news)


def check_db_path(db: str) -> None:
    """Refuse a --db that could never be written, before the suite is validated or run."""
    from ceiling.outputs import check_writable

    # An existing store is appended to; its folder must still take SQLite's journal files.
    check_writable(db, force=True, flag="--db", example="results.sqlite")


def cmd_bench(args: argparse.Namespace) -> int:
    from ceiling.bench.run import (
        Prepared,
        SweepStats,
        cells_to_rerun,
        run_local,
        store_random_baselines,
        validate_suite,
    )
    from ceiling.bench.store import CONTENDED_CPU_SHARE, Store

    integrity = "full" if args.full_check else "quick"
    if args.dry_run and Path(args.db).is_dir():
        raise CeilingError(f"--db {args.db} is a directory; give a file path")
    if not args.dry_run:
        check_db_path(args.db)
    db_exists = Path(args.db).is_file()
    shares: dict[str, float | None] = {}  # stored cells: their CPU share
    speeds: dict[str, float | None] = {}  # stored cells: their machine-speed probe
    stored: dict[str, Any] = {}  # stored cells: when they were stored
    identities: dict[str, Any] = {}  # stored cells: what they searched, and with which params
    if db_exists:  # read what is there (and check it) before anything else
        with Store(args.db, create=False, integrity=integrity) as store:
            shares = store.cpu_shares()
            speeds = store.speeds()
            stored = store.stored_times()
            identities = store.cell_identities()
    if args.ray_address is not None:
        args.ray = True
    if args.compile_cache:
        import jax

        # Persist compiled programs: a resumed sweep (or the next suite) skips the compiles.
        jax.config.update("jax_compilation_cache_dir", args.compile_cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    prepared = Prepared()
    # Workers on a cluster have their own memory: the check is for this machine's.
    with _phase("validating the suite (building every strategy, checking budgets and memory)",
                enabled=not args.quiet):
        suite = validate_suite(args.suite, prepared, memory=args.ray_address is None,
                               tasks=args.tasks)
    all_cells = suite.cells()
    again = cells_to_rerun(all_cells, shares, args.rerun or (), stored, speeds)
    cells = [cell for cell in all_cells if cell.key not in shares or cell.key in again]
    skipped = len(all_cells) - len(cells)
    part = f" (tasks {', '.join(suite.tasks)} only)" if args.tasks else ""
    kinds = [kind for kind in args.rerun or () if kind != "superseded"]  # it says its own
    rerun = (f" ({len(again)} of them again, replacing their stored rows: --rerun "
             f"{' '.join(kinds)})" if kinds else "")
    print(f"suite {suite.name}{part}: {len(all_cells)} cells, {skipped} already in {args.db}, "
          f"{len(cells)} to run{rerun}", flush=True)
    superseding = _superseded(args, all_cells, identities, shares, integrity)
    if args.dry_run or not cells:
        return 0
    executor = "ray" if args.ray else "local"
    command = ["ceiling", "bench", args.suite, "--db", args.db]
    command += ["--tasks", ",".join(args.tasks)] if args.tasks else []
    command += ["--ray-address", args.ray_address] if args.ray_address else (
        ["--ray"] if args.ray else [])
    command += [part for which in args.rerun or () for part in ("--rerun", which)]
    stats = SweepStats(total=len(cells), skipped=skipped, replacing=frozenset(again),
                       superseding=superseding)
    session: Any = contextlib.nullcontext()
    if args.ray:
        from ceiling.bench.ray_executor import ray_session

        session = ray_session(args.ray_address)  # joined before the store is created
    with session, Store(args.db, integrity=integrity) as store:
        with _phase("the uniform random policy's returns (the normalisation's minimum)",
                    enabled=not args.quiet):
            store_random_baselines(suite, store, prepared)
        store.add_sweep(suite.name, suite.path, shlex.join(command), executor, len(cells))
        with _SweepProgress(suite.name, len(cells), enabled=not args.quiet) as progress:
            if args.ray:
                from ceiling.bench.ray_executor import run_ray

                run_ray(suite, store, cells, address=args.ray_address,
                        on_update=progress.update, stats=stats, max_retries=args.retries)
            else:
                run_local(suite, store, cells, prepared, on_update=progress.update,
                          stats=stats)
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
    if stats.contended:
        print(f"warning: {stats.contended} of the {stats.done} cells stored had less than "
              f"{100 * CONTENDED_CPU_SHARE:.0f} % of a CPU core while they ran: another process "
              "competed for the machine, so their time budgets bought fewer rollouts than on an "
              "idle one; `ceiling report` lists them. For comparable cells, run sweeps with "
              "nothing else running, one cell per core; `--rerun contended` runs them again",
              file=sys.stderr, flush=True)
    _warn_slow(args.db, {cell.key for cell in cells if cell.seconds is not None}, stats.done)
    return 1 if stats.failed else 0


def _warn_slow(db: str, ran: set[str], done: int) -> None:
    """Say which of the cells just stored ran on a slower machine than the store's typical
    cell (the speed probe, `ceiling.bench.speed`), as the CPU share's warning does for a busy
    one."""
    from ceiling.bench.speed import SLOW_SPEED, relative_speeds, slow_keys
    from ceiling.bench.store import Store

    with Store(db, create=False) as store:
        speeds = store.speeds()
    relative = relative_speeds(speeds)
    slow = sorted(float(relative[key] or 0.0) for key in slow_keys(speeds) & ran)
    if slow:
        print(f"warning: {len(slow)} of the {done} cells stored ran on a machine slower than "
              f"{100 * SLOW_SPEED:.0f} % of the store's median speed (their speed probe: "
              f"{slow[0]:.2f} to {slow[-1]:.2f} of it), so their time budgets bought fewer "
              "rollouts than its other cells'; `ceiling report` lists them and `--rerun slow` "
              "runs them again", file=sys.stderr, flush=True)


def _superseded(args: argparse.Namespace, cells: list[Any], identities: dict[str, Any],
                shares: dict[str, float | None], integrity: str) -> dict[str, tuple[str, ...]]:
    """Rows stored for an earlier checkpoint under one of the suite's labels (a retrained
    shipped checkpoint, say). Without `--rerun superseded`: a warning, as the report would pool
    them with the new checkpoint's. With it: those whose cells the new checkpoint has stored
    already move to the store's `replaced` table now, and the returned {cell key: old config
    hashes} lists the rest, each to move as its cell's new row is stored."""
    from ceiling.bench.run import superseded_rows
    from ceiling.bench.store import Store

    found = superseded_rows(cells, identities)
    if not found:
        return {}
    if "superseded" not in (args.rerun or ()):
        labels = sorted({f"{c.task} {c.checkpoint.spec}" for c in cells if c.key in found})
        print(f"warning: {len(found)} of the suite's cells are stored for an earlier checkpoint "
              f"under the same label ({'; '.join(labels)}): the report pools the old rows with "
              "the new ones as one checkpoint's. `--rerun superseded` moves the old rows to the "
              "store's `replaced` table as the new ones are stored", file=sys.stderr, flush=True)
        return {}
    pending = {key: olds for key, olds in found.items() if key not in shares}
    print(f"--rerun superseded: {len(pending)} of the cells to run take the place of rows "
          "stored for an earlier checkpoint under the same label", flush=True)
    stored = [old for key, olds in found.items() if key in shares for old in olds]
    if stored:
        if not args.dry_run:
            with Store(args.db, integrity=integrity) as store:
                store.retire(stored)
        print(f"--rerun superseded: {'would move' if args.dry_run else 'moved'} {len(stored)} "
              "rows of an earlier checkpoint, whose cells the new one has stored already, to "
              "the store's `replaced` table", flush=True)
    return pending


def _phase(description: str, enabled: bool = True) -> Any:
    from ceiling.progress import Progress

    return Progress(description, enabled=enabled)


def cmd_report(args: argparse.Namespace) -> int:
    from ceiling.bench.report import write_report

    with _phase(f"writing the report of {args.db} to {args.out}"):
        written, problems = write_report(args.db, args.out, force=args.force,
                                         integrity="full" if args.full_check else "quick")
    for problem in problems:
        print(f"ceiling: warning: {problem}", file=sys.stderr)
    for path in written:
        print(path)
    return 0


def _task_list(text: str) -> list[str]:
    tasks = [t.strip() for t in text.split(",") if t.strip()]
    if not tasks:
        raise argparse.ArgumentTypeError("give one or more task names, comma-separated")
    return tasks


def _rerun_kind(text: str) -> str:
    from ceiling.bench.store import RERUN_CHOICES, rerun_before

    if text in RERUN_CHOICES and text != "before=TIME":
        return text
    if text.startswith("before="):
        try:
            rerun_before(text)
        except CeilingError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return text
    kinds = ", ".join(sorted(RERUN_CHOICES))
    raise argparse.ArgumentTypeError(f"{text!r} is not a kind of cell to run again; valid: "
                                     f"{kinds}")


def add_bench_parsers(sub: Any) -> None:
    from ceiling.bench.store import RERUN_CHOICES

    p = sub.add_parser("bench", help="run a benchmark suite into a resumable SQLite store")
    p.add_argument("suite", help="suite YAML (see suites/smoke.yaml)")
    p.add_argument("--db", required=True, help="results database; stored cells are skipped")
    p.add_argument("--ray", action="store_true", help="run cells as tasks on a local Ray")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="join an existing Ray cluster (implies --ray)")
    p.add_argument("--retries", type=int, default=3, help="Ray retries per cell")
    p.add_argument("--compile-cache", default=None, metavar="DIR",
                   help="persistent JAX compilation cache that keeps every compiled program, "
                        "so a resumed sweep skips its compiles (also JAX_COMPILATION_CACHE_DIR; "
                        "by default ceiling keeps the slow ones in ~/.cache/ceiling/jax)")
    p.add_argument("--tasks", type=_task_list, default=None, metavar="TASK[,TASK]",
                   help="run only these of the suite's tasks (a sweep in parts: the cells "
                        "are the whole suite's, so the parts fill one store); the others are "
                        "neither checked nor run")
    p.add_argument("--rerun", action="append", type=_rerun_kind, metavar="KIND",
                   help="also run again the suite's stored searching cells of this kind, "
                        "replacing their rows (the old ones are kept in the store's `replaced` "
                        "table): " + "; ".join(f"{k}: {v}" for k, v in RERUN_CHOICES.items())
                        .replace("%", "%%") + " (repeatable)")  # argparse formats help with %
    p.add_argument("--dry-run", action="store_true",
                   help="validate (building every strategy, checking every budget and width) "
                        "and count cells only")
    p.add_argument("--full-check", action="store_true",
                   help="check the whole store (indexes too) when opening it, not only the "
                        "quick structural check that always runs")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("report", help="tables and plots (HTML + Markdown) from a results store")
    p.add_argument("db", help="results database written by `ceiling bench`")
    p.add_argument("--out", default="report", help="output directory")
    p.add_argument("--force", action="store_true", help="overwrite an existing report")
    p.add_argument("--full-check", action="store_true",
                   help="check the whole store (indexes too) when opening it, not only the "
                        "quick structural check that always runs")
    p.set_defaults(func=cmd_report)
