"""benchmarks/paired.py, the script behind BENCHMARKS.md's paired differences of the claims
sweep: it pairs by instance, joins greedy rows to every budget, and names options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.bench.scripts import load_benchmark


@pytest.fixture(scope="module")
def paired() -> Any:
    return load_benchmark("paired")


def _row(strategy: str, algorithm: str, instance: int, value: float,
         seconds: float | None = 30.0, options: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"task": "t", "instance": instance, "strategy": strategy, "algorithm": algorithm,
            "options": options or {}, "seconds": seconds, "rollouts": None if seconds else 1,
            "width": 64 if seconds else 1, "total_return": value, "rollouts_done": 10}


def test_differences_pair_instances_and_count_wins(paired: Any) -> None:
    a = {0: 3.0, 1: 5.0, 2: 4.0, 7: 100.0}  # instance 7 has no partner: left out
    b = {0: 1.0, 1: 5.0, 2: 6.0, 3: -50.0}
    result = paired.compare(a, b)
    assert result["instances"] == 3
    assert result["difference"] == pytest.approx((2.0 + 0.0 - 2.0) / 3)
    assert (result["better"], result["worse"]) == (1, 1)
    low, high = result["ci95"]
    assert low <= result["difference"] <= high
    assert paired.compare({0: 1.0}, {1: 1.0}) == {"instances": 0}


def test_greedy_rows_join_every_budget_and_options_name_a_variant(paired: Any) -> None:
    rows = [_row("greedy", "mappo", i, 1.0, seconds=None) for i in range(2)]
    rows += [_row("sampling", "mappo", i, 2.0, seconds=s) for i in range(2) for s in (3, 30)]
    rows += [_row("compass", "compass", i, 3.0, options={"temperature": 0.0}) for i in range(2)]
    cells = paired.group(rows)
    assert set(cells) == {("t", 3, None, 64), ("t", 30, None, 64)}
    assert set(cells[("t", 3, None, 64)]) == {"greedy:mappo", "sampling:mappo"}
    assert set(cells[("t", 30, None, 64)]) == {"greedy:mappo", "sampling:mappo",
                                               'compass:compass:{"temperature": 0.0}'}
    text = paired.table(("t", 30, None, 64), cells[("t", 30, None, 64)], ["greedy:mappo"])
    lines = text.splitlines()
    assert lines[0] == "### t, 30 s x 64"
    # Best first; each row's difference from greedy, on both instances, better on both.
    assert lines[4].startswith('| `compass:compass:{"temperature": 0.0}` | 2 | 3.00 |')
    assert "+2.00 [+2.00, +2.00] (2/0)" in lines[4]
    assert lines[6].startswith("| `greedy:mappo` | 2 | 1.00 | 10 | - |")


def test_each_configuration_shows_its_machine_speed_and_a_gap_is_noted(paired: Any) -> None:
    rows = [_row("greedy", "mappo", i, 1.0, seconds=None) for i in range(2)]
    rows += [_row("sampling", "mappo", i, 2.0) for i in range(2)]
    rows += [_row("sgbs", "mappo", i, 3.0) for i in range(2)]
    for row in rows:  # greedy has no budget: its speed is not shown
        row["relative_speed"] = {"greedy": 0.5, "sampling": 1.0, "sgbs": 0.8}[row["strategy"]]
    cell = ("t", 30, None, 64)
    lines = paired.table(cell, paired.group(rows)[cell], []).splitlines()
    assert lines[2] == ("| configuration | instances | mean return | rollouts per cell | "
                        "speed |")
    assert lines[4] == "| `sgbs:mappo` | 2 | 3.00 | 10 | 0.80 |"
    assert lines[5] == "| `sampling:mappo` | 2 | 2.00 | 10 | 1.00 |"
    assert lines[6] == "| `greedy:mappo` | 2 | 1.00 | 10 | - |"
    assert lines[-1].startswith("note: these searches ran at machine speeds from 0.80 to 1.00")
    for row in rows:
        if row["strategy"] == "sgbs":
            row["relative_speed"] = 0.95
    assert "note:" not in paired.table(cell, paired.group(rows)[cell], [])
    for row in rows:  # a store from before the probe: no speeds, no note
        row["relative_speed"] = None
    text = paired.table(cell, paired.group(rows)[cell], [])
    assert "note:" not in text and "| `sgbs:mappo` | 2 | 3.00 | 10 | - |" in text


def test_gain_from_a_smaller_budget_pairs_the_same_configuration(paired: Any) -> None:
    rows = [_row("greedy", "mappo", i, 1.0, seconds=None) for i in range(2)]
    rows += [_row("sampling", "mappo", i, 2.0 + i, seconds=10) for i in range(2)]
    rows += [_row("sampling", "mappo", i, 2.5 + 2 * i, seconds=30) for i in range(2)]
    rows += [_row("sgbs", "mappo", i, 9.0, seconds=30) for i in range(2)]  # no 10 s cell
    cells = paired.group(rows)
    text = paired.table(("t", 30, None, 64), cells[("t", 30, None, 64)], [],
                        (10.0, paired.returns_of(cells[("t", 10, None, 64)])))
    lines = text.splitlines()
    assert lines[2].endswith("| gain from 10 s [95 % CI] (better/worse) |")
    by_name = {line.split("|")[1].strip(): line for line in lines[4:]}
    # Instance 0: 2.5 - 2; instance 1: 4.5 - 3: mean +1.00, better on both.
    assert by_name["`sampling:mappo`"].endswith("| +1.00 [+0.50, +1.50] (2/0) |")
    assert by_name["`sgbs:mappo`"].endswith("| - |")
    assert by_name["`greedy:mappo`"].endswith("| - |")  # a budget does not change greedy


def test_gain_from_needs_a_smaller_budget(paired: Any, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--gain-from needs --seconds"):
        paired.main([str(tmp_path / "none.sqlite"), "--gain-from", "10"])
    with pytest.raises(SystemExit, match="smaller budget"):
        paired.main([str(tmp_path / "none.sqlite"), "--seconds", "10", "--gain-from", "30"])


def test_cells_run_again_are_paired_with_their_earlier_rows(paired: Any) -> None:
    def stored(key: str, instance: int, value: float, created: str, rollouts: int) -> dict:
        return {**_row("sampling", "mappo", instance, value), "config_hash": key,
                "created": created, "rollouts_done": rollouts}

    old = [stored("a", 0, 1.0, "day1", 100), stored("b", 1, 2.0, "day1", 100),
           stored("c", 2, 5.0, "day1", 100), stored("gone", 3, 9.0, "day1", 100)]
    new = [stored("a", 0, 2.0, "day2", 300), stored("b", 1, 2.5, "day2", 300),
           stored("c", 2, 5.0, "day1", 100), stored("added", 4, 0.0, "day2", 300)]
    lines = paired.rerun_table(old, new).splitlines()
    # Only a and b were run again (c is the same row; "gone" and "added" have no partner).
    assert len(lines) == 3
    assert lines[2] == ("| t | 30 s x 64 | `sampling:mappo` | 2 | 1.50 -> 2.25 | 100 -> 300 | "
                        "+0.75 [+0.50, +1.00] (2/0) |")
    assert paired.rerun_table(old, old) == "no cell was run again"


def test_a_cell_run_again_twice_is_compared_with_its_first_row(paired: Any, tmp_path) -> None:
    import dataclasses

    from ceiling.bench.store import Row, Store

    def row(value: float) -> Row:
        return Row(config_hash="a", suite="t", task="t", instance=0, checkpoint="shipped:mappo",
                   algorithm="mappo", checkpoint_sha256="x", strategy="sampling",
                   options='{"temperature": 0.5}', seconds=30.0, rollouts=None, width=64,
                   seed=0, total_return=value, won=None, verified=True, verified_return=value,
                   aborted=None, trace="[[0.1, 64, 1.0]]", compile_seconds=0.1,
                   search_seconds=30.0, rollouts_done=10)

    db = tmp_path / "r.sqlite"
    with Store(db) as store:
        store.add(row(1.0))
        store.add(dataclasses.replace(row(2.0), rollouts_done=20), replace=True)
        store.add(dataclasses.replace(row(4.0), rollouts_done=40), replace=True)
        now = store.rows()
    (old,) = paired.replaced_rows(str(db))
    assert old["total_return"] == 1.0 and old["options"] == {"temperature": 0.5}
    lines = paired.rerun_table([old], now, same_time=True).splitlines()
    assert lines[2].startswith('| t | 30 s x 64 | `sampling:mappo:{"temperature": 0.5}` | 1 | '
                               "1.00 -> 4.00 | 10 -> 40 | +3.00")


def test_instances_keeps_a_range_of_test_instances(paired: Any, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import dataclasses

    from ceiling.bench.store import Row, Store

    base = Row(config_hash="", suite="t", task="t", instance=0, checkpoint="shipped:mappo",
               algorithm="mappo", checkpoint_sha256="x", strategy="sampling", options="{}",
               seconds=30.0, rollouts=None, width=64, seed=0, total_return=0.0, won=None,
               verified=True, verified_return=0.0, aborted=None, trace="[[0.1, 64, 1.0]]",
               compile_seconds=0.1, search_seconds=30.0, rollouts_done=10)
    db = tmp_path / "r.sqlite"
    with Store(db) as store:
        for i in range(4):  # returns 0, 10, 20, 30 on instances 0-3
            store.add(dataclasses.replace(base, config_hash=f"c{i}", instance=i,
                                          total_return=10.0 * i, verified_return=10.0 * i))
    paired.main([str(db), "--instances", "2:4"])
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith("| `sampling:mappo`"))
    assert row.startswith("| `sampling:mappo` | 2 | 25.00 |")  # instances 2 and 3 only
    with pytest.raises(SystemExit, match="holds no results on instances 4:8"):
        paired.main([str(db), "--instances", "4:8"])
    assert paired.instance_range("32:64") == (32, 64)
    for bad in ("64:32", "3", "a:b", "-1:4"):
        with pytest.raises(Exception, match="want FIRST:STOP"):
            paired.instance_range(bad)
