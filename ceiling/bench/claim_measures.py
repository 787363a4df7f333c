"""The arithmetic under the claims table (`ceiling.bench.claims`, whose docstring sets out the
units, intervals and verdicts): the store's rows arranged per task and configuration, the
cells and variants a claim compares, paired bootstrap estimates in % of a task's reference
zero-shot return, and the verdict of a CI against a threshold."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from ceiling.bench import stats
from ceiling.bench.stats import Config, config_of
from ceiling.bootstrap import RESAMPLES, paired_replicates, percentile_interval
from ceiling.policies.labels import label_base

HOLDS, DOES_NOT_HOLD, UNDECIDED = "holds", "does not hold", "undecided"
NOT_MEASURABLE = "not measurable"

# The study's headline cell.
STUDY_SECONDS = 30.0
STUDY_WIDTH = 64
BETTER = 0.0  # "A improves on / beats B": the difference A - B is tested against this
# Returns are float32 sums: the same episode summed in another order differs in its last bits.
# Bounds closer to a threshold than this are on it (equal, not better).
TIE = 1e-4
DEFAULT_OPTIONS = "{}"
LISTED = 6  # comparisons spelled out in a claim's detail before the rest are counted

Returns = dict[int, float]  # {instance: return, the mean over seeds}
Cell = tuple[float | None, int | None, int]  # (seconds, rollouts, width)
Variants = dict[tuple[str, str], str]  # {(strategy, checkpoint label): its primary options}


class NotMeasurable(Exception):
    """The store lacks the cells a claim needs; the message says which."""


@dataclasses.dataclass(frozen=True)
class Finding:
    """What a claim's measurement returns."""

    verdict: str
    value: float | None = None
    ci95: tuple[float, float] | None = None
    detail: str = ""
    study: str = "–"


@dataclasses.dataclass(frozen=True)
class Estimate:
    value: float  # %
    ci95: tuple[float, float]
    replicates: np.ndarray = dataclasses.field(repr=False, compare=False)


@dataclasses.dataclass(frozen=True)
class Measured:
    """The rows arranged for the claims."""

    rows: list[dict[str, Any]]  # less the zero-shot rows of latent-conditioned checkpoints
    searches: dict[str, dict[Config, Returns]]  # {task: {search config: returns}}
    variants: dict[str, Variants]  # {task: each strategy's primary variant per checkpoint}
    greedy: dict[str, dict[str, Returns]]  # {task: {base algorithm: zero-shot returns}}
    best: dict[str, str]  # {task: the base algorithm with the best zero-shot mean}
    scale: dict[str, float]  # {task: |that zero-shot mean|}
    reps: int


# -- the rows, arranged -------------------------------------------------------------------------
def measure(rows: Sequence[dict[str, Any]], reps: int = RESAMPLES) -> Measured:
    """Each (task, configuration)'s return per instance (the mean over seeds), zero-shot and
    search apart, and each task's reference zero-shot."""
    # A checkpoint a latent strategy searched with is COMPASS's, not a base policy.
    latent = {stats.checkpoint_key(r) for r in rows if stats.needs_latent(r["strategy"])}
    kept = [r for r in rows
            if not (stats.is_zero_shot(r["strategy"]) and stats.checkpoint_key(r) in latent)]
    runs: dict[tuple[str, Config], dict[int, list[float]]] = {}
    for r in kept:
        runs.setdefault((r["task"], config_of(r)), {}).setdefault(int(r["instance"]), []).append(
            float(r["total_return"]))
    searches: dict[str, dict[Config, Returns]] = {}
    greedy: dict[str, dict[str, Returns]] = {}
    for (task, config), by_instance in sorted(runs.items(),
                                              key=lambda item: (item[0][0], item[0][1].order)):
        returns = {i: float(np.mean(v)) for i, v in sorted(by_instance.items())}
        if stats.is_zero_shot(config.strategy):
            greedy.setdefault(task, {})[config.algorithm] = returns
        else:
            searches.setdefault(task, {})[config] = returns
    zero = stats.zero_shot(kept)
    plain = plain_options(kept)
    variants = {task: primary_variants(configs, plain.get(task, {}))
                for task, configs in searches.items()}
    return Measured(kept, searches, variants, greedy, {t: a for t, (a, _) in zero.items()},
                    {t: abs(z) for t, (_, z) in zero.items() if abs(z) > 1e-12}, reps)


