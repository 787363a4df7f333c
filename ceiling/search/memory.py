"""How much memory one batch of a strategy needs at a width, estimated from shapes before
anything compiles, and the check that refuses a width the machine cannot hold.

A width too large for memory used to be found by XLA: fine-tuning at width 100,000 on RWARE
died asking for 597 GB, SGBS at that width sat silent for minutes. Here the strategy's `step`
is traced abstractly (`jax.eval_shape` for its state, `jit(...).trace` for the batch): no
compile, no allocation. The estimate is the peak of the bytes live at once while the traced
program runs in order: its arguments (parameters, search state) stay live throughout, every
intermediate lives from the operation that makes it to its last use, and a loop or call adds
its own body's peak while it runs (a `scan` body once: its iterations run one at a time, while
the stacked outputs are counted in full). XLA fuses element-wise chains and reuses buffers, so
it usually needs less than this; it never needs the arguments or the largest live set less.
`tests/search/test_memory.py` compares the estimate with XLA's own accounting of the compiled
program (`memory_analysis`) on small cases.

The memory a batch grows by is, to a good approximation, linear in the width, so the largest
width that fits is found from two estimates and checked with a third.
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import numpy as np
from jax.extend import core as jax_core

from ceiling.errors import CeilingError
from ceiling.policies.networks import Params
from ceiling.search.base import Strategy

# Refuse a width whose estimate exceeds this share of the memory available. Against XLA's
# accounting the estimate ran from 0.9x to 2.5x (higher for wide sampling, whose element-wise
# chains XLA fuses), so only what exceeds all of it is refused.
HEADROOM = 1.0


def _nbytes(aval: Any) -> int:
    shape, dtype = getattr(aval, "shape", None), getattr(aval, "dtype", None)
    if shape is None or dtype is None:
        return 0
    try:
        itemsize = np.dtype(dtype).itemsize
    except TypeError:  # an extended dtype (typed PRNG keys): two uint32 words
        itemsize = 8
    return math.prod(shape) * itemsize


def _is_var(atom: Any) -> bool:
    return isinstance(atom, jax_core.Var) and not isinstance(atom, jax_core.DropVar)


def peak_bytes(jaxpr: Any) -> int:
    """The most bytes that `jaxpr`'s intermediates and outputs hold at once while it runs in
    order (its inputs and constants are the caller's, and not counted here)."""
    inner = jaxpr.jaxpr if isinstance(jaxpr, jax_core.ClosedJaxpr) else jaxpr
    last_use: dict[Any, int] = {}
    for index, equation in enumerate(inner.eqns):
        for atom in equation.invars:
            if _is_var(atom):
                last_use[atom] = index
    end = len(inner.eqns)
    for atom in inner.outvars:
        if _is_var(atom):
            last_use[atom] = end
    own = {v for equation in inner.eqns for v in equation.outvars if _is_var(v)}
    live = peak = 0
    for index, equation in enumerate(inner.eqns):
        body = max((peak_bytes(sub) for sub in jax_core.jaxprs_in_params(equation.params)),
                   default=0)
        made = sum(_nbytes(v.aval) for v in equation.outvars if _is_var(v))
        peak = max(peak, live + body + made)
        live += made
        done = {atom for atom in (*equation.invars, *equation.outvars) if _is_var(atom)}
        for atom in done:
            if atom in own and last_use.get(atom, index) <= index:
                live -= _nbytes(atom.aval)
    return peak


def _abstract(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), tree)


def estimate_batch_bytes(strategy: Strategy, params: Params) -> int:
    """Bytes one batch of `strategy` needs at its width: the search state and parameters it
    reads, plus the peak of its intermediates (see the module docstring). Traces `step` on
    abstract values: nothing compiles, nothing is allocated."""
    key = jax.ShapeDtypeStruct((2,), np.uint32)
    params_shape = _abstract(params)
    state = jax.eval_shape(strategy.init, key, params_shape, key)
    # Traced through the strategy's own jitted step: the search that follows reuses this
    # trace instead of tracing again.
    closed = strategy.jitted_step.trace(state).jaxpr
    arguments = sum(_nbytes(leaf) for leaf in jax.tree_util.tree_leaves(state))
    constants = sum(_nbytes(np.asarray(c) if np.ndim(c) == 0 else c) for c in closed.consts)
    return arguments + constants + peak_bytes(closed)


def available_bytes(device: Any | None = None) -> int:
    """Memory a new allocation can get now on `device` (default: JAX's first): the device's
    free memory where it reports it (GPUs), else the host's available memory (Linux
    `MemAvailable`, which counts reclaimable caches), else its physical memory."""
    device = device or jax.devices()[0]
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 (backends without memory statistics raise various errors)
        stats = None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def _with_width(strategy: Strategy, width: int) -> Strategy:
    return type(strategy)(strategy.task, strategy.policy, width, strategy.options)


def largest_fitting_width(strategy: Strategy, params: Params, budget: int) -> int | None:
    """The largest width (rounded down to two significant figures) whose estimate fits in
    `budget` bytes; None if not even the strategy's minimum width fits. The estimate is fitted
    as a line in the width through the strategy's own width and half of it, then checked at
    the answer (and lowered until the check passes)."""
    high = strategy.width
    low = max(strategy.min_width, high // 2)
    at_high = estimate_batch_bytes(strategy, params)
    at_low = estimate_batch_bytes(_with_width(strategy, low), params) if low < high else 0
    slope = (at_high - at_low) / (high - low) if low < high else at_high / max(high, 1)
    fixed = at_high - slope * high
    width = int((budget - fixed) / slope) if slope > 0 else high
    for _ in range(8):
        width = _round_down(min(width, high - 1))
        if width < strategy.min_width:
            return None
        try:
            if estimate_batch_bytes(_with_width(strategy, width), params) <= budget:
                return width
        except CeilingError:  # an option that does not hold at this width (SGBS's beam)
            return width
        width = int(width * 0.8)
    return None


def _round_down(width: int) -> int:
    """Two significant figures, rounded down: 3,517 -> 3,500; 87 -> 87."""
    if width < 100:
        return max(width, 0)
    scale = 10 ** (len(str(width)) - 2)
    return (width // scale) * scale


def _gib(size: float) -> str:
    return f"{size / 1024**3:,.1f} GiB" if size >= 1024**3 else f"{size / 1024**2:,.0f} MiB"


def check_memory(strategy: Strategy, params: Params, available: int | None = None) -> int:
    """Refuse (`CeilingError`) a width whose batch cannot fit in memory, naming the largest
    width that would; returns the estimate in bytes. `available` defaults to
    `available_bytes()`."""
    available = available_bytes() if available is None else available
    needed = estimate_batch_bytes(strategy, params)
    budget = int(HEADROOM * available)
    if needed <= budget:
        return needed
    fitting = largest_fitting_width(strategy, params, budget)
    advice = (f"the largest width that fits is about {fitting:,} (--width {fitting})"
              if fitting is not None else
              f"not even width {strategy.min_width} fits: free memory or use a machine with more")
    raise CeilingError(
        f"{strategy.name} at width {strategy.width:,} on {strategy.task.spec.name} needs about "
        f"{_gib(needed)} per batch (estimated from its shapes, before compiling), but "
        f"{_gib(available)} is available here; {advice}")
