"""Report figures that need a (time budget x width) grid, drawn from a synthetic table."""

from __future__ import annotations

from pathlib import Path

from ceiling.bench.report import headline_gains, plot_budget, plot_contours
from ceiling.bench.stats import Config


def _table(widths: list[int]) -> list[dict]:
    table = [{"config": Config("greedy", "{}", "mappo", None, 1, 1), "iqm": 0.4,
              "ci95": (0.3, 0.5)}]
    for strategy in ("sampling", "sgbs"):
        for width in widths:
            for seconds in (3.0, 10.0, 30.0):
                value = 0.5 + 0.01 * seconds + 0.001 * width
                table.append({"config": Config(strategy, "{}", "mappo", seconds, None, width),
                              "iqm": value, "ci95": (value - 0.05, value + 0.05)})
    return table


def test_contours_need_a_two_by_two_grid(tmp_path: Path) -> None:
    assert plot_budget(_table([64]), tmp_path / "budget.png")
    assert (tmp_path / "budget.png").stat().st_size > 1000
    assert not plot_contours(_table([64]), tmp_path / "flat.png")
    assert not (tmp_path / "flat.png").exists()
    assert plot_contours(_table([16, 64]), tmp_path / "contours.png")
    assert (tmp_path / "contours.png").stat().st_size > 1000


def test_no_time_budgets_no_budget_plot(tmp_path: Path) -> None:
    table = [{"config": Config("sampling", "{}", "ippo", None, 64, 16), "iqm": 0.5,
              "ci95": (0.4, 0.6)}]
    assert not plot_budget(table, tmp_path / "budget.png")


def test_gain_figure_keeps_each_strategy_at_its_largest_budget_and_width() -> None:
    gains = [{"task": task, "config": Config(strategy, "{}", "mappo", seconds, None, width),
              "gain_percent": seconds + width}
             for task in ("a", "b") for strategy in ("sampling", "sgbs")
             for width in (16, 64) for seconds in (1.0, 10.0, 3.0)]
    kept = headline_gains(gains)
    assert sorted((g["task"], g["config"].strategy) for g in kept) == [
        ("a", "sampling"), ("a", "sgbs"), ("b", "sampling"), ("b", "sgbs")]
    assert {(g["config"].seconds, g["config"].width) for g in kept} == {(10.0, 64)}
