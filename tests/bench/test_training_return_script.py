"""benchmarks/training_return.py, the script behind BENCHMARKS.md's base-policy quality table:
episode-weighted windows around step marks, the final window for a mark past the run's end,
targets, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.bench.scripts import load_benchmark


@pytest.fixture(scope="module")
def script() -> Any:
    return load_benchmark("training_return")


def _run(path: Path, rows: list[tuple[int, float | None, int]], **config: Any) -> Path:
    path.mkdir()
    lines = [json.dumps({"step": s, "train_return": r, "episodes": e}) for s, r, e in rows]
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (path / "config.yaml").write_text(yaml.safe_dump({"algorithm": "ippo", **config}))
    return path


def test_windows_weight_intervals_by_their_episodes(script: Any, tmp_path: Path) -> None:
    run = _run(tmp_path / "a", [(0, None, 0), (100, 1.0, 1), (200, 2.0, 3), (300, 9.0, 5),
                                (500, 4.0, 2)])
    rows = script.read_metrics(run)
    assert [r["step"] for r in rows] == [100, 200, 300, 500]  # the untrained row is left out
    value, centre = script.return_at(rows, 150, 50)
    assert (value, centre) == (pytest.approx((1.0 * 1 + 2.0 * 3) / 4), 150)
    value, centre = script.return_at(rows, 10_000, 200)  # past the end: the final window
    assert (value, centre) == (pytest.approx((9.0 * 5 + 4.0 * 2) / 7), 500)
    with pytest.raises(SystemExit, match="no logged interval within 10 steps of 400"):
        script.return_at(rows, 400, 10)


def test_table_names_differing_settings_and_checks_targets(
        script: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    low = _run(tmp_path / "low", [(1000, 1.0, 1), (2000, 1.5, 1)], entropy_coef=0.01)
    # `latent_layers` is recorded by one run only (a field added since): not a difference.
    high = _run(tmp_path / "high", [(1000, 1.2, 1), (2000, 2.0, 1)], entropy_coef=0.005,
                latent_layers=1)
    argv = [str(low), str(high), "--marks", "1k,2k", "--window", "100"]
    assert script.main(argv + ["--target", "2k=1.9"]) == 1  # `low` misses it
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "run | entropy_coef | 0.001M | 0.002M | targets met"
    assert out[1].endswith("| 0.01 | 1.000 | 1.500 | no")
    assert out[2].endswith("| 0.005 | 1.200 | 2.000 | yes")
    assert script.main([str(high), "--marks", "1k,2k", "--window", "100",
                        "--target", "2k=1.9"]) == 0


def test_bad_input_says_what_is_valid(script: Any, tmp_path: Path) -> None:
    run = _run(tmp_path / "a", [(100, 1.0, 1)])
    with pytest.raises(SystemExit, match="'x' is not a positive number of steps"):
        script.main([str(run), "--marks", "3M,x"])
    with pytest.raises(SystemExit, match="write MARK=RETURN"):
        script.main([str(run), "--target", "1.87"])
    with pytest.raises(SystemExit, match="no metrics.jsonl"):
        script.main([str(tmp_path)])
