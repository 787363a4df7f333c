"""benchmarks/headroom.py, the script behind BENCHMARKS.md's headroom table: normalised greedy
of the best base policy, sampling's larger budget against its smaller one per base policy, and
other stores counted towards the best base policy and the best return found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ceiling.bench.store import Row, Store
from tests.bench.scripts import load_benchmark

INSTANCES = range(8)


@pytest.fixture(scope="module")
def headroom() -> Any:
    return load_benchmark("headroom")


def _row(algorithm: str, strategy: str, instance: int, value: float, seconds: float | None = None,
         sha: str | None = None) -> Row:
    return Row(config_hash=f"{algorithm}-{strategy}-{seconds}-{instance}", suite="s", task="t",
               instance=instance, checkpoint=f"shipped:{algorithm}", algorithm=algorithm,
               checkpoint_sha256=sha or algorithm, strategy=strategy, options="{}",
               seconds=seconds, rollouts=None if seconds else 1, width=64 if seconds else 1,
               seed=0, total_return=value, won=None, verified=True, verified_return=value,
               aborted=None, trace="[[0.1, 1, 1.0]]", compile_seconds=0.1,
               search_seconds=seconds or 0.0, rollouts_done=10)


def _store(path: Path, rows: list[Row], random: bool = True) -> str:
    with Store(path) as store:
        for row in rows:
            store.add(row)
        if random:
            store.add_baselines("t", "random", [0.0] * len(INSTANCES))
    return str(path)


def headroom_rows() -> list[Row]:
    """Greedy MAPPO at 5, sampling from MAPPO at 7 (3 s) and 8 + i/8 (30 s) on instance i."""
    rows = [_row("mappo", "greedy", i, 5.0) for i in INSTANCES]
    rows += [_row("mappo", "sampling", i, 7.0, 3.0) for i in INSTANCES]
    return rows + [_row("mappo", "sampling", i, 8.0 + i / 8, 30.0) for i in INSTANCES]


def test_headroom_of_one_store(headroom: Any, tmp_path: Path, capsys: Any) -> None:
    headroom.main([_store(tmp_path / "h.sqlite", headroom_rows())])
    line = capsys.readouterr().out.splitlines()[2]
    best = 8.0 + np.mean([i / 8 for i in INSTANCES])
    gain = 100 * (best - 5.0) / 5.0
    assert f"| 5.00 | {best:.2f} | {5.0 / best:.2f} | {gain:+.0f} % |" in line
    assert "MAPPO, T=1: 7.00 (3 s) -> " in line and line.endswith("| headroom |")


def test_another_stores_better_base_and_better_search_count(headroom: Any, tmp_path: Path,
                                                            capsys: Any) -> None:
    # Greedy SABLE at 9 and a search at 20 in the other store: SABLE becomes the base
    # (normalised 9 / 20 = 0.45); its 30 s sampling alone has no 3 s partner, so the
    # budget comparison is still MAPPO's only.
    other = [_row("sable", "greedy", i, 9.0) for i in INSTANCES]
    other += [_row("sable", "sampling", i, 20.0, 30.0) for i in INSTANCES]
    other += [_row("mappo", "sampling", i, 0.0, 30.0) for i in INSTANCES]
    headroom.main([_store(tmp_path / "h.sqlite", headroom_rows()),
                   "--also", _store(tmp_path / "c.sqlite", other, random=False)])
    line = capsys.readouterr().out.splitlines()[2]
    assert line.startswith("| `t` | SABLE | 8 | 0.00 | 9.00 | 20.00 | 0.45 | +122 % |")
    # The other store's MAPPO rows at 30 s (0.0) do not replace this store's (8 + i/8).
    assert "MAPPO, T=1: 7.00 (3 s) -> 8.44 (30 s)" in line and "SABLE, T=1" not in line


def test_gain_over_greedy_only_where_greedy_is_positive(headroom: Any) -> None:
    assert headroom.gain_over_greedy({"greedy": 15.0, "best": 18.0}) == "+20 %"
    assert headroom.gain_over_greedy({"greedy": -2.0, "best": 3.0}) == "-"


def test_stores_with_different_checkpoints_under_one_label_are_refused(
        headroom: Any, tmp_path: Path) -> None:
    other = [_row("mappo", "greedy", i, 6.0, sha="retrained") for i in INSTANCES]
    with pytest.raises(SystemExit, match="different checkpoints under one label"):
        headroom.main([_store(tmp_path / "h.sqlite", headroom_rows()),
                       "--also", _store(tmp_path / "c.sqlite", other, random=False)])
