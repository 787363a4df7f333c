"""The reference study's claims (arXiv 2505.21236), tested on a results store: one row per claim
with the figure measured here, its 95 % CI, the threshold it is tested against and a verdict.

Nothing here is written down but the thresholds (named constants below): every figure and
verdict is computed from the rows, so a sweep that says the opposite gets the opposite verdict.

Units. A figure is a difference in mean return in % of a task's reference zero-shot mean
return |Z|, a constant per task (not resampled): the greedy zero-shot mean of the task's best
base policy (`stats.zero_shot`), or for claim 1 that of the base policy compared. A constant
divisor puts tasks with different return scales on one axis, so they can be averaged, and keeps
the sign - hence the verdict - that of the difference in mean return. Claim 2 is the report's
own headline gain (`stats.gains_over_zero_shot`).

Intervals. Both sides of a comparison are measured on the same instances (each instance's
return the mean over seeds), so the per-instance differences are resampled (paired,
`ceiling.bootstrap`); a figure over several tasks averages one replicate per task, each task
resampled on its own (stratified). A strategy run from several checkpoints (base policies) is
compared checkpoint by checkpoint and the differences averaged. Where a claim picks "the best"
of several configurations, it picks by mean return (the point estimate), then bootstraps.

Verdicts. For a claim "figure > t" with 95 % CI [low, high]: it holds if low > t, does not hold
if high <= t, and is undecided otherwise (the CI straddles t). A CI that is the single point t
(both sides equal on every instance) does not hold: equal is not better. Bounds within `TIE` of
t count as t (float32 returns of one episode summed in another order differ in their last
bits). A claim "figure < t" is the mirror image. A claim about several comparisons ("every
strategy ...") holds if each holds, does not hold if any does not, and is undecided otherwise;
its figure is the comparison nearest to failing. A claim whose cells the store lacks is "not
measurable", with the reason.

Cells. The study's headline cell is 30 s x 64 attempts; where the store lacks it, claims 2, 3, 4b
and 7a use the largest budget x width measured and say so. Strategies are named as the study
names them (`sampling`, `sgbs`, `finetune`, `compass`), each in its primary variant from a
checkpoint, the same at every budget of a task: the options a plain suite entry searches the
checkpoint with, that is its recorded search defaults (`ceiling defaults`, `ceiling tune
--record`) as the latest rows that record them say (store schema 5 on), if that variant was
measured; else the one run without options; else the one measured in the most cells of the
task. So a retuned default, once a resumed sweep has measured it, replaces the variant it
retunes in claims 2 and 5-8, and until then the old one stands; other option variants count
among "the other strategies". Claims 1, 3 and 4 compare every variant: claim 3 takes COMPASS's
best variant, as it takes the best of the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ceiling.bench import stats
from ceiling.bench.claim_measures import (
    DEFAULT_OPTIONS,
    DOES_NOT_HOLD,
    HOLDS,
    NOT_MEASURABLE,
    STUDY_SECONDS,
    UNDECIDED,
    Cell,
    Estimate,
    Finding,
    Measured,
    NotMeasurable,
    Returns,
    average,
    base_of,
    best_config,
    cell_label,
    cell_of,
    cell_size,
    estimate,
    every,
    headline,
    headline_width,
    in_cell,
    is_primary,
    mean_return,
    measure,
    named,
    paired_diff,
    pooled,
    scaling,
    show,
    strategy_gap,
    stratified,
    verdict,
)
from ceiling.bench.figures import family_label
from ceiling.bench.stats import Config, config_of
from ceiling.bootstrap import RESAMPLES

__all__ = ["CLAIMS", "DOES_NOT_HOLD", "HOLDS", "NOT_MEASURABLE", "UNDECIDED", "ClaimResult",
           "evaluate_claims", "verdict"]

# The study's figures.
STUDY_MEAN_GAIN = 45.0  # % over the best zero-shot policy, mean of its 17 tasks
STUDY_MAX_GAIN = 126.0
# Thresholds, in % of the reference zero-shot mean return (and `BETTER`, 0).
FINETUNE_WIDTH = 64  # claim 6: the attempts fine-tuning needs to beat sampling
SATURATION = 1.0  # claim 8b: COMPASS has saturated at the first budget after which it gains
# less than this (mean over tasks) up to the largest budget

# What the claims name: strategies (in their primary variants), a base policy, task families.
SAMPLING, SGBS, FINETUNE, COMPASS = "sampling", "sgbs", "finetune", "compass"
SABLE = "sable"
CONNECTOR, RWARE = "connector", "rware"


@dataclasses.dataclass(frozen=True)
class ClaimResult:
    """One row of the claims table; `value` and `ci95` in % (None when not measurable)."""

    number: str  # "1", "4a"
    text: str  # the study's claim, in short
    definition: str  # how it is measured here
    test: str  # the threshold the figure is tested against
    verdict: str  # HOLDS, DOES_NOT_HOLD, UNDECIDED or NOT_MEASURABLE
    value: float | None
    ci95: tuple[float, float] | None
    study: str  # the study's own figure, where it gives one
    detail: str  # the cell, per-task figures, or why the claim is not measurable


# A claim's measurement: the arranged rows and a random generator of its own, to a Finding;
# it raises NotMeasurable when the rows lack its cells.
Measure = Callable[[Measured, np.random.Generator], Finding]


@dataclasses.dataclass(frozen=True)
class Claim:
    number: str
    text: str
    test: str
    definition: str
    measure: Measure


CLAIMS: list[Claim] = []  # in the table's order


def _claim(number: str, text: str, test: str, definition: str) -> Callable[[Measure], Measure]:
    """Register the decorated measurement as claim `number`."""
    def register(measure: Measure) -> Measure:
        CLAIMS.append(Claim(number, text, test, " ".join(definition.split()), measure))
        return measure
    return register


def evaluate_claims(rows: Sequence[dict[str, Any]], reps: int = RESAMPLES,
                    seed: int = 0) -> list[ClaimResult]:
    """Every claim of `CLAIMS`, in order, measured on `rows` (as `Store.rows()` gives them)."""
    measured = measure(rows, reps)
    results = []
    for claim in CLAIMS:
        try:
            found = claim.measure(measured, np.random.default_rng(seed))
        except NotMeasurable as reason:
            found = Finding(NOT_MEASURABLE, detail=str(reason))
        results.append(ClaimResult(claim.number, claim.text, claim.definition, claim.test,
                                   found.verdict, found.value, found.ci95, found.study,
                                   found.detail))
    return results


def _variants(m: Measured, strategies: Sequence[str], tasks: Sequence[str] | None = None,
              algorithm: str | None = None) -> str:
    """The primary variants with options among `strategies` (on `tasks`; default all; from the
    checkpoint label `algorithm`; default any), for a claim's detail: which sampling a claim
    about sampling measured."""
    listed = [f"{task} {family_label((strategy, options, label))}"
              for task in (m.variants if tasks is None else tasks)
              for (strategy, label), options in sorted(m.variants.get(task, {}).items())
              if strategy in strategies and options != DEFAULT_OPTIONS
              and algorithm in (None, label)]
    return f" (variants with options: {', '.join(listed)})" if listed else ""


# -- the claims ---------------------------------------------------------------------------------
@_claim("1", "Every strategy improves every base policy", "every CI > 0 %", """
    Per task, base policy and strategy (each option variant apart), at that strategy's largest
    budget × width: the mean return's gain over the same base policy's greedy zero-shot on the
    same instances, in % of that zero-shot mean. COMPASS and latent sampling search a COMPASS
    checkpoint, compared with the base policy its label names (`compass`: MAPPO,
    `compass-sable`: SABLE), or the task's best zero-shot base policy if that one has no
    zero-shot rows.""")
def _every_strategy_improves(m: Measured, rng: np.random.Generator) -> Finding:
    estimates: dict[str, Estimate] = {}
    searched: set[str] = set()
    for task, configs in m.searches.items():
        largest: dict[tuple[str, str, str], Config] = {}
        for config in configs:
            if (config.family not in largest
                    or cell_size(cell_of(config)) > cell_size(cell_of(largest[config.family]))):
                largest[config.family] = config
        for family, config in largest.items():
            base = base_of(config)
            if stats.needs_latent(config.strategy) and base not in m.greedy.get(task, {}):
                base = m.best.get(task)
            zero = m.greedy.get(task, {}).get(base or "")
            if zero is None:
                continue
            common = sorted(configs[config].keys() & zero.keys())
            reference = float(np.mean([zero[i] for i in common])) if common else 0.0
            if abs(reference) < 1e-12:
                continue
            searched.add(config.algorithm)
            label = (f"{task} {family_label(family)} at {cell_label(cell_of(config))} "
                     f"over {base} zero-shot")
            estimates[label] = estimate(paired_diff(configs[config], zero), abs(reference), rng,
                                         m.reps)
    if not estimates:
        raise NotMeasurable("no search shares instances with the greedy zero-shot rows of its "
                            "base policy")
    idle = sorted({a for by_base in m.greedy.values() for a in by_base} - searched)
    where = "each strategy at its largest budget × width" + (
        f" (zero-shot only, not searched: {', '.join(idle)})" if idle else "")
    return every(estimates, True, where)


@_claim("2", "Search gains +45 % on average (up to +126 %) over the best zero-shot policy",
        "mean > 0 %", """
    At the study's 30 s × 64 (else the largest budget × width measured): per task, the gain of
    the mean return over the greedy zero-shot mean of the task's best base policy on the same
    instances (the report's headline gain, CI paired); then the mean over tasks (stratified
    CI) of the strategy with the largest mean, among the strategies measured on every task,
    each from one checkpoint label in its primary variant on each task (what a plain `ceiling
    solve` searches with: the settings the task's checkpoint records, where measured). It
    holds if that mean gain is above 0; the study's figures stand beside ours for scale.""")
def _headline_gain(m: Measured, rng: np.random.Generator) -> Finding:
    cell, where = headline(m)
    rows = [r for r in m.rows
            if stats.is_zero_shot(r["strategy"]) or cell_of(config_of(r)) == cell]
    gains = stats.gains_over_zero_shot(rows, reps=m.reps, seed=int(rng.integers(2**31)))
    if not gains:
        raise NotMeasurable(f"no search {where} shares instances with a zero-shot base policy")
    tasks = {g["task"] for g in gains}
    by_strategy: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for g in gains:
        c: Config = g["config"]
        if is_primary(c, m.variants.get(g["task"], {})):
            by_strategy.setdefault((c.strategy, c.algorithm), []).append(g)
    complete = {key: stats.summarise_gains(group) for key, group in by_strategy.items()
                if len(group) == len(tasks)}
    if not complete:
        raise NotMeasurable(f"no strategy was measured {where} on every task with zero-shot "
                            "rows, in its primary variant")
    strategy, algorithm = max(sorted(complete), key=lambda k: complete[k]["mean_gain_percent"])
    best = complete[(strategy, algorithm)]
    per_task = "; ".join(f"{g['task']} {g['gain_percent']:+.1f} % [{g['ci95'][0]:+.1f}, "
                         f"{g['ci95'][1]:+.1f}]" for g in by_strategy[(strategy, algorithm)])
    return Finding(
        verdict(best["ci95"]), best["mean_gain_percent"], best["ci95"],
        f"{where}; best strategy {strategy} ({algorithm}), mean over {len(tasks)} task(s), "
        f"max {best['max_gain_percent']:+.1f} % ({best['max_task']}); per task: {per_task}"
        + _variants(m, [strategy], sorted(tasks), algorithm),
        f"+{STUDY_MEAN_GAIN:g} % mean, +{STUDY_MAX_GAIN:g} % max (17 tasks, 30 s × 64)")


@_claim("3", "COMPASS is the best strategy for every base policy (30 s × 64)",
        "every CI > 0 %", """
    At the study's 30 s × 64 (else the largest budget × width measured), per task and base
    policy with a COMPASS checkpoint (the base its label names: `compass` MAPPO,
    `compass-sable` SABLE): the mean return of COMPASS's best option variant minus that of the
    best other search from the same base policy (any other strategy and option variant, latent
    sampling of the same COMPASS checkpoint included, picked by mean return), paired on
    instances.""")
def _compass_is_best(m: Measured, rng: np.random.Generator) -> Finding:
    cell, where = headline(m)
    estimates: dict[str, Estimate] = {}
    for task, configs in m.searches.items():
        by_base: dict[str, dict[Config, Returns]] = {}
        for c, r in in_cell(configs, cell).items():
            by_base.setdefault(base_of(c) or c.algorithm, {})[c] = r
        for base, here in sorted(by_base.items()):
            compass = {c: r for c, r in here.items() if c.strategy == COMPASS}
            others = {c: r for c, r in here.items() if c.strategy != COMPASS}
            if not compass or not others or task not in m.scale:
                continue
            rival = best_config(others)
            difference = paired_diff(compass[best_config(compass)], others[rival])
            if difference.size:
                estimates[f"{task} from {base}: COMPASS − {family_label(rival.family)}"] = (
                    estimate(difference, m.scale[task], rng, m.reps))
    if not estimates:
        has = any(c.strategy == COMPASS for configs in m.searches.values() for c in configs)
        raise NotMeasurable(f"no task has COMPASS and another search from its base policy "
                            f"{where}" if has
                            else "the store has no COMPASS rows")
    return every(estimates, True, where)


@_claim("4a", "SABLE is the best base policy before search", "mean > 0 %", """
    Per task: SABLE's greedy zero-shot mean return minus that of the best other base policy
    (IPPO, MAPPO: the larger mean), paired on instances; the mean over tasks.""")
def _sable_zero_shot(m: Measured, rng: np.random.Generator) -> Finding:
    if not any(SABLE in by_base for by_base in m.greedy.values()):
        raise NotMeasurable("the store has no greedy zero-shot rows of a SABLE checkpoint")
    per_task: dict[str, Estimate] = {}
    for task, by_base in m.greedy.items():
        others = {a: r for a, r in by_base.items() if a != SABLE}
        if SABLE not in by_base or not others or task not in m.scale:
            continue
        rival = max(others, key=lambda a: mean_return(others[a]))
        difference = paired_diff(by_base[SABLE], others[rival])
        if difference.size:
            per_task[f"{task} (− {rival})"] = estimate(difference, m.scale[task], rng, m.reps)
    if not per_task:
        raise NotMeasurable("no task has zero-shot rows of SABLE and of another base policy "
                            "on the same instances")
    return pooled(per_task, True, "greedy zero-shot")


@_claim("4b", "SABLE is the best base policy after search", "mean > 0 %", """
    At the study's 30 s × 64 (else the largest budget × width measured), per task: the best
    search from SABLE (by mean return; COMPASS and latent sampling of a `compass-sable`
    checkpoint count as searches from SABLE, those of a plain `compass` one as from MAPPO)
    minus the best search from any other base policy, paired on instances; the mean over
    tasks.""")
def _sable_after_search(m: Measured, rng: np.random.Generator) -> Finding:
    cell, where = headline(m)
    per_task: dict[str, Estimate] = {}
    for task, configs in m.searches.items():
        here = in_cell(configs, cell)
        sable = {c: r for c, r in here.items() if base_of(c) == SABLE}
        others = {c: r for c, r in here.items() if base_of(c) != SABLE}
        if not sable or not others or task not in m.scale:
            continue
        mine, rival = best_config(sable), best_config(others)
        difference = paired_diff(sable[mine], others[rival])
        if difference.size:
            per_task[f"{task} ({family_label(mine.family)} − {family_label(rival.family)})"] = (
                estimate(difference, m.scale[task], rng, m.reps))
    if not per_task:
        raise NotMeasurable(f"no task has searches from SABLE and from another base policy "
                            f"{where}")
    return pooled(per_task, True, where)


@_claim("5", "At 30 s, stochastic sampling beats online fine-tuning", "mean > 0 %", """
    At 30 s, per task: sampling's return minus fine-tuning's from the same checkpoint,
    averaged over the checkpoints and the widths measured at 30 s (on the instances all of
    them share; claim 6 is the per-width view), paired on instances; the mean over tasks.""")
def _sampling_beats_finetuning(m: Measured, rng: np.random.Generator) -> Finding:
    cells = sorted({cell_of(c) for configs in m.searches.values() for c in configs
                    if c.seconds == STUDY_SECONDS}, key=cell_size)
    if not cells:
        raise NotMeasurable(f"the store has no cells at {STUDY_SECONDS:g} s")
    per_task: dict[str, Estimate] = {}
    for task, configs in m.searches.items():
        by_width = [d for cell in cells if (d := strategy_gap(in_cell(configs, cell), SAMPLING,
                                                             FINETUNE, m.variants[task]))]
        difference = average(by_width)
        if difference and task in m.scale:
            per_task[task] = estimate(difference, m.scale[task], rng, m.reps)
    if not per_task:
        raise NotMeasurable(f"no task has sampling and fine-tuning from one checkpoint at "
                            f"{STUDY_SECONDS:g} s")
    widths = ", ".join(str(cell[2]) for cell in cells)
    return pooled(per_task, True, f"at {STUDY_SECONDS:g} s, widths {widths}"
                  + _variants(m, (SAMPLING, FINETUNE), sorted(per_task)))


@_claim("6", "Fine-tuning needs ≥ 64 attempts to beat sampling",
        "> 0 % at width 64, ≤ 0 % below", """
    At the largest time budget where both ran at width 64 and at a smaller width, per width:
    fine-tuning's return minus sampling's from the same checkpoint, paired on instances, mean
    over tasks. Holds if the CI at width 64 is above 0 and every smaller width's CI is at or
    below 0; does not hold if the CI at 64 is at or below 0, or a smaller width's is above 0;
    otherwise undecided. The figure is width 64's.""")
def _finetuning_needs_width(m: Measured, rng: np.random.Generator) -> Finding:
    found: dict[float, dict[int, dict[str, Returns]]] = {}  # {seconds: {width: {task: diff}}}
    for task, configs in m.searches.items():
        for cell in {cell_of(c) for c in configs if c.seconds and c.rollouts is None}:
            difference = strategy_gap(in_cell(configs, cell), FINETUNE, SAMPLING,
                                      m.variants[task])
            if difference and task in m.scale and cell[0] is not None:
                found.setdefault(cell[0], {}).setdefault(cell[2], {})[task] = difference
    usable = [s for s, by_width in found.items() if FINETUNE_WIDTH in by_width
              and any(w < FINETUNE_WIDTH for w in by_width)]
    if not usable:
        widths = sorted({w for by_width in found.values() for w in by_width})
        raise NotMeasurable(f"needs fine-tuning and sampling from one checkpoint at width "
                            f"{FINETUNE_WIDTH} and at a smaller width under one time budget; "
                            f"widths measured with both: {widths or 'none'}")
    seconds = max(usable)
    per_width = {w: stratified({t: estimate(d, m.scale[t], rng, m.reps)
                                 for t, d in sorted(by_task.items())})
                 for w, by_task in sorted(found[seconds].items())}
    main = verdict(per_width[FINETUNE_WIDTH].ci95)
    below = [verdict(e.ci95) for w, e in per_width.items() if w < FINETUNE_WIDTH]
    overall = (DOES_NOT_HOLD if main == DOES_NOT_HOLD or HOLDS in below else
               HOLDS if main == HOLDS and all(v == DOES_NOT_HOLD for v in below) else UNDECIDED)
    listed = "; ".join(f"width {w} {show(e)}" for w, e in per_width.items())
    at = per_width[FINETUNE_WIDTH]
    return Finding(overall, at.value, at.ci95,
                   f"at {seconds:g} s, fine-tuning − sampling, mean over tasks: {listed}"
                   + _variants(m, (SAMPLING, FINETUNE), sorted(found[seconds][FINETUNE_WIDTH])))


@_claim("7a", "SGBS does poorly on Connector", "mean < 0 %", """
    At the study's 30 s × 64 (else the largest budget × width measured), per Connector task:
    SGBS's return minus sampling's from the same checkpoint, paired on instances; the mean
    over Connector tasks.""")
def _sgbs_on_connector(m: Measured, rng: np.random.Generator) -> Finding:
    cell, where = headline(m)
    return _sgbs_against_sampling(m, rng, CONNECTOR, cell, False, where)


@_claim("7b", "SGBS does well at small budgets on RWARE", "mean > 0 %", """
    At the smallest time budget measured at width 64 (else the largest width), per RWARE task:
    SGBS's return minus sampling's from the same checkpoint, paired on instances; the mean
    over RWARE tasks.""")
def _sgbs_on_rware(m: Measured, rng: np.random.Generator) -> Finding:
    width = headline_width(m)
    cells = sorted({cell_of(c) for task, configs in m.searches.items()
                    if task.partition(":")[0] == RWARE for c in configs
                    if c.width == width and c.strategy == SGBS and c.seconds}, key=cell_size)
    if not cells:
        raise NotMeasurable(f"the store has no SGBS rows on an RWARE task at width {width}")
    return _sgbs_against_sampling(m, rng, RWARE, cells[0], True,
                                  f"at {cell_label(cells[0])}, the smallest budget")


def _sgbs_against_sampling(m: Measured, rng: np.random.Generator, family: str, cell: Cell,
                           above: bool, where: str) -> Finding:
    tasks = [t for t in m.searches if t.partition(":")[0] == family]
    if not tasks:
        raise NotMeasurable(f"the store has no {family} task")
    per_task: dict[str, Estimate] = {}
    for task in tasks:
        difference = strategy_gap(in_cell(m.searches[task], cell), SGBS, SAMPLING,
                                  m.variants[task])
        if difference and task in m.scale:
            per_task[task] = estimate(difference, m.scale[task], rng, m.reps)
    if not per_task:
        raise NotMeasurable(f"no {family} task has SGBS and sampling from one checkpoint "
                            f"{where}")
    return pooled(per_task, above, where + _variants(m, (SGBS, SAMPLING), sorted(per_task)))


def _time_budgets(m: Measured) -> tuple[int, list[Cell]]:
    """The width claim 8 compares at (64, else the largest) and its time budgets, smallest
    first; at least two."""
    width = headline_width(m)
    budgets = sorted({cell_of(c) for configs in m.searches.values() for c in configs
                      if c.width == width and c.seconds and c.rollouts is None}, key=cell_size)
    if len(budgets) < 2:
        shown = ", ".join(cell_label(b) for b in budgets) or "none"
        raise NotMeasurable(f"needs two time budgets or more at width {width}; measured: "
                            f"{shown}")
    return width, budgets


def _scaling_against_others(m: Measured, rng: np.random.Generator, subject: str, low: Cell,
                            high: Cell, above: bool, where: str) -> Finding:
    """Per other strategy: `subject`'s gain from budget `low` to `high` minus the other's
    (each per instance, from one checkpoint), mean over tasks."""
    others = sorted({strategy for variants in m.variants.values()
                     for strategy, _ in variants} - {subject})
    estimates: dict[str, Estimate] = {}
    for other in others:
        per_task: dict[str, Estimate] = {}
        for task, configs in m.searches.items():
            variants = m.variants[task]
            difference = paired_diff(scaling(configs, subject, low, high, variants),
                                     scaling(configs, other, low, high, variants))
            if difference.size and task in m.scale:
                per_task[task] = estimate(difference, m.scale[task], rng, m.reps)
        if per_task:
            estimates[f"{subject} − {other}"] = stratified(per_task)
    if not estimates:
        raise NotMeasurable(f"no task has {subject} and another strategy at both "
                            f"{cell_label(low)} and {cell_label(high)}")
    return every(estimates, above, where + _variants(m, [subject, *others]))


@_claim("8a", "Sampling has the flattest scaling with the time budget", "every CI < 0 %", """
    At width 64 (else the largest width), each strategy's gain in mean return from the
    smallest to the largest time budget, per instance and checkpoint; sampling's gain minus
    each other strategy's, paired on instances, mean over tasks. Holds if sampling gains less
    than every other strategy.""")
def _sampling_is_flattest(m: Measured, rng: np.random.Generator) -> Finding:
    _, budgets = _time_budgets(m)
    return _scaling_against_others(m, rng, SAMPLING, budgets[0], budgets[-1], False,
                                   f"from {cell_label(budgets[0])} to {cell_label(budgets[-1])}")


@_claim("8b", "COMPASS scales best with the time budget until it saturates",
        "every CI > 0 %", f"""
    At width 64 (else the largest width): COMPASS saturates at the first time budget after
    which its mean return (in % of the reference zero-shot, mean over tasks) rises by less than
    {SATURATION:g} % up to the largest budget. From the smallest budget to that one, COMPASS's
    gain minus each other strategy's, paired on instances, mean over tasks. Holds if COMPASS
    gains more than every other strategy.""")
def _compass_scales_best(m: Measured, rng: np.random.Generator) -> Finding:
    width, budgets = _time_budgets(m)
    # Per task, the COMPASS checkpoints measured at every budget (one searched at 30 s only
    # would lift the top budget's level alone).
    kept = {t: set.intersection(*(set(named(in_cell(configs, b), COMPASS, m.variants[t]))
                                  for b in budgets))
            for t, configs in m.searches.items() if t in m.scale}
    tasks = [t for t, checkpoints in kept.items() if checkpoints]
    if not tasks:
        raise NotMeasurable(f"no task has COMPASS at every time budget at width {width}")

    def level(budget: Cell) -> float:  # COMPASS's mean return, % of zero-shot, mean of tasks
        return float(np.mean([
            100 * np.mean([mean_return(r) for a, r in named(
                in_cell(m.searches[t], budget), COMPASS, m.variants[t]).items()
                if a in kept[t]]) / m.scale[t]
            for t in tasks]))

    top = level(budgets[-1])
    saturated = next(b for b in budgets[1:] if top - level(b) < SATURATION)
    return _scaling_against_others(
        m, rng, COMPASS, budgets[0], saturated, True,
        f"from {cell_label(budgets[0])} to {cell_label(saturated)}, where COMPASS saturates "
        f"(budgets measured: {', '.join(cell_label(b) for b in budgets)})")
