"""Compiled programs held by this process: the memory mappings they use, and releasing them.

XLA's CPU backend loads each compiled program's machine code into memory mappings of its own
(about three per program), kept until the executable is freed. A process that compiles
thousands of programs and keeps them (jax's caches, a strategy's compiled steps, prepared
replays) reaches the kernel's limit on mappings (`vm.max_map_count`, 65530 by default), and the
next compile dies in a segmentation fault rather than an error. Long-lived processes (a sweep's
workers, the test suite) check `near_mapping_limit()` and call `release_compiled_programs()`.

Modules that keep compiled programs in caches of their own register a function that empties
them with `on_release`.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

MAPS = Path("/proc/self/maps")
MAX_MAP_COUNT = Path("/proc/sys/vm/max_map_count")
# Linux's default `vm.max_map_count`, assumed where /proc does not say.
DEFAULT_MAP_LIMIT = 65530

_release_hooks: list[Callable[[], None]] = []


def on_release(hook: Callable[[], None]) -> Callable[[], None]:
    """Register `hook` (no arguments) to run in `release_compiled_programs`; returns it."""
    _release_hooks.append(hook)
    return hook


def mapping_count() -> int | None:
    """How many memory mappings this process has; None where /proc/self/maps is absent."""
    try:
        with MAPS.open("rb") as maps:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: maps.read(1 << 20), b""))
    except OSError:
        return None


def mapping_limit() -> int:
    """The kernel's limit on one process's memory mappings (`vm.max_map_count`)."""
    try:
        return int(MAX_MAP_COUNT.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return DEFAULT_MAP_LIMIT


def near_mapping_limit(fraction: float = 0.5) -> bool:
    """Whether this process uses more than `fraction` of its allowed memory mappings. False
    where the count cannot be read (not Linux)."""
    count = mapping_count()
    return count is not None and count > fraction * mapping_limit()


class MappingWatch:
    """When a long-lived process should release its compiled programs: once past `fraction`
    of its allowed mappings, and after a release (`released`) only once the count has grown
    by another half of `fraction` of the limit, so that a process whose release frees little
    does not release, and compile everything again, before every piece of work."""

    def __init__(self, fraction: float = 0.5) -> None:
        self.fraction = fraction
        self.floor = 0  # the count after the last release

    def due(self) -> bool:
        count = mapping_count()
        if count is None:
            return False
        limit = mapping_limit()
        return count > max(self.fraction * limit, self.floor + self.fraction / 2 * limit)

    def released(self) -> None:
        self.floor = mapping_count() or 0


def release_compiled_programs() -> None:
    """Drop every compiled program this process keeps in a cache: the registered caches,
    then jax's own, then collect the garbage so their code mappings are unmapped. Programs
    still referenced elsewhere stay; later calls compile again (or read the persistent
    compilation cache, where one is set)."""
    import jax

    for hook in _release_hooks:
        hook()
    jax.clear_caches()
    gc.collect()
