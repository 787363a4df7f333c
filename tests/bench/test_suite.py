"""Suite validation: every problem is reported at once, each with its line; cells are right."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceiling.bench.suite import load_suite, parse_suite
from ceiling.errors import CeilingError

SUITES = Path(__file__).resolve().parents[2] / "suites"

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
    checkpoints: [shipped:ippo, shipped:sable]
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
        (7, "rollouts (40) must be a multiple of width (16)"),
        (8, "seconds must be a positive number"),
        (11, "no shipped 'sable' checkpoint for connector:con-5x5x3a"),
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


def test_latent_strategies_need_a_latent_checkpoint() -> None:
    text = (SUITES / "smoke.yaml").read_text().replace("  - sampling", "  - compass")
    with pytest.raises(CeilingError, match=r"smoke.yaml:11: task connector:con-5x5x3a has no "
                                           r"latent-conditioned \(COMPASS\) checkpoint"):
        parse_suite(text, "smoke.yaml")


def test_cells_are_the_cross_product_with_one_zero_shot_greedy_cell() -> None:
    suite = load_suite(SUITES / "cpu.yaml")
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
