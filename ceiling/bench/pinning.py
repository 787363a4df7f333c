"""One CPU core per sweep worker: a worker claims a core no other worker on the machine holds
and pins all its threads to it.

A cell is sized for one core, and jax runs it on one thread plus XLA's intra-op pool (one
thread per core the process may use). Unpinned, each worker's pool threads wander over every
core and contend with the other workers'; on the 2-core development machine a 10 s sampling
search of RWARE tiny-4ag-hard did 1,216-1,472 rollouts unpinned and 1,792-1,856 pinned, alone
or beside a second pinned search (BENCHMARKS.md, "Pinning sweep workers to cores";
`benchmarks/pinning.py`). So each Ray worker pins itself before its first cell.

Claims are `flock`s on one file per core in a directory shared by the machine's workers
(`CEILING_CORE_LOCKS`, default `<tmp>/ceiling-cores-<uid>`): the lock lives as long as the
process that holds it, so a dead worker's core is free again at once. A worker that finds
every core claimed (more workers than cores) runs unpinned. `CEILING_PIN_CORES=0` turns
pinning off. Linux only; elsewhere nothing is pinned.
"""

from __future__ import annotations

import os
import tempfile
from typing import IO

_CLAIM: tuple[int, IO[bytes]] | None = None  # this process's core and its lock, kept open


def lock_dir() -> str:
    """Where the machine's workers keep their core claims."""
    default = os.path.join(tempfile.gettempdir(), f"ceiling-cores-{os.getuid()}")
    return os.environ.get("CEILING_CORE_LOCKS", default)


def claim_core(cores: list[int], directory: str) -> tuple[int, IO[bytes]] | None:
    """The first of `cores` whose lock file in `directory` no process holds, with the open
    (locked) file that keeps the claim; None when every one is held."""
    import fcntl

    os.makedirs(directory, exist_ok=True)
    for core in sorted(cores):
        handle = open(os.path.join(directory, f"core-{core}.lock"), "ab")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return core, handle
    return None


def pin_threads(core: int) -> None:
    """Pin every thread of this process to `core` (Linux's affinity is per thread, and jax's
    pool threads may exist already); threads started later inherit it."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), {core})
        except (ProcessLookupError, PermissionError):  # a thread that ended meanwhile
            continue


def pin_worker() -> int | None:
    """Claim a free core and pin this process to it, once per process; the core, or None
    where pinning is off, unsupported, or every core is claimed."""
    global _CLAIM
    if _CLAIM is not None:
        return _CLAIM[0]
    if os.environ.get("CEILING_PIN_CORES", "1") == "0":
        return None
    if not hasattr(os, "sched_setaffinity") or not os.path.isdir("/proc/self/task"):
        return None
    allowed = list(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None  # confined already (taskset, a scheduler): nothing to choose
    _CLAIM = claim_core(allowed, lock_dir())
    if _CLAIM is None:
        return None
    pin_threads(_CLAIM[0])
    return _CLAIM[0]
