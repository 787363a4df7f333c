from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ceiling.errors import CeilingError
from ceiling.reuse.bench import build_command, run_bench, write_results
from ceiling.reuse.compose import compose, coverage, reference_trajectory
from ceiling.reuse.library import Library
from ceiling.reuse.objectives import weights_of

from .conftest import TINY


@pytest.fixture(scope="module")
def bench_result(tiny_library_path: Path) -> dict:
    from ceiling.reuse.library import load_library

    return run_bench(load_library(tiny_library_path), rollouts=2,
                     config=TINY._replace(max_chunks=4, min_chunks=2))


def test_bench_coverage_is_measured_on_the_optimal_trajectory(
        bench_result: dict, tiny_library: Library) -> None:
    points = bench_result["points"]
    assert len(points) == 3 * 2 * 9 * 2  # composites x regimes x method-selection x seeds
    for point in points[:: 7]:
        w = weights_of(point["composite"])
        composed = compose(tiny_library, point["layout"], w, point["gamma"], point["method"],
                           point["selection"])
        expected = coverage(reference_trajectory(tiny_library, point["layout"], w),
                            composed.support)
        assert point["coverage"] == pytest.approx(expected.pairs)
        assert point["coverage_prefix"] == pytest.approx(expected.prefix)
        assert 0.0 <= point["coverage_scratch"] <= 1.0
        assert point["composed_vs_optimal"] == pytest.approx(
            point["composed_return"] / point["optimal_return"])
        assert point["scratch_vs_optimal"] == pytest.approx(
            point["scratch_return"] / point["optimal_return"])
        assert point["optimal_return"] > 0


def test_bench_summary_and_files(bench_result: dict, tmp_path: Path) -> None:
    row = bench_result["summary"][0]
    assert row["composed_vs_optimal_ci95"][0] <= row["composed_vs_optimal"] <= \
        row["composed_vs_optimal_ci95"][1]
    assert "coverage vs quality_ratio" in next(iter(bench_result["spearman"].values()))
    lib = bench_result["library"]
    assert build_command(lib).startswith(f"ceiling reuse build --grid 8 --layouts 1 --seeds 2 "
                                         f"--out {lib['path']} --steps-per-chunk 20000")
    plain = {**lib, "qlearning": {**lib["qlearning"], "optimistic": False}}
    assert build_command(plain).endswith("--no-optimism")
    assert "--no-optimism" not in build_command(lib)
    path = write_results(bench_result, tmp_path, "ceiling reuse bench ...", force=False)
    text = path.read_text()
    assert "c÷opt [95 % CI]" in text and "s÷opt [95 % CI]" in text
    assert build_command(lib) in text
    assert "| γ | composite | method | selection |" in text
    data = json.loads((tmp_path / "bench.json").read_text())
    assert len(data["points"]) == len(bench_result["points"])
    assert {p["selection"] for p in data["points"]} == {"targeted", "hybrid", "exhaustive"}
    assert np.isclose(data["points"][0]["coverage"], bench_result["points"][0]["coverage"])
    with pytest.raises(CeilingError, match="--force"):
        write_results(bench_result, tmp_path, "again", force=False)


def test_cluster_bootstrap_resamples_whole_layouts() -> None:
    from ceiling.bootstrap import mean_ci  # what the bench's intervals use

    # three identical copies per layout: the cluster interval is that of the 4 layout means,
    # and wider than the naive one that treats the 12 copies as independent
    values = np.repeat([0.2, 0.4, 0.9, 1.0], 3)
    layouts = np.repeat(np.arange(4), 3)
    mean, low, high = mean_ci(values, layouts)
    naive = mean_ci(values)
    per_layout = mean_ci(np.array([0.2, 0.4, 0.9, 1.0]))
    assert mean == pytest.approx(0.625) and naive[0] == pytest.approx(0.625)
    assert (low, high) == pytest.approx(per_layout[1:], abs=0.05)
    assert high - low > naive[2] - naive[1]
    assert np.isnan(mean_ci(np.array([np.nan]), np.array([0]))[0])
    # NaNs are dropped with their cluster labels: the rest is resampled as before
    with_nan = mean_ci(np.append(values, np.nan), np.append(layouts, 7))
    assert with_nan == (mean, low, high)
