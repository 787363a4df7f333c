"""The machine-speed probe each cell records, and what a store's probes single out as slow."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from ceiling.bench import speed


def test_the_probe_is_the_reference_loop_rate_of_the_median_timed_call(
        monkeypatch: pytest.MonkeyPatch) -> None:
    speed._program()  # compiled (and warmed) before any timing, as in a sweep's worker
    # Five timed calls take 0.02, 0.5 (an interruption), 0.01, 0.03 and 0.02 s: the median,
    # 0.02 s, sets the figure, the interruption does not.
    durations = iter([0.02, 0.5, 0.01, 0.03, 0.02])

    def clock() -> Iterator[float]:
        now = 0.0
        while True:
            yield now
            now += next(durations)
            yield now

    ticks = clock()
    monkeypatch.setattr(speed.time, "perf_counter", lambda: next(ticks))
    assert speed.probe() == pytest.approx(speed.ITERATIONS / 0.02)


def test_the_probe_runs_the_reference_computation() -> None:
    measured = speed.probe(repeats=2)
    assert math.isfinite(measured) and measured > 0
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        speed.probe(repeats=0)


def test_cells_below_nine_tenths_of_the_store_median_are_slow() -> None:
    speeds = {"a": 100.0, "b": 110.0, "c": 95.0, "d": 85.0, "e": 89.0, "old": None}
    assert speed.reference_speed(speeds) == 95.0  # the median of the measured ones
    relative = speed.relative_speeds(speeds)
    assert relative["b"] == pytest.approx(110 / 95) and relative["old"] is None
    # 85/95 = 0.89 and 89/95 = 0.94: only d is below 0.9.
    assert speed.slow_keys(speeds) == {"d"}
    assert speed.slow_keys({"old": None}) == set() and speed.reference_speed({}) is None


def test_bench_warns_about_the_cells_it_just_stored_that_ran_slow(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ceiling.bench.cli import _warn_slow
    from ceiling.bench.store import Row, Store

    db = tmp_path / "s.sqlite"
    with Store(db) as store:
        for key, probe in (("a", 100.0), ("b", 100.0), ("c", 100.0), ("new", 80.0),
                           ("old-slow", 70.0), ("unprobed", None)):
            store.add(Row(config_hash=key, suite="t", task="t", instance=0, checkpoint="c",
                          algorithm="ippo", checkpoint_sha256="x", strategy="sampling",
                          options="{}", seconds=1.0, rollouts=None, width=8, seed=0,
                          total_return=1.0, won=None, verified=True, verified_return=1.0,
                          aborted=None, trace="[]", compile_seconds=0.0, search_seconds=1.0,
                          rollouts_done=8, speed=probe))
    # Of the cells just stored, "new" ran at 0.8 of the store's median (100); "old-slow" is
    # slower still but was stored by an earlier sweep, so this one does not repeat it.
    _warn_slow(str(db), {"new", "a", "unprobed"}, 3)
    err = capsys.readouterr().err
    assert err.startswith("warning: 1 of the 3 cells stored ran on a machine slower than 90 % "
                          "of the store's median speed (their speed probe: 0.80 to 0.80 of it)")
    assert "--rerun slow" in err
    _warn_slow(str(db), {"a", "b"}, 2)
    assert capsys.readouterr().err == ""