def plain_options(rows: Sequence[dict[str, Any]]) -> dict[str, Variants]:
    """{task: {(strategy, checkpoint label): the options a plain suite entry searched that
    checkpoint with}}, as the latest row that recorded it says (`search_defaults`, stored
    since schema version 5: the checkpoint's recorded search defaults then). A checkpoint
    whose defaults were recorded (or retuned) after some of its rows ran is judged by what
    it records now, that is by its latest rows."""
    latest: dict[tuple[str, str, str], tuple[str, str]] = {}
    for r in rows:
        if r.get("search_defaults") is None:
            continue
        key = (r["task"], r["strategy"], r["algorithm"])
        seen = (str(r["created"]), stats.canonical_options(r["search_defaults"]))
        if key not in latest or seen[0] > latest[key][0]:
            latest[key] = seen
    found: dict[str, Variants] = {}
    for (task, strategy, algorithm), (_, options) in latest.items():
        found.setdefault(task, {})[(strategy, algorithm)] = options
    return found


def cell_of(config: Config) -> Cell:
    return (config.seconds, config.rollouts, config.width)


def cell_label(cell: Cell) -> str:
    """`30 s × 64`, `64 rollouts × 16`."""
    seconds, rollouts, width = cell
    budget = " ".join(p for p in (f"{seconds:g} s" if seconds else "",
                                  f"{rollouts} rollouts" if rollouts else "") if p)
    return f"{budget} × {width}"


def cell_size(cell: Cell) -> tuple[float, int, int]:
    return (cell[0] or 0.0, cell[1] or 0, cell[2])


def in_cell(configs: dict[Config, Returns], cell: Cell) -> dict[Config, Returns]:
    return {c: r for c, r in configs.items() if cell_of(c) == cell}


def primary_variants(configs: dict[Config, Returns], plain: Variants | None = None) -> Variants:
    """Each (strategy, checkpoint)'s primary variant among a task's every cell (`configs`), one
    variant at every budget: the options a plain suite entry searched the checkpoint with
    (`plain`, see `plain_options`) if that variant was measured; else the one without
    options; else the one measured in the most cells (none where several tie)."""
    cells: dict[tuple[str, str], dict[str, set[Cell]]] = {}
    for c in configs:
        cells.setdefault((c.strategy, c.algorithm), {}).setdefault(c.options, set()).add(
            cell_of(c))
    chosen: Variants = {}
    for key, by_options in cells.items():
        recorded = (plain or {}).get(key)
        if recorded in by_options:
            chosen[key] = recorded
            continue
        if DEFAULT_OPTIONS in by_options:
            chosen[key] = DEFAULT_OPTIONS
            continue
        ranked = sorted(by_options, key=lambda options: len(by_options[options]), reverse=True)
        if len(ranked) == 1 or len(by_options[ranked[0]]) > len(by_options[ranked[1]]):
            chosen[key] = ranked[0]
    return chosen


def is_primary(config: Config, variants: Variants) -> bool:
    """Whether `config` is its (strategy, checkpoint)'s primary variant in `variants`."""
    return variants.get((config.strategy, config.algorithm)) == config.options


def primary(configs: dict[Config, Returns], variants: Variants) -> dict[Config, Returns]:
    """The configs among `configs` that are their (strategy, checkpoint)'s primary variant."""
    return {c: r for c, r in configs.items() if is_primary(c, variants)}


def named(configs: dict[Config, Returns], strategy: str,
          variants: Variants) -> dict[str, Returns]:
    """{checkpoint algorithm: returns} of `strategy` in its primary variant (see `primary`)."""
    return {c.algorithm: r for c, r in primary(configs, variants).items()
            if c.strategy == strategy}


def base_of(config: Config) -> str | None:
    """The base policy a search started from: its checkpoint's, or for COMPASS and latent
    sampling the one the COMPASS checkpoint's label names (`compass-sable`: sable)."""
    if stats.needs_latent(config.strategy):
        return label_base(config.algorithm)
    return config.algorithm


def mean_return(returns: Returns) -> float:
    return float(np.mean(list(returns.values())))


def best_config(configs: dict[Config, Returns]) -> Config:
    return max(configs, key=lambda c: mean_return(configs[c]))


def paired_diff(a: Returns, b: Returns) -> np.ndarray:
    """a - b on the instances both measured."""
    return np.array([a[i] - b[i] for i in sorted(a.keys() & b.keys())])


def average(columns: Sequence[Returns]) -> Returns:
    """Per instance, the mean of `columns` on the instances all of them measured."""
    if not columns:
        return {}
    common = set.intersection(*(set(c) for c in columns))
    return {i: float(np.mean([c[i] for c in columns])) for i in sorted(common)}


def strategy_gap(configs: dict[Config, Returns], left: str, right: str,
                 variants: Variants) -> Returns:
    """Per instance: `left` - `right` from one checkpoint (primary variants), averaged over
    the checkpoints that ran both."""
    lefts, rights = named(configs, left, variants), named(configs, right, variants)
    return average([{i: lefts[a][i] - rights[a][i] for i in lefts[a].keys() & rights[a].keys()}
                     for a in sorted(lefts.keys() & rights.keys())])


