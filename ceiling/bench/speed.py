"""How fast the core a cell runs on is right now: a fixed reference computation, timed.

A time budget buys as many rollouts as the machine can run in it, so two cells searched with
the same budget compare only if the machine was equally fast for both. The CPU share each cell
records (`store.contended`) catches another process taking part of the cell's core; it does not
catch a core that is slower while the cell has it all to itself, which is what a virtual
machine on a shared host does from one day to the next (measured here: the same 30 s × 64
sampling cell ran 20,800 rollouts on 2026-12-05 and 12,736 on 2026-12-07, each with 0.99 of a
core). So every cell also records `probe()`: the reference computation's iterations per
second, just before and just after its search, in the process (and on the core) that
searches. The number means nothing alone; the report and `benchmarks/paired.py` compare it
across cells (`relative_speeds`, `SLOW_SPEED`), and `ceiling bench --rerun slow` runs the
slow time-budgeted ones again (a rollout budget searches the same on any machine).
`benchmarks/speed_probe.py` measures how well it tracks what a time budget buys.

The computation looks like a search step in miniature: a batch of 256 rows through a 128-wide
three-layer network, a softmax and an arg-max, and a gather from a 4 MB table, 20 times in a
compiled loop (about 10 ms on this project's CPU). It is compiled once per process and timed
`REPEATS` times; the median is kept, so one interruption does not move it. A cell thus spends
about 0.1 s probing, outside its budget.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

REPEATS = 5  # timed calls per probe; the median is the probe's figure
ITERATIONS = 20  # loop iterations inside one timed call (about 10 ms here)
SLOW_SPEED = 0.9  # a cell whose probe is below this share of the store's median ran slow
_BATCH, _WIDTH, _TABLE = 256, 128, 8192


@functools.cache
def _program() -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """The compiled reference computation and its inputs (fixed: the same work every time)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    def work(x: Any, weights: Any, table: Any, rows: Any) -> Any:
        def body(i: Any, carry: tuple[Any, Any]) -> tuple[Any, Any]:
            x, picked = carry
            hidden = x
            for layer in range(weights.shape[0]):
                hidden = jax.nn.relu(hidden @ weights[layer])
            gathered = jnp.take(table, (rows + i) % table.shape[0], axis=0)
            x = 0.5 * x + 0.5 * jnp.tanh(8.0 * jax.nn.softmax(hidden, axis=-1) + gathered)
            return x, picked + jnp.argmax(hidden, axis=-1).sum()

        return jax.lax.fori_loop(0, ITERATIONS, body, (x, jnp.int32(0)))

    generator = np.random.default_rng(0)
    inputs = (
        jnp.asarray(generator.standard_normal((_BATCH, _WIDTH)), jnp.float32),
        jnp.asarray(generator.standard_normal((3, _WIDTH, _WIDTH)) / np.sqrt(_WIDTH),
                    jnp.float32),
        jnp.asarray(generator.standard_normal((_TABLE, _WIDTH)), jnp.float32),
        jnp.asarray(generator.integers(0, _TABLE, _BATCH), jnp.int32),
    )
    program = jax.jit(work)
    jax.block_until_ready(program(*inputs))  # compile (and warm) outside any timing
    return program, inputs


def probe(repeats: int = REPEATS) -> float:
    """The reference computation's loop iterations per second on this core, now: the median
    of `repeats` timed calls. Larger is faster; only ratios between probes mean anything."""
    import jax

    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    program, inputs = _program()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(program(*inputs))
        seconds.append(time.perf_counter() - start)
    return ITERATIONS / max(statistics.median(seconds), 1e-12)


def reference_speed(speeds: Mapping[str, float | None]) -> float | None:
    """The store's typical speed, the median probe of its measured cells (None if none is)."""
    measured = [speed for speed in speeds.values() if speed is not None and speed > 0]
    return statistics.median(measured) if measured else None


def relative_speeds(speeds: Mapping[str, float | None]) -> dict[str, float | None]:
    """Each cell's probe as a share of `reference_speed` (None where not measured)."""
    reference = reference_speed(speeds)
    return {key: (None if reference is None or speed is None else speed / reference)
            for key, speed in speeds.items()}


def row_speeds(rows: Iterable[Mapping[str, Any]]) -> dict[str, float | None]:
    """`relative_speeds` of stored rows (as `Store.rows()` gives them), by config hash."""
    return relative_speeds({row["config_hash"]: row.get("speed") for row in rows})


def slow_keys(speeds: Mapping[str, float | None]) -> set[str]:
    """The cells whose probe is below `SLOW_SPEED` of the store's median: they ran on a slower
    machine (or core) than the store's typical cell, so their time budgets bought fewer
    rollouts."""
    return {key for key, share in relative_speeds(speeds).items()
            if share is not None and share < SLOW_SPEED}
