"""The claims table: every verdict comes from the rows. A small synthetic store where each of the
reference study's claims holds, the same store changed so that one claim does not hold (its
verdict flips, the others stay), stores that lack a claim's cells ("not measurable", with the
reason), and noisy differences ("undecided"). No search runs: rows are written as the store
hands them out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from ceiling.bench import claims
from ceiling.bench.claims import (
    DOES_NOT_HOLD,
    HOLDS,
    NOT_MEASURABLE,
    UNDECIDED,
    evaluate_claims,
    verdict,
)

RWARE, CONNECTOR = "rware:tiny-2ag-hard", "connector:con-5x5x3a"
INSTANCES = 8
BUDGETS = (1.0, 10.0, 30.0)
WIDTHS = (16, 64)
GREEDY = {"ippo": 8.0, "mappo": 9.0, "sable": 10.0}  # SABLE the best base policy
LATENT = "compass-sable"  # the COMPASS checkpoint's label: trained from SABLE
Key = tuple[str, str, str, float | None, int]  # (task, algorithm, strategy, seconds, width)
Change = Callable[[Key, int, float], float]  # (cell, instance, value) -> value


def study_value(task: str, algorithm: str, strategy: str, seconds: float, width: int) -> float:
    """Mean returns under which every claim holds."""
    if strategy == "compass":  # best at 30 s x 64, saturated from 10 s on, steepest until then
        return {1.0: 10.0, 10.0: 15.5, 30.0: 15.55}[seconds]
    if strategy == "latent-sampling":
        return {1.0: 9.5, 10.0: 10.5, 30.0: 11.0}[seconds]
    sampling = GREEDY[algorithm] + {1.0: 2.0, 10.0: 2.5, 30.0: 3.0}[seconds]  # the flattest
    if strategy == "sampling":
        return sampling
    if strategy == "finetune":  # worse than sampling on average at 30 s, better at 64 only
        return sampling + (0.5 if (seconds, width) == (30.0, 64) else -2.0 if width < 64
                           else -1.0)
    # SGBS: worse than sampling on Connector, better on RWARE (most at the smallest budget)
    if task == CONNECTOR:
        return sampling - 1.0
    return GREEDY[algorithm] + {1.0: 3.0, 10.0: 3.8, 30.0: 4.5}[seconds]


def _row(task: str, algorithm: str, strategy: str, instance: int, value: float,
         seconds: float | None, width: int) -> dict[str, Any]:
    return {"task": task, "instance": instance, "seed": 0, "strategy": strategy,
            "options": {}, "algorithm": algorithm, "checkpoint_sha256": algorithm,
            "seconds": seconds, "rollouts": None if seconds else 1, "width": width,
            "total_return": value, "won": None, "rollouts_done": width}


def study_rows(change: Change | None = None, noise: float = 0.05,
               keep: Callable[[Key], bool] = lambda key: True) -> list[dict[str, Any]]:
    """Greedy IPPO, MAPPO and SABLE; sampling, SGBS and fine-tuning from MAPPO and SABLE;
    COMPASS and latent sampling from a COMPASS checkpoint trained from SABLE (the study's best
    pairing); {1, 10, 30} s x {16, 64} on two
    tasks. Each value gets a little independent noise per instance and an offset shared by
    every cell of the instance (instances differ in difficulty)."""
    rng = np.random.default_rng(0)
    keys: list[Key] = [(task, algorithm, "greedy", None, 1)
                       for task in (RWARE, CONNECTOR) for algorithm in GREEDY]
    keys += [(task, algorithm, strategy, seconds, width)
             for task in (RWARE, CONNECTOR) for seconds in BUDGETS for width in WIDTHS
             for algorithm, strategy in [(a, s) for a in ("mappo", "sable")
                                         for s in ("sampling", "sgbs", "finetune")]
             + [(LATENT, "compass"), (LATENT, "latent-sampling")]]
    rows = []
    for key in filter(keep, keys):
        task, algorithm, strategy, seconds, width = key
        for i in range(INSTANCES):
            value = (GREEDY[algorithm] if strategy == "greedy" else
                     study_value(task, algorithm, strategy, seconds or 0.0, width))
            value += math.sin(i) + float(rng.normal(0.0, noise))
            if change is not None:
                value = change(key, i, value)
            rows.append(_row(task, algorithm, strategy, i, value, seconds, width))
    return rows


def verdicts(rows: list[dict[str, Any]]) -> dict[str, str]:
    return {c.number: c.verdict for c in evaluate_claims(rows, reps=300)}


@pytest.fixture(scope="module")
def holding() -> dict[str, claims.ClaimResult]:
    return {c.number: c for c in evaluate_claims(study_rows(), reps=300)}


def test_every_claim_holds_on_a_store_built_to_agree_with_the_study(
        holding: dict[str, claims.ClaimResult]) -> None:
    assert list(holding) == ["1", "2", "3", "4a", "4b", "5", "6", "7a", "7b", "8a", "8b"]
    assert {n: c.verdict for n, c in holding.items()} == dict.fromkeys(holding, HOLDS)
    for result in holding.values():
        assert result.value is not None and result.ci95 is not None
        assert result.ci95[0] <= result.value <= result.ci95[1]
        assert result.text and result.definition and result.test and result.detail


def test_the_figures_are_the_measured_differences(
        holding: dict[str, claims.ClaimResult]) -> None:
    # 2: the best strategy at 30 s x 64 is COMPASS (15.55 against SABLE's greedy 10).
    assert "at the study's 30 s × 64" in holding["2"].detail
    assert f"best strategy compass ({LATENT})" in holding["2"].detail
    assert holding["2"].value == pytest.approx(55.5, abs=1.0)
    assert holding["2"].study.startswith("+45 % mean, +126 % max")
    # 4a: SABLE's greedy 10 against MAPPO's 9, in % of the best zero-shot (10).
    assert holding["4a"].value == pytest.approx(10.0, abs=1.0)
    # 6: fine-tuning 0.5 above sampling at 30 s x 64, i.e. +5 %.
    assert holding["6"].value == pytest.approx(5.0, abs=1.0)
    assert "at 30 s" in holding["6"].detail and "width 16" in holding["6"].detail
    # 8b: COMPASS's window ends where it saturates (10 s; it gains 0.5 % after).
    assert "to 10 s × 64, where COMPASS saturates" in holding["8b"].detail
    # 1: IPPO's greedy is measured but never searched; the table says so.
    assert "not searched: ippo" in holding["1"].detail


def _shift(amount: float, **where: Any) -> Change:
    """Add `amount` to the cells whose key fields match `where`."""
    fields = ("task", "algorithm", "strategy", "seconds", "width")

    def change(key: Key, instance: int, value: float) -> float:
        named = dict(zip(fields, key, strict=True))
        matches = all(named[k] in (v if isinstance(v, tuple) else (v,))
                      for k, v in where.items())
        return value + amount if matches else value
    return change


@pytest.mark.parametrize(("claim", "change"), [
    ("1", _shift(-5.0, algorithm="mappo", strategy="finetune", seconds=30.0, width=64)),
    ("2", _shift(+10.0, strategy="greedy")),
    ("3", _shift(-3.0, task=CONNECTOR, strategy="compass", seconds=30.0)),
    ("4a", _shift(-1.5, algorithm="sable", strategy="greedy")),
    ("4b", _shift(-3.0, algorithm=("sable", LATENT), strategy=("sampling", "sgbs", "finetune",
                                                               "compass", "latent-sampling"))),
    ("5", _shift(+3.0, strategy="finetune", seconds=30.0)),
    ("6", _shift(+2.5, strategy="finetune", seconds=30.0, width=16)),
    ("7a", _shift(+2.0, task=CONNECTOR, strategy="sgbs")),
    ("7b", _shift(-2.0, task=RWARE, strategy="sgbs", seconds=1.0)),
    ("8a", _shift(+3.0, strategy="sampling", seconds=30.0)),
    ("8b", _shift(+5.0, strategy="latent-sampling", seconds=10.0)),  # steeper to 10 s
])
def test_each_verdict_flips_when_the_rows_say_otherwise(claim: str, change: Change) -> None:
    found = verdicts(study_rows(change))
    assert found[claim] == DOES_NOT_HOLD
    # Changes aimed at one claim leave the claims that do not look at those cells alone.
    if claim in ("3", "4a", "7a", "7b", "8b"):
        assert [n for n, v in found.items() if v != HOLDS] == [claim]


def test_a_store_without_the_cells_a_claim_needs_says_what_is_missing() -> None:
    no_sable = {c.number: c for c in evaluate_claims(
        study_rows(keep=lambda key: key[1] not in ("sable", LATENT)), reps=100)}
    assert no_sable["4a"].verdict == NOT_MEASURABLE and no_sable["4a"].value is None
    assert "no greedy zero-shot rows of a SABLE checkpoint" in no_sable["4a"].detail
    assert no_sable["4b"].verdict == NOT_MEASURABLE
    assert "searches from SABLE" in no_sable["4b"].detail
    assert no_sable["1"].verdict == HOLDS  # the rest is still measured

    one_budget = {c.number: c for c in evaluate_claims(
        study_rows(keep=lambda key: key[3] in (None, 10.0)), reps=100)}
    for number in ("8a", "8b"):
        assert one_budget[number].verdict == NOT_MEASURABLE
        assert "needs two time budgets or more at width 64" in one_budget[number].detail
    assert one_budget["5"].verdict == NOT_MEASURABLE  # no 30 s cells
    # Without the study's 30 s x 64, the headline claims fall back to the largest cell and
    # say so.
    assert one_budget["2"].verdict == HOLDS
    assert "10 s × 64, the largest measured" in one_budget["2"].detail

    one_width = {c.number: c for c in evaluate_claims(
        study_rows(keep=lambda key: key[4] in (1, 64)), reps=100)}
    assert one_width["6"].verdict == NOT_MEASURABLE
    assert "widths measured with both: [64]" in one_width["6"].detail

    no_connector = {c.number: c for c in evaluate_claims(
        study_rows(keep=lambda key: key[0] == RWARE), reps=100)}
    assert no_connector["7a"].verdict == NOT_MEASURABLE
    assert "no connector task" in no_connector["7a"].detail

    zero_shot_only = evaluate_claims(study_rows(keep=lambda key: key[2] == "greedy"), reps=100)
    assert [c.verdict for c in zero_shot_only if c.number != "4a"] == [NOT_MEASURABLE] * 10


def test_differences_lost_in_noise_are_undecided() -> None:
    # Fine-tuning at 30 s: each instance 1 above or 1 below sampling, a mean of about 0.
    def coin(key: Key, instance: int, value: float) -> float:
        task, algorithm, strategy, seconds, width = key
        if strategy == "finetune" and seconds == 30.0:
            sampling = study_value(task, algorithm, "sampling", 30.0, width)
            return sampling + math.sin(instance) + (1.0 if instance % 2 else -1.0)
        return value

    found = {c.number: c for c in evaluate_claims(study_rows(coin), reps=300)}
    assert found["5"].verdict == UNDECIDED
    low, high = found["5"].ci95 or (0.0, 0.0)
    assert low < 0.0 < high
    # Fine-tuning is now level with sampling at 64 too: claim 6 cannot be decided either.
    assert found["6"].verdict == UNDECIDED


def test_the_verdict_rule() -> None:
    assert verdict((0.1, 2.0)) == HOLDS
    assert verdict((-0.1, 2.0)) == UNDECIDED
    assert verdict((-2.0, 0.0)) == DOES_NOT_HOLD
    assert verdict((0.0, 0.0)) == DOES_NOT_HOLD  # equal on every instance is not better
    assert verdict((-2.0, -0.1), above=False) == HOLDS
    assert verdict((0.0, 0.0), above=False) == DOES_NOT_HOLD
    assert verdict((4.0, 6.0), threshold=5.0) == UNDECIDED
    # Float32 returns of one episode summed in another order are equal, not better.
    assert verdict((1e-6, 5e-6)) == DOES_NOT_HOLD
    assert verdict((1e-6, 8.0)) == UNDECIDED


def test_a_claim_is_the_same_whatever_the_row_order() -> None:
    rows = study_rows()
    forward = evaluate_claims(rows, reps=200)
    backward = evaluate_claims(rows[::-1], reps=200)
    assert [(c.verdict, c.value, c.ci95) for c in forward] == [
        (c.verdict, c.value, c.ci95) for c in backward]


def test_a_strategy_run_only_with_its_checkpoints_defaults_is_still_the_one_claimed() -> None:
    # A checkpoint's recorded search defaults (`ceiling defaults`) give a plain suite entry
    # options: COMPASS run only at temperature 1 is still "COMPASS" for every claim. With a
    # second variant beside it neither is primary, and the claims that need one say so.
    def with_defaults(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**r, "options": {"temperature": 1.0}} if r["strategy"] == "compass" else r
                for r in rows]

    rows = study_rows()
    assert verdicts(with_defaults(rows)) == verdicts(rows)
    both = with_defaults(rows) + [{**r, "options": {"temperature": 0.5}} for r in rows
                                  if r["strategy"] == "compass"]
    results = {c.number: c for c in evaluate_claims(both, reps=300)}
    assert results["3"].verdict == HOLDS  # COMPASS's best variant against the best other
    assert results["8b"].verdict == NOT_MEASURABLE
    assert "no task has COMPASS at every time budget" in results["8b"].detail


def test_a_variant_added_in_one_cell_leaves_the_primary_one_in_place() -> None:
    # Retuned search defaults (`ceiling defaults`) run a plain suite entry with new options:
    # measured in the headline cell only, that variant must not take COMPASS out of the
    # scaling claims, which compare one variant across budgets.
    def with_defaults(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**r, "options": {"temperature": 1.0}} if r["strategy"] == "compass" else r
                for r in rows]

    rows = with_defaults(study_rows())
    retuned = [{**r, "options": {"num_distributions": 1, "temperature": 1.0}} for r in rows
               if r["strategy"] == "compass" and r["seconds"] == 30.0]
    assert retuned
    assert verdicts(rows + retuned)["8b"] == verdicts(rows)["8b"] != NOT_MEASURABLE
    assert verdicts(rows + retuned)["8a"] == verdicts(rows)["8a"]


def test_the_variant_the_checkpoints_recorded_defaults_name_is_the_primary_one() -> None:
    # Sampling's temperature tuned and recorded after the sweep (`ceiling tune --record`): a
    # resumed sweep stores the tuned variant beside the rows at temperature 1 (options {}).
    # Rows that record the checkpoint's search defaults make it the primary variant: here the
    # tuned sampling is 2 lower at every cell, so that fine-tuning beats it at 30 s (claim 5).
    tuned = {"temperature": 0.5}
    old = [{**r, "created": "2026-12-01T00:00:00+00:00"} for r in study_rows()]
    new = [{**r, "options": tuned, "total_return": r["total_return"] - 2.0,
            "search_defaults": tuned, "created": "2026-12-07T00:00:00+00:00"}
           for r in old if r["strategy"] == "sampling"]
    assert verdicts(old)["5"] == HOLDS
    found = {c.number: c for c in evaluate_claims(old + new, reps=300)}
    assert found["5"].verdict == DOES_NOT_HOLD
    assert f"{RWARE} sampling temperature=0.5 (mappo)" in found["5"].detail  # which sampling
    # Without the record (rows stored before schema version 5) the variant without options
    # stays primary, and so does it once the latest rows say the defaults were removed.
    unrecorded = [{**r, "search_defaults": None} for r in new]
    assert verdicts(old + unrecorded)["5"] == HOLDS
    removed = [{**r, "search_defaults": {}, "created": "2026-12-08T00:00:00+00:00"} for r in old
               if r["strategy"] == "sampling" and r["instance"] == 0]
    assert verdicts(old + new + removed)["5"] == HOLDS


def test_the_headline_takes_each_strategy_in_its_primary_variant_task_by_task() -> None:
    # COMPASS's settings tuned and recorded on RWARE only, and run there at 30 s x 64 (3 above
    # its defaults): claim 2 counts COMPASS on RWARE with the tuned settings and on Connector
    # with its defaults, as a plain `ceiling solve` searches each, though no one variant was
    # measured on both tasks. Unrecorded, the tuned variant is not the headline's.
    tuned = {"num_distributions": 1}
    old = [{**r, "created": "2026-12-01T00:00:00+00:00"} for r in study_rows()]
    new = [{**r, "options": tuned, "total_return": r["total_return"] + 3.0,
            "search_defaults": tuned, "created": "2026-12-07T00:00:00+00:00"}
           for r in old if r["strategy"] == "compass" and r["task"] == RWARE
           and (r["seconds"], r["width"]) == (30.0, 64)]
    before = {c.number: c for c in evaluate_claims(old, reps=300)}["2"]
    after = {c.number: c for c in evaluate_claims(old + new, reps=300)}["2"]
    assert before.value == pytest.approx(55.5, abs=1.0)  # 15.55 over SABLE's 10 on both
    assert after.value == pytest.approx((85.5 + 55.5) / 2, abs=1.0)  # 18.55 on RWARE
    assert f"best strategy compass ({LATENT})" in after.detail
    assert f"{RWARE} compass num_distributions=1 ({LATENT})" in after.detail
    assert CONNECTOR + " compass" not in after.detail.split("variants with options")[-1]
    unrecorded = [{**r, "search_defaults": None} for r in new]
    assert {c.number: c for c in evaluate_claims(old + unrecorded, reps=300)}["2"].value == (
        before.value)


def test_each_compass_checkpoint_is_compared_with_its_own_base_policy() -> None:
    # A second COMPASS checkpoint, trained from MAPPO (label `compass`), beside the one from
    # SABLE: claim 3 asks, per base, whether COMPASS beats that base's other searches, and
    # claim 4b counts COMPASS from SABLE among SABLE's searches, the other among MAPPO's.
    from_mappo = [{**r, "algorithm": "compass", "checkpoint_sha256": "compass",
                   "total_return": r["total_return"] + shift}
                  for r in study_rows() if r["algorithm"] == LATENT
                  for shift in [-15.55 + GREEDY["mappo"] + 5.0]]  # 14: over MAPPO's 13.5
    rows = study_rows() + from_mappo
    found = {c.number: c for c in evaluate_claims(rows, reps=300)}
    assert found["3"].verdict == HOLDS
    assert "from mappo: COMPASS" in found["3"].detail
    assert "from sable: COMPASS" in found["3"].detail
    assert found["4b"].verdict == HOLDS  # COMPASS from SABLE (15.55) over the MAPPO one (14)
    # COMPASS from MAPPO below MAPPO's own SGBS (13.5 on RWARE at 30 s): not the best for MAPPO.
    below = [{**r, "total_return": r["total_return"] - 2.0} for r in from_mappo]
    assert verdicts(study_rows() + below)["3"] == DOES_NOT_HOLD
    # ... and above SABLE's best search, it makes SABLE not the best base after search.
    above = [{**r, "total_return": r["total_return"] + 4.0} for r in from_mappo]
    assert verdicts(study_rows() + above)["4b"] == DOES_NOT_HOLD
