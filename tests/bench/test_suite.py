"""Suite validation: every problem is reported at once, each with its line; cells are right."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceiling.bench.run import Prepared, preflight
from ceiling.bench.suite import load_suite, parse_suite
from ceiling.errors import CeilingError

SUITES = Path(__file__).resolve().parents[2] / "suites"
SMOKE_TEXT = (SUITES / "smoke.yaml").read_text()

BAD = """\
name: bad
instances: 2
seeds: [0]
widths: [16]
budgets:
  - rollouts: 64
  - rollouts: 40
  - {{seconds: -1}}
tasks:
  connector:con-5x5x3a:
    checkpoints: [shipped:ippo, shipped:qmix]
  rware:no-such-map:
    checkpoints: [shipped:ippo]
  smax:3m:
    checkpoints: [{{checkpoint: {ckpt}, only: [sgbs]}}]
strategies:
  - greedy
  - warp-drive
  - name: sampling
    options: {{temperature: 1.0, beam: 3}}
colour: blue
"""


def test_every_problem_is_reported_with_its_line() -> None:
    connector = load_suite(SUITES / "smoke.yaml").tasks["connector:con-5x5x3a"][0].path
    with pytest.raises(CeilingError) as caught:
        parse_suite(BAD.format(ckpt=connector), "bad.yaml")
    message = str(caught.value)
    expected = [
        (8, "seconds must be a positive number"),
        (11, "no shipped 'qmix' checkpoint for connector:con-5x5x3a"),
        (12, "unknown task 'rware:no-such-map'"),
        (15, "was trained for 'connector:con-5x5x3a', not 'smax:3m'"),
        (18, "unknown strategy 'warp-drive'"),
        (15, "`only` names 'sgbs', which is not a strategy of this suite"),
        (20, "strategy 'sampling' has no option 'beam'"),
        (21, "unknown key 'colour'"),
    ]
    for line, text in expected:
        assert any(f"bad.yaml:{line}: " in part and text in part
                   for part in message.splitlines()), (line, text, message)
    assert f"has {len(expected)} problem(s)" in message


def test_a_rollout_budget_must_fit_each_strategys_batches() -> None:
    """Rollouts per batch are the strategy's (SGBS at width 10: 8), so an inexact budget is
    found once strategies are built, before any cell runs, with the budget's line."""
    text = (SMOKE_TEXT.replace("widths: [16]", "widths: [10]")
            .replace("  - rollouts: 64", "  - rollouts: 60\n  - rollouts: 80")
            .replace("  - sampling", "  - sampling\n  - sgbs"))
    suite = parse_suite(text, "fit.yaml")  # each budget is valid on its own
    with pytest.raises(CeilingError) as caught:
        preflight(suite, suite.cells(), Prepared())
    (problem,) = [line for line in str(caught.value).splitlines() if "fit.yaml:" in line]
    assert problem.strip().startswith("fit.yaml:9: sgbs on connector:con-5x5x3a: a rollout "
                                      "budget of 60 cannot be met exactly")
    assert "sgbs at width 10 runs 8 rollouts per batch" in problem  # sampling runs 10: fine
    # greedy's single rollout is budget-free; 80 is 8 SGBS batches and 8 sampling ones
    exact = parse_suite(text.replace("  - rollouts: 60\n", ""), "fit.yaml")
    preflight(exact, exact.cells(), Prepared())


def test_a_width_below_a_strategys_minimum_is_a_problem() -> None:
    text = (SMOKE_TEXT.replace("widths: [16]", "widths: [2, 16]")
            .replace("checkpoints: [shipped:ippo]", "checkpoints: [shipped:ippo, shipped:compass]")
            .replace("  - sampling", "  - sampling\n  - compass"))
    with pytest.raises(CeilingError, match=r"narrow.yaml:16: compass needs a width \(parallel "
                                           r"attempts\) of at least 4; widths lists 2"):
        parse_suite(text, "narrow.yaml")
    suite = parse_suite(text.replace("widths: [2, 16]", "widths: [16]"), "narrow.yaml")
    # the zero-shot strategy ignores widths: one cell per checkpoint and instance
    assert {(c.strategy, c.width) for c in suite.cells()} == {
        ("greedy", 1), ("sampling", 16), ("compass", 16)}


def test_latent_strategies_need_a_latent_checkpoint() -> None:
    text = (SUITES / "smoke.yaml").read_text().replace("  - sampling", "  - compass")
    with pytest.raises(CeilingError, match=r"smoke.yaml:11: task connector:con-5x5x3a has no "
                                           r"latent-conditioned \(COMPASS\) checkpoint"):
        parse_suite(text, "smoke.yaml")


def test_cells_are_the_cross_product_with_one_zero_shot_greedy_cell() -> None:
    suite = load_suite(SUITES / "cpu-small.yaml")
    cells = suite.cells()
    greedy = [c for c in cells if c.strategy == "greedy"]
    # greedy: 3 tasks x 2 base checkpoints (IPPO only plays greedy) x 16 instances, width 1,
    # one rollout, whatever the budgets and widths.
    assert len(greedy) == 3 * 2 * 16
    assert {(c.width, c.rollouts, c.seed) for c in greedy} == {(1, 1, 0)}
    assert {c.checkpoint.algorithm for c in cells if c.strategy != "greedy"} == {"mappo",
                                                                                 "compass"}
    # sampling/sgbs/finetune on MAPPO, compass/latent-sampling on COMPASS: 5 strategies x
    # 3 budgets x 2 widths x 16 instances per task.
    assert len(cells) - len(greedy) == 3 * 5 * 3 * 2 * 16
    assert {c.width for c in cells if c.strategy != "greedy"} == {16, 64}
    assert {c.checkpoint.algorithm for c in cells if c.strategy == "compass"} == {"compass"}
    assert len({c.key for c in cells}) == len(cells)
    groups = [c.group for c in cells]
    # cells sharing a compiled strategy are adjacent
    changes = sum(1 for a, b in zip(groups, groups[1:], strict=False) if a != b)
    assert changes + 1 == len(set(groups))


