"""Percentile bootstrap confidence intervals: the one implementation that the benchmark
statistics (`ceiling.bench.stats`) and the policy-reuse comparison (`ceiling.reuse.bench`) share.

A bootstrap replicate recomputes a statistic on a resample of the data's independent units,
drawn with replacement; the interval at `level` is the central `level` share of the replicates
(Efron's percentile interval). What counts as a unit depends on how the data were measured,
so there are three ways to resample, all drawing their indices the same way:

- paired (`paired_replicates`): columns measured on the same units (a strategy's return and
  the zero-shot return on the same instances) are resampled with one draw of units, so each
  resample keeps the pairs together;
- clustered (`mean_replicates`): the mean of points that come in clusters (the seeds of one
  layout share its composed policy) resamples whole clusters; without clusters every point is
  its own;
- stratified (`stratified_replicates`): runs are resampled within each stratum (task)
  separately and the set of strata stays fixed, rliable's stratified bootstrap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95


def draw_units(rng: np.random.Generator, units: int, reps: int) -> np.ndarray:
    """Indices [reps, units]: `reps` resamples of `units` units, with replacement."""
    return rng.integers(0, units, (reps, units))


def percentile_interval(replicates: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central `level` share of the replicates; NaN replicates (a statistic undefined on
    that resample, e.g. a ratio over a zero) are left out."""
    tail = round(100 * (1 - level) / 2, 10)  # 2.5, not 2.5000000000000022, at level 0.95
    low, high = np.nanpercentile(np.asarray(replicates, dtype=np.float64), [tail, 100 - tail])
    return float(low), float(high)


def paired_replicates(
    statistic: Callable[..., np.ndarray], columns: Sequence[np.ndarray],
    rng: np.random.Generator, reps: int = RESAMPLES,
) -> np.ndarray:
    """Replicates [reps] of `statistic(*resampled)`; every column [n, ...] is indexed by the
    same draw of units, so `statistic` receives arrays [reps, n, ...] and reduces axis 1."""
    arrays = [np.asarray(column) for column in columns]
    units = {len(a) for a in arrays}
    if len(units) != 1:
        raise ValueError(f"paired columns must have one length, got {sorted(units)}")
    picks = draw_units(rng, units.pop(), reps)
    return np.asarray(statistic(*(a[picks] for a in arrays)), dtype=np.float64)


def mean_replicates(
    values: np.ndarray, rng: np.random.Generator, clusters: np.ndarray | None = None,
    reps: int = RESAMPLES,
) -> np.ndarray:
    """Replicates [reps] of the mean of `values` [n], resampling whole clusters (one label per
    value in `clusters`; without them, each value is its own cluster)."""
    values = np.asarray(values, dtype=np.float64)
    labels = np.arange(values.size) if clusters is None else np.asarray(clusters)
    _, index = np.unique(labels, return_inverse=True)
    sums = np.bincount(index, weights=values)
    counts = np.bincount(index).astype(np.float64)
    return paired_replicates(lambda s, c: s.sum(axis=1) / c.sum(axis=1), [sums, counts], rng,
                             reps)


def mean_ci(
    values: np.ndarray, clusters: np.ndarray | None = None, seed: int = 0,
    reps: int = RESAMPLES, level: float = LEVEL,
) -> tuple[float, float, float]:
    """(mean, low, high) of `values` with NaNs dropped (all NaN: three NaNs); clusters, if
    given, are resampled whole (see `mean_replicates`)."""
    values = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(values)
    if not keep.any():
        return float("nan"), float("nan"), float("nan")
    labels = None if clusters is None else np.asarray(clusters)[keep]
    replicates = mean_replicates(values[keep], np.random.default_rng(seed), labels, reps)
    return (float(values[keep].mean()), *percentile_interval(replicates, level))


def stratified_replicates(
    statistic: Callable[[list[np.ndarray]], float], strata: Sequence[np.ndarray],
    rng: np.random.Generator, reps: int = RESAMPLES,
) -> np.ndarray:
    """Replicates [reps] of `statistic(resampled strata)`, each stratum's runs resampled within
    it. The statistic may be any function of the list (e.g. an IQM over all strata pooled), so
    it is called once per replicate."""
    arrays = [np.asarray(s, dtype=np.float64).ravel() for s in strata]
    replicates = np.empty(reps)
    for r in range(reps):
        replicates[r] = statistic([a[rng.integers(0, a.size, a.size)] for a in arrays])
    return replicates
