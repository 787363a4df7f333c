"""The Ray executor: each cell a Ray task; workers compute and return, the driver stores.

Only the driver writes the SQLite store (one transaction per returned cell), so a sweep on a
cluster needs no shared filesystem and no database locking, and a killed driver resumes like a
local sweep. A worker keeps its loaded checkpoints and built strategies in a process-wide cache,
so cells of one (task, checkpoint, strategy, options, width) landing on the same worker compile
once. A worker that dies is retried by Ray (`max_retries`); a `CeilingError` inside a cell
(bad input, a failed verification) is deterministic, is not retried, and is recorded as a
failure. Each worker pins itself to a core no other worker on its machine holds
(`ceiling.bench.pinning`). Workers need ceiling installed (same version) and the checkpoint
paths readable.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from ceiling.bench.pinning import pin_worker
from ceiling.bench.run import Prepared, SweepStats, compute_cell, record_outcome
from ceiling.bench.store import Row, Store
from ceiling.bench.suite import Cell, Suite
from ceiling.errors import CeilingError

_WORKER_CACHE: Prepared | None = None


def ray_cell(cell: Cell, suite_name: str) -> tuple[Row | None, str | None, float]:
    """Runs on a worker: (row, None, solve seconds) or (None, error, 0)."""
    global _WORKER_CACHE
    if _WORKER_CACHE is None:
        pin_worker()  # one core per worker, before the first cell compiles (ceiling.bench.pinning)
        _WORKER_CACHE = Prepared()
    try:
        row, solve_seconds = compute_cell(cell, suite_name, _WORKER_CACHE)
    except CeilingError as err:
        return None, str(err), 0.0
    return row, None, solve_seconds


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast when nothing listens at a `HOST:PORT` (or `ray://HOST:PORT`) address: Ray's
    own join keeps retrying a closed port for many minutes without a word. Other forms
    (`auto`, a bare host) are left to Ray."""
    import socket

    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as err:
        raise CeilingError(
            f"cannot join the Ray cluster at {address!r}: nothing answers at {host}:{port} "
            f"({err.strerror or err}). Start a head there (`ray start --head --port {port}`) or "
            "pass the address `ray start` printed (HOST:PORT of its GCS, default port 6379)."
        ) from None


def _auth_hint() -> str:
    """Ray's failed join says nothing about authentication; clusters that `ray start` brings
    up under Ray 2.60 demand a token, and a driver without RAY_AUTH_MODE=token is refused."""
    if os.environ.get("RAY_AUTH_MODE") == "token":
        return ""
    return ("\nIf the cluster uses token authentication (`ray start` does by default in recent "
            "Ray), set RAY_AUTH_MODE=token and give this machine the cluster's token "
            "(~/.ray/auth_token, RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN; `ray get-auth-token` on "
            "the head prints it).")


@contextlib.contextmanager
def ray_session(address: str | None = None) -> Iterator[None]:
    """Ray, up for the duration: a local instance (`address` None) or the cluster at `address`
    joined; shut down afterwards if it was started here. Joining fails fast with a
    `CeilingError` (nothing listening, a refused join), so a caller that opens its results
    store inside this block leaves no trace of a sweep that never started."""
    try:
        import ray
    except ImportError:
        raise CeilingError("the Ray executor needs Ray: pip install 'ceiling[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        if address is None:
            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        else:
            check_reachable(address)
            try:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise CeilingError(f"cannot join the Ray cluster at {address!r}: {err}"
                                   + _auth_hint()) from None
    try:
        yield
    finally:
        if started_here:
            ray.shutdown()


def run_ray(
    suite: Suite, store: Store, cells: list[Cell], address: str | None = None,
    on_update: Callable[[SweepStats, str], None] | None = None,
    stats: SweepStats | None = None, max_retries: int = 3,
    on_start: Callable[[], None] | None = None,
) -> SweepStats:
    """Run `cells` on Ray (inside a `ray_session` the caller opened, or a new one on a local
    instance or the cluster at `address`); `on_start` is called once Ray is up, before the
    first cell is sent."""
    import time

    stats = stats or SweepStats(total=len(cells))
    start = time.perf_counter()
    with ray_session(address):
        import ray

        if on_start is not None:
            on_start()
        remote: Any = ray.remote(num_cpus=1, max_retries=max_retries)(ray_cell)
        window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
        queue = list(cells)
        in_flight: dict[Any, Cell] = {}
        while queue or in_flight:
            while queue and len(in_flight) < window:
                cell = queue.pop(0)
                in_flight[remote.remote(cell, suite.name)] = cell
            stats.running = len(in_flight)
            if on_update is not None:
                on_update(stats, f"{len(in_flight)} cells on Ray")
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for future in ready:
                cell = in_flight.pop(future)
                try:
                    row, error, solve_seconds = ray.get(future)
                except ray.exceptions.RayError as err:  # retries exhausted
                    row, error, solve_seconds = None, f"Ray gave up: {err}", 0.0
                record_outcome(store, stats, cell, row, error, solve_seconds)
        stats.running = 0
        if on_update is not None:
            on_update(stats, "")
    stats.wall_seconds += time.perf_counter() - start
    return stats