def test_paper_suite_lists_every_missing_checkpoint() -> None:
    with pytest.raises(CeilingError) as caught:
        load_suite(SUITES / "paper.yaml")
    assert "has 28 problem(s)" in str(caught.value)
    assert "checkpoint runs/smax-smacv2_10_units/mappo/best not found" in str(caught.value)


def test_duplicates_are_problems_not_silent_merges() -> None:
    text = (SUITES / "smoke.yaml").read_text()
    text = text.replace("seeds: [0]", "seeds: [0, 0]").replace(
        "  - sampling", "  - sampling\n  - {name: sampling}")
    with pytest.raises(CeilingError) as caught:
        parse_suite(text, "dup.yaml")
    message = str(caught.value)
    assert "dup.yaml:6: seeds lists 0 twice" in message
    assert "dup.yaml:16: strategy sampling with options {} is listed twice" in message


def test_cell_keys_change_with_the_search_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows searched under another key derivation are rerun on resume, never skipped."""
    from ceiling.bench import suite as suite_module

    cells = parse_suite(SMOKE_TEXT, str(SUITES / "smoke.yaml")).cells()
    keys = [c.key for c in cells]
    monkeypatch.setattr(suite_module, "SEARCH_IDENTITY", suite_module.SEARCH_IDENTITY - 1)
    assert not set(keys) & {c.key for c in cells}


PARTS = """\
name: parts
instances: 2
seeds: [0]
widths: [16]
budgets:
  - rollouts: 64
tasks:
  connector:con-5x5x3a:
    checkpoints: [shipped:ippo]
  smax:3m:
    checkpoints: [shipped:ippo]
  rware:tiny-2ag-hard:
    checkpoints: [shipped:qmix]
strategies:
  - greedy
  - sampling
"""


def test_a_sweep_run_in_parts_has_the_whole_suites_cells() -> None:
    whole = parse_suite(PARTS.replace("shipped:qmix", "shipped:ippo"), "parts.yaml").cells()
    first = parse_suite(PARTS, "parts.yaml", tasks=["connector:con-5x5x3a"]).cells()
    rest = parse_suite(PARTS, "parts.yaml", tasks=["smax:3m"]).cells()
    assert {c.task for c in first} == {"connector:con-5x5x3a"}  # the bad task is not checked
    assert [c.key for c in first + rest] == [
        c.key for c in whole if c.task != "rware:tiny-2ag-hard"]
    with pytest.raises(CeilingError, match="no shipped .qmix. checkpoint"):  # unless it runs
        parse_suite(PARTS, "parts.yaml", tasks=["smax:3m", "rware:tiny-2ag-hard"])
    with pytest.raises(CeilingError, match=r"smax:2s3z not in suite parts.yaml; its tasks are "
                                           r"connector:con-5x5x3a, smax:3m, rware:tiny-2ag-hard"):
        parse_suite(PARTS, "parts.yaml", tasks=["smax:2s3z"])


def test_the_claims_sweeps_parts_are_cells_of_the_one_sweep() -> None:
    """suites/cpu.yaml's companions fill its store without running a cell twice: the RWARE
    part (until that task's IPPO ships) keeps cpu.yaml's budgets, widths, instances and
    strategies; the grid's 30 s x 64 cells are cpu.yaml's own cells (same keys)."""
    connector = "connector:con-10x10x10a"
    whole = parse_suite((SUITES / "cpu.yaml").read_text(), "cpu.yaml", tasks=[connector])
    part = load_suite(SUITES / "cpu-rware4-no-ippo.yaml")
    shape = ("name", "instances", "seeds", "widths", "budgets")
    assert [getattr(part, f) for f in shape] == [getattr(whole, f) for f in shape]
    assert ([(s.name, s.options) for s in part.strategies]
            == [(s.name, s.options) for s in whole.strategies])
    assert list(part.tasks) == ["rware:tiny-4ag-hard"]
    assert {c.spec for c in part.tasks["rware:tiny-4ag-hard"]} == {"shipped:mappo",
                                                                  "shipped:compass"}
    grid = parse_suite((SUITES / "cpu-grid.yaml").read_text(), "cpu-grid.yaml",
                       tasks=[connector])
    whole_keys = {c.key for c in whole.cells()}
    headline = {c.key for c in grid.cells() if c.seconds == 30 and c.width == 64}
    assert headline and headline <= whole_keys
    assert not {c.key for c in grid.cells() if c.seconds != 30 or c.width != 64} & whole_keys


def test_the_sable_rerun_part_is_exactly_the_claims_sweeps_searches_of_sable() -> None:
    """suites/cpu-sable.yaml, for running SABLE's searches again after a speed-up, has
    cpu.yaml's keys: its cells are cpu.yaml's searching cells of the two SABLE checkpoints,
    all of them and nothing else, on every task."""
    whole = load_suite(SUITES / "cpu.yaml")
    part = load_suite(SUITES / "cpu-sable.yaml")
    sable = {"shipped:sable", "shipped:compass-sable"}
    expected = {c.key for c in whole.cells()
                if c.checkpoint.spec in sable and c.strategy != "greedy"}
    assert expected and {c.key for c in part.cells()} == expected