def scaling(configs: dict[Config, Returns], strategy: str, low: Cell, high: Cell,
            variants: Variants) -> Returns:
    """Per instance: `strategy`'s return at budget `high` minus at `low` (its primary variant),
    one checkpoint at a time, averaged over its checkpoints."""
    lows = named(in_cell(configs, low), strategy, variants)
    highs = named(in_cell(configs, high), strategy, variants)
    return average([{i: highs[a][i] - lows[a][i] for i in lows[a].keys() & highs[a].keys()}
                     for a in sorted(lows.keys() & highs.keys())])


def headline(m: Measured) -> tuple[Cell, str]:
    """The study's 30 s x 64 if the store has it, else the largest budget x width, in words."""
    cells = {cell_of(c) for configs in m.searches.values() for c in configs}
    if not cells:
        raise NotMeasurable("the store has no search rows")
    study: Cell = (STUDY_SECONDS, None, STUDY_WIDTH)
    if study in cells:
        return study, f"at the study's {cell_label(study)}"
    largest = max(cells, key=cell_size)
    return largest, (f"at {cell_label(largest)}, the largest measured (the study's "
                     f"{cell_label(study)} is not in the store)")


def headline_width(m: Measured) -> int:
    widths = {c.width for configs in m.searches.values() for c in configs}
    if not widths:
        raise NotMeasurable("the store has no search rows")
    return STUDY_WIDTH if STUDY_WIDTH in widths else max(widths)


# -- estimates and verdicts ---------------------------------------------------------------------
def estimate(differences: np.ndarray | Returns, scale: float, rng: np.random.Generator,
              reps: int) -> Estimate:
    """Mean of paired per-instance differences in % of `scale`, with its bootstrap CI."""
    values = np.array(list(differences.values()) if isinstance(differences, dict)
                      else differences, dtype=np.float64)
    percent = 100 * values / scale
    replicates = paired_replicates(lambda x: x.mean(axis=1), [percent], rng, reps)
    return Estimate(float(percent.mean()), percentile_interval(replicates), replicates)


def stratified(per_task: dict[str, Estimate]) -> Estimate:
    """The mean over tasks; each replicate averages one replicate per task."""
    replicates = np.mean([e.replicates for e in per_task.values()], axis=0)
    return Estimate(float(np.mean([e.value for e in per_task.values()])),
                    percentile_interval(replicates), replicates)


def verdict(ci95: tuple[float, float], threshold: float = BETTER, above: bool = True) -> str:
    """HOLDS if the CI lies beyond `threshold` on the claimed side (above it, or below it when
    not `above`), DOES_NOT_HOLD if it lies on the other side or touches the threshold from
    there, else UNDECIDED. A bound within `TIE` of the threshold is on it."""
    low, high = ci95 if above else (-ci95[1], -ci95[0])
    limit = (threshold if above else -threshold) + TIE
    if low > limit:
        return HOLDS
    if high <= limit:
        return DOES_NOT_HOLD
    return UNDECIDED


def show(e: Estimate) -> str:
    return f"{e.value:+.1f} % [{e.ci95[0]:+.1f}, {e.ci95[1]:+.1f}]"


def every(estimates: dict[str, Estimate], above: bool, where: str) -> Finding:
    """A claim that each comparison holds; its figure is the one nearest to failing."""
    verdicts = {label: verdict(e.ci95, above=above) for label, e in estimates.items()}
    worst = (min if above else max)(estimates, key=lambda label: estimates[label].value)
    counts = ", ".join(f"{n} {kind}" for kind in (HOLDS, UNDECIDED, DOES_NOT_HOLD)
                       if (n := sum(v == kind for v in verdicts.values())))
    rest = [label for label in estimates if label != worst]
    shown = rest if len(rest) <= LISTED else [x for x in rest if verdicts[x] != HOLDS]
    listed = "".join(f"; {label} {show(estimates[label])} ({verdicts[label]})"
                     for label in shown[:LISTED])
    more = f"; and {len(shown) - LISTED} more" if len(shown) > LISTED else ""
    overall = (DOES_NOT_HOLD if DOES_NOT_HOLD in verdicts.values() else
               HOLDS if all(v == HOLDS for v in verdicts.values()) else UNDECIDED)
    return Finding(overall, estimates[worst].value, estimates[worst].ci95,
                   f"{where}; {len(estimates)} comparison(s): {counts}; the figure is the "
                   f"nearest to failing, {worst}{listed}{more}")


def pooled(per_task: dict[str, Estimate], above: bool, where: str) -> Finding:
    """A claim about the mean over tasks (stratified)."""
    total = stratified(per_task)
    listed = "; ".join(f"{label} {show(e)}" for label, e in per_task.items())
    return Finding(verdict(total.ci95, above=above), total.value, total.ci95,
                   f"{where}; mean over {len(per_task)} task(s); per task: {listed}")
