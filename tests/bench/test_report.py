"""The report: it opens with the answer, its figures read at the page width (text at 9 pt or
more, axes ending at the budget, reference lines labelled, no interpolated values), rows that
do not decode are listed rather than fatal, and a failed write leaves the old report as it was.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

import matplotlib.text
import numpy as np
import pytest

from ceiling.bench import figures
from ceiling.bench.figures import best_per_task, headline_gains, plot_budget, plot_grid
from ceiling.bench.report import write_report
from ceiling.bench.stats import Config
from ceiling.bench.store import Row, Store
from ceiling.errors import CeilingError

TASK = "connector:con-5x5x3a"
PAGE_PIXELS = 1040  # the report's column (index.html: max-width 1040px)


def _table(widths: list[int], budgets: tuple[float, ...] = (3.0, 10.0, 30.0)) -> list[dict]:
    table = [{"config": Config("greedy", "{}", "mappo", None, 1, 1), "iqm": 0.4,
              "ci95": (0.3, 0.5)}]
    for strategy in ("sampling", "sgbs"):
        for width in widths:
            for seconds in budgets:
                value = 0.5 + 0.01 * seconds + 0.001 * width
                table.append({"config": Config(strategy, "{}", "mappo", seconds, None, width),
                              "iqm": value, "ci95": (value - 0.05, value + 0.05)})
    return table


@pytest.fixture()
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures the plotting functions draw, kept open instead of saved."""
    kept: list[Any] = []
    monkeypatch.setattr(figures, "save", lambda fig, path: kept.append(fig))
    return kept


def _check_readable(fig: Any) -> None:
    """Every piece of text at 9 pt or more, and the figure, labels included, within the page."""
    fig.canvas.draw()
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip()
             and t.get_visible()]
    assert texts and min(t.get_fontsize() for t in texts) >= 9, sorted(
        (t.get_fontsize(), t.get_text()) for t in texts)[:3]
    box = fig.get_tightbbox(fig.canvas.get_renderer())
    assert box.width * figures.DPI <= PAGE_PIXELS


def test_the_grid_needs_two_budgets_and_two_widths_and_shows_only_measured_cells(
        tmp_path: Path, drawn: list[Any]) -> None:
    assert not plot_grid(_table([64]), tmp_path / "flat.png")
    assert plot_grid(_table([16, 64]), tmp_path / "grid.png")
    (fig,) = drawn
    _check_readable(fig)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["sampling (mappo)", "sgbs (mappo)"]
    for ax in panels:
        (image,) = ax.get_images()
        assert image.get_array().shape == (2, 3)  # widths x budgets: the measured cells only
        # One colour scale for every panel.
        assert image.get_clim() == panels[0].get_images()[0].get_clim()
        assert len(ax.texts) == 6  # each measured cell's value written in it


def test_the_budget_figure_needs_two_time_budgets(tmp_path: Path, drawn: list[Any]) -> None:
    assert not plot_budget(_table([64], budgets=(10.0,)), tmp_path / "one.png")
    table = [{"config": Config("sampling", "{}", "ippo", None, 64, 16), "iqm": 0.5,
              "ci95": (0.4, 0.6)}]
    assert not plot_budget(table, tmp_path / "rollouts.png")
    assert plot_budget(_table([16, 64]), tmp_path / "budget.png")
    (fig,) = drawn
    _check_readable(fig)
    labels = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "greedy zero-shot (mappo)" in labels  # the dashed reference line says what it is
    for ax in fig.axes:
        low, high = ax.get_ylim()
        assert 0.3 <= low and high <= 1.0  # scaled to the data, not 0-1


def test_a_strategys_option_variants_keep_its_colour_and_draw_apart(
        tmp_path: Path, drawn: list[Any]) -> None:
    hot = json.dumps({"temperature": 1.5})
    table = _table([64]) + [
        {"config": Config("sampling", hot, "mappo", seconds, None, 64), "iqm": 0.6,
         "ci95": (0.55, 0.65)} for seconds in (3.0, 10.0, 30.0)]
    assert plot_budget(table, tmp_path / "budget.png")
    (fig,) = drawn
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()
             if line.get_label().startswith(("sampling", "sgbs"))}
    default, variant = lines["sampling (mappo)"], lines["sampling temperature=1.5 (mappo)"]
    assert default.get_color() == variant.get_color()
    assert default.get_marker() != variant.get_marker()
    assert default.get_linestyle() != variant.get_linestyle()
    # Numbered once per report: the defaults first, whichever figure draws the variant alone.
    numbers = figures.variant_numbers(Config(strategy, options, "mappo", 3.0, None, 64)
                                      for strategy, options in [("sampling", hot),
                                                                ("sampling", "{}"),
                                                                ("sgbs", "{}")])
    assert numbers == {("sampling", "{}"): 0, ("sampling", hot): 1, ("sgbs", "{}"): 0}
    assert figures.config_style(Config("sampling", hot, "mappo", 3.0, None, 64), numbers) \
        == figures.style_of("sampling", 1) != figures.style_of("sampling")


def test_gain_figure_keeps_each_strategy_at_its_largest_budget_and_width() -> None:
    gains = [{"task": task, "config": Config(strategy, "{}", "mappo", seconds, None, width),
              "gain_percent": seconds + width}
             for task in ("a", "b") for strategy in ("sampling", "sgbs")
             for width in (16, 64) for seconds in (1.0, 10.0, 3.0)]
    kept = headline_gains(gains)
    assert sorted((g["task"], g["config"].strategy) for g in kept) == [
        ("a", "sampling"), ("a", "sgbs"), ("b", "sampling"), ("b", "sgbs")]
    assert {(g["config"].seconds, g["config"].width) for g in kept} == {(10.0, 64)}


def test_the_best_per_task_lists_ties() -> None:
    def gain(task: str, strategy: str, value: float) -> dict[str, Any]:
        return {"task": task, "config": Config(strategy, "{}", "mappo", 10.0, None, 64),
                "gain_percent": value}

    best = best_per_task([gain("a", "sampling", 5.0), gain("a", "sgbs", 5.0),
                          gain("a", "finetune", 1.0), gain("b", "sgbs", 2.0)])
    assert {task: sorted(g["config"].strategy for g in group)
            for task, group in best.items()} == {"a": ["sampling", "sgbs"], "b": ["sgbs"]}
    # Returns equal but for float32 summation order tie too, whichever comes first.
    near = best_per_task([gain("c", "sampling", 4.6551), gain("c", "sgbs", 4.65512),
                          gain("c", "finetune", 4.6)])
    assert sorted(g["config"].strategy for g in near["c"]) == ["sampling", "sgbs"]


# -- whole reports from a small store -----------------------------------------------------------
def _row(key: str, strategy: str, instance: int, value: float, seconds: float | None,
         width: int, trace: list[list[float]] | None = None, rollouts_done: int = 1) -> Row:
    return Row(config_hash=key, suite="unit", task=TASK, instance=instance,
               checkpoint="shipped:mappo", algorithm="mappo", checkpoint_sha256="x",
               strategy=strategy, options="{}", seconds=seconds,
               rollouts=None if seconds else 1, width=width, seed=0, total_return=value,
               won=None, verified=True, verified_return=value, aborted=None,
               trace=json.dumps(trace or [[0.0, 1, value]]), compile_seconds=0.1,
               search_seconds=seconds or 0.0, rollouts_done=rollouts_done)


def _store(path: Path, budgets: tuple[float, ...], widths: tuple[int, ...]) -> Path:
    """Greedy, and sampling at each budget and width, on 6 instances; sampling gains."""
    rng = np.random.default_rng(0)
    with Store(path) as opened:
        opened.add_sweep("unit", "unit.yaml", "ceiling bench unit.yaml --db unit.sqlite",
                         "local", 30)
        opened.add_baselines(TASK, "random", [0.0] * 6)
        for i in range(6):
            opened.add(_row(f"g{i}", "greedy", i, 1.0 + 0.1 * i, None, 1))
            for seconds in budgets:
                for width in widths:
                    value = 1.5 + 0.1 * i + 0.05 * seconds + float(rng.normal(0, 0.01))
                    # The last batch overruns the budget a little, as the driver allows.
                    trace = [[0.2 * seconds, width, value - 0.2], [1.1 * seconds, 2 * width,
                                                                   value]]
                    # Rollouts spent: 10 batches a second, 2 more on odd instances (mean +1).
                    spent = int(10 * seconds) * width + 2 * (i % 2)
                    opened.add(_row(f"s{i}-{seconds}-{width}", "sampling", i, value, seconds,
                                    width, trace, spent))
    return path


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    """1 s and 2 s x widths 8 and 16: every figure is drawn."""
    return _store(tmp_path / "unit.sqlite", (1.0, 2.0), (8, 16))


@pytest.fixture()
def small_store(tmp_path: Path) -> Path:
    """2 s x width 16 only: a quick report."""
    return _store(tmp_path / "small.sqlite", (2.0,), (16,))


def test_the_report_opens_with_the_claims_then_the_answer(store: Path, tmp_path: Path) -> None:
    written, problems = write_report(store, tmp_path / "report")
    assert problems == []
    names = {path.name for path in written}
    assert {"index.html", "README.md", "gain_over_zero_shot.png", "iqm.png",
            "performance_vs_budget.png", "budget_width.png",
            "anytime_connector_con-5x5x3a.png"} <= names
    readme = (tmp_path / "report" / "README.md").read_text()
    sections = [line for line in readme.splitlines() if line.startswith("## ")]
    assert sections[:2] == ["## The reference study's claims, tested on this store",
                            "## The answer: the best strategy per task"]
    answer = readme.split("## The answer")[1].split("##")[0]
    assert "| connector:con-5x5x3a | sampling (mappo) | 2 s × 16 | +" in answer
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.index("study&#x27;s claims") < page.index("The answer") < page.index(
        "gain_over_zero_shot.png") < page.index("Aggregate across tasks")
    assert "img{max-width:100%" in page


def test_the_claims_table_gives_each_claim_a_figure_and_a_verdict_from_the_store(
        store: Path, tmp_path: Path) -> None:
    write_report(store, tmp_path / "report")
    readme = (tmp_path / "report" / "README.md").read_text()
    table = readme.split("## The reference study's claims")[1].split("\n## ")[0]
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")
            for line in table.splitlines() if line.startswith("| ") and " | " in line}
    assert set(rows) >= {"1", "2", "3", "4a", "4b", "5", "6", "7a", "7b", "8a", "8b"}
    # Sampling beats the greedy policy on every instance: claims 1 and 2 hold, with figures.
    assert rows["1"][5] == "holds" and rows["1"][2].startswith("+")
    assert rows["2"][5] == "holds" and rows["2"][3].startswith("+45 % mean, +126 % max")
    assert "2 s × 16, the largest measured" in rows["2"][6]
    # No COMPASS, SABLE, fine-tuning, SGBS or 30 s cells here: said, not guessed.
    assert rows["3"][5] == "not measurable" and "no COMPASS rows" in rows["3"][6]
    assert rows["4a"][5] == "not measurable" and rows["4a"][2] == "–"
    assert rows["5"][5] == "not measurable" and "no cells at 30 s" in rows["5"][6]
    assert "How each claim is measured:" in readme and "- 8b. At width 64" in readme
    page = (tmp_path / "report" / "index.html").read_text()
    # verdicts stay on one line
    verdict = "<td style='white-space:nowrap'>{}</td>"
    assert verdict.format("not measurable") in page and verdict.format("holds") in page
    assert "<li>1. Per task, base policy and strategy" in page


def test_the_report_gives_the_rollouts_each_cell_spent_next_to_its_budget(
        store: Path, tmp_path: Path) -> None:
    write_report(store, tmp_path / "report")
    readme = (tmp_path / "report" / "README.md").read_text()
    title = "## Rollouts spent per cell (mean over instances), next to its time budget"
    table = readme.split(title)[1].split("\n## ")[0]
    assert "| task | strategy (base policy) | width | 1 s | 2 s |" in table
    # 10 batches of `width` rollouts a second, 2 more on half the instances.
    assert "| connector:con-5x5x3a | sampling (mappo) | 8 | 81 | 161 |" in table
    assert "| connector:con-5x5x3a | sampling (mappo) | 16 | 161 | 321 |" in table
    assert "greedy" not in table  # the zero-shot rollout is not a budget
    page = (tmp_path / "report" / "index.html").read_text()
    assert "<th>2 s</th>" in page and "<td>321</td>" in page


def test_cells_that_competed_for_the_cpu_are_named_and_unmeasured_ones_counted(
        store: Path, tmp_path: Path) -> None:
    connection = sqlite3.connect(store)
    with connection:
        connection.execute("UPDATE results SET cpu_share = 0.97")
        # Two cells of one configuration shared their core with another process; one cell
        # predates the measurement (as a row of an upgraded version-2 store does).
        connection.execute("UPDATE results SET cpu_share = 0.45 WHERE config_hash IN "
                           "('s0-2.0-16', 's3-2.0-16')")
        connection.execute("UPDATE results SET cpu_share = 0.79 WHERE config_hash = 's1-2.0-16'")
        connection.execute("UPDATE results SET cpu_share = NULL WHERE config_hash = 's2-1.0-8'")
        connection.execute("UPDATE results SET cpu_share = NULL WHERE strategy = 'greedy'")
    connection.close()
    write_report(store, tmp_path / "report")
    readme = (tmp_path / "report" / "README.md").read_text()
    warnings = [line for line in readme.splitlines() if line.startswith("**Warning:**")]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("**Warning:** 3 of 24 searching cells with a time budget had "
                                  "less than 90 % of a CPU core while they ran "
                                  "(connector:con-5x5x3a sampling (mappo) 2 s × 16: 3 cells, "
                                  "least 0.45)")
    # The zero-shot cells have no budget to lose, so their missing share is not counted.
    assert warnings[1].startswith("**Warning:** 1 of 24 searching cells with a time budget were "
                                  "stored before")
    table = readme.split("## Rollouts spent per cell")[1].split("\n## ")[0]
    assert "| width | 1 s | 2 s | least CPU share |" in table
    assert "| connector:con-5x5x3a | sampling (mappo) | 16 | 161 | 321 | 0.45 |" in table
    assert "| connector:con-5x5x3a | sampling (mappo) | 8 | 81 | 161 | 0.97 |" in table
    page = (tmp_path / "report" / "index.html").read_text()
    assert "<code>ceiling bench SUITE --db STORE --rerun contended</code>" in page

    connection = sqlite3.connect(store)
    with connection:
        connection.execute("UPDATE results SET cpu_share = 1.0")
    connection.close()
    write_report(store, tmp_path / "idle", force=True)
    assert "**Warning:**" not in (tmp_path / "idle" / "README.md").read_text()


def test_cells_that_ran_on_a_slower_machine_are_named_with_their_speed(
        store: Path, tmp_path: Path) -> None:
    connection = sqlite3.connect(store)
    with connection:
        # Every cell had a whole core; the machine's speed probe read 1000 for most cells and
        # 700 for two cells of one configuration (a slower day), which a CPU share cannot see.
        connection.execute("UPDATE results SET cpu_share = 0.99, speed = 1000.0")
        connection.execute("UPDATE results SET speed = 700.0 WHERE config_hash IN "
                           "('s0-2.0-16', 's3-2.0-16')")
        connection.execute("UPDATE results SET speed = NULL WHERE config_hash = 's2-1.0-8'")
    connection.close()
    write_report(store, tmp_path / "report")
    readme = (tmp_path / "report" / "README.md").read_text()
    warnings = [line for line in readme.splitlines() if line.startswith("**Warning:**")]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("**Warning:** 2 of 24 searching cells with a time budget ran on "
                                  "a machine slower than 90 % of the store's median speed "
                                  "(connector:con-5x5x3a sampling (mappo) 2 s × 16: 2 cells, "
                                  "least 0.70;")
    assert "--rerun slow" in warnings[0]
    table = readme.split("## Rollouts spent per cell")[1].split("\n## ")[0]
    assert "| width | 1 s | 2 s | least CPU share | least speed |" in table
    assert "| connector:con-5x5x3a | sampling (mappo) | 16 | 161 | 321 | 0.99 | 0.70 |" in table
    assert "| connector:con-5x5x3a | sampling (mappo) | 8 | 81 | 161 | 0.99 | 1.00 |" in table

    connection = sqlite3.connect(store)
    with connection:
        connection.execute("UPDATE results SET speed = 950.0 WHERE speed = 700.0")
    connection.close()
    write_report(store, tmp_path / "steady", force=True)
    assert "**Warning:**" not in (tmp_path / "steady" / "README.md").read_text()


def test_a_contended_cell_is_counted_by_the_sweep(tmp_path: Path) -> None:
    from ceiling.bench.run import SweepStats, record_outcome
    from ceiling.bench.suite import load_suite

    cell = load_suite(Path(__file__).resolve().parents[2] / "suites" / "smoke.yaml").cells()[0]
    stats = SweepStats()
    with Store(tmp_path / "s.sqlite") as opened:
        for key, share in (("idle", 0.99), ("busy", 0.5), ("old", None)):
            row = dataclasses.replace(_row(key, "sampling", 0, 1.0, 1.0, 8), cpu_share=share)
            record_outcome(opened, stats, cell, row, None, 1.0)
        assert [r["cpu_share"] for r in opened.rows()] == [0.5, 0.99, None]
    assert (stats.done, stats.contended) == (3, 1)


def test_anytime_axes_end_at_the_budget_and_label_the_zero_shot_line(
        store: Path, drawn: list[Any]) -> None:
    from ceiling.bench.store import Store as Opened

    with Opened(store, create=False) as opened:
        rows = opened.rows()
    assert figures.plot_anytime(rows, TASK, Path("unused.png"))
    (fig,) = drawn
    _check_readable(fig)
    (panel,) = [ax for ax in fig.axes if ax.get_title()]
    assert panel.get_xlim() == (0.0, 2.0)  # the budget, though traces overran it to 2.2 s
    assert any("best zero-shot (mappo)" in t.get_text() for t in panel.texts)
    assert len(panel.get_lines()) == 2  # the strategy's curve and the zero-shot line


def test_the_answer_figure_is_readable(store: Path, drawn: list[Any]) -> None:
    from ceiling.bench import stats

    with Store(store, create=False) as opened:
        rows = opened.rows()
    assert figures.plot_answer(stats.gains_over_zero_shot(rows), Path("unused.png"))
    (fig,) = drawn
    _check_readable(fig)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "best zero-shot policy" in texts and "best" in texts


def test_rows_that_do_not_decode_are_listed_with_their_cell(small_store: Path,
                                                             tmp_path: Path) -> None:
    connection = sqlite3.connect(small_store)
    with connection:
        connection.execute("UPDATE results SET trace='[[0.1, 8' WHERE config_hash='s0-2.0-16'")
        connection.execute("UPDATE results SET total_return='lots' WHERE config_hash='s1-2.0-16'")
    connection.close()
    written, problems = write_report(small_store, tmp_path / "report")
    assert len(problems) == 2
    assert any("cell s0-2.0-16" in p and "instance 0" in p and "trace does not decode" in p
               for p in problems)
    assert any("cell s1-2.0-16" in p and "total_return is 'lots', not a number" in p
               for p in problems)
    readme = (tmp_path / "report" / "README.md").read_text()
    assert "## Rows left out" in readme and "cell s0-2.0-16" in readme
    assert "2 rows could not be read" in readme


def test_a_checkpoint_retrained_under_the_same_label_is_flagged(small_store: Path,
                                                                  tmp_path: Path) -> None:
    # A new MAPPO run into a store that holds the old one's rows: same label, other parameters.
    with Store(small_store) as opened:
        for i in range(6):
            opened.add(dataclasses.replace(_row(f"new{i}", "greedy", i, 2.0, None, 1),
                                           checkpoint_sha256="y" * 64))
    written, problems = write_report(small_store, tmp_path / "report")
    assert len(problems) == 1
    assert "rows of 2 checkpoints labelled 'mappo'" in problems[0]
    assert "x, yyyyyyyyyyyy" in problems[0]
    readme = (tmp_path / "report" / "README.md").read_text()
    assert f"**Warning:** {problems[0]}" in readme
    assert "## Rows left out" not in readme  # nothing was left out
    # One checkpoint per label: no warning.
    _, clean = write_report(_store(tmp_path / "clean.sqlite", (2.0,), (16,)),
                            tmp_path / "clean")
    assert clean == []


def test_a_failed_write_leaves_the_report_as_it_was(small_store: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "report"
    write_report(small_store, out)
    before = {path.name: path.read_bytes() for path in out.iterdir()}

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(figures, "plot_anytime", disk_full)
    monkeypatch.setattr("ceiling.bench.report.plot_anytime", disk_full)
    with pytest.raises(CeilingError, match="No space left on device.*is as it was"):
        write_report(small_store, out, force=True)
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report")] == []


def test_a_rewritten_report_drops_figures_it_no_longer_draws(small_store: Path,
                                                             tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "index.html").write_text("old")
    (out / "budget_width_contours.png").write_bytes(b"old")  # an earlier version's figure
    (out / "notes.txt").write_text("the user's")
    write_report(small_store, out, force=True)
    assert not (out / "budget_width_contours.png").exists()
    assert (out / "notes.txt").read_text() == "the user's"
    assert (out / "index.html").read_text() != "old"


def test_an_unwritable_out_is_refused_before_the_store_is_read(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CeilingError, match="is a file, not a directory"):
        write_report(tmp_path / "no-store-needed.sqlite", blocker / "report")


def test_a_configuration_measured_on_some_tasks_says_which() -> None:
    family = ("compass", '{"temperature": 0.0}', "compass")
    some = [{"tasks": ["rware:tiny-4ag-hard"]}, {"tasks": ["connector:con-10x10x10a"]}]
    every = ["connector:con-10x10x10a", "rware:tiny-4ag-hard", "smax:smacv2_5_units"]
    assert figures.coverage(some, every) == "only con-10x10x10a, tiny-4ag-hard"
    assert figures.covered_label(family, some, every) == (
        "compass temperature=0.0 (compass) [only con-10x10x10a, tiny-4ag-hard]")
    assert figures.coverage(some, every[:2]) == ""  # covers all of them
    assert figures.covered_label(family, some, None) == "compass temperature=0.0 (compass)"


def test_anytime_shows_a_run_whose_first_batch_outlasted_its_budget(tmp_path: Path) -> None:
    # Fine-tuning a large policy can spend 40 s on its one batch of a 30 s budget: its curve
    # has no point before the budget, and the axis goes on to its first result.
    def row(strategy: str, instance: int, trace: list[list[float]]) -> dict[str, Any]:
        best = trace[-1][2] if trace else 1.0
        return {"task": TASK, "instance": instance, "seed": 0, "strategy": strategy,
                "options": {}, "algorithm": "mappo", "checkpoint_sha256": "m",
                "seconds": None if strategy == "greedy" else 30.0, "rollouts": None,
                "width": 4, "total_return": best, "won": None, "rollouts_done": 4,
                "trace": trace}

    rows = [row("greedy", i, []) for i in range(2)]
    rows += [row("sampling", i, [[1.0, 4, 2.0], [29.0, 40, 3.0]]) for i in range(2)]
    rows += [row("finetune", i, [[40.0 + i, 4, 2.5]]) for i in range(2)]
    path = tmp_path / "anytime.png"
    assert figures.plot_anytime(rows, TASK, path)
    assert path.stat().st_size > 0


def test_anytime_legend_of_long_variant_labels_stays_within_the_page(
        drawn: list[Any]) -> None:
    # Six option sets of two strategies, labels up to ~80 characters (a tuned COMPASS's
    # recorded defaults): three legend columns of those were 1,460 px wide.
    options = [{}, {"temperature": 0.8}, {"temperature": 0.6}, {"temperature": 0.4}]
    rows = [{"task": TASK, "instance": i, "seed": 0, "strategy": strategy, "options": o,
             "algorithm": "mappo", "checkpoint_sha256": "m", "seconds": None, "rollouts": None,
             "width": 64, "total_return": 1.0, "won": None, "rollouts_done": 1, "trace": []}
            for i in range(2) for strategy, o in [("greedy", {})]]
    searches = [("sampling", o) for o in options] + [
        ("compass", {"num_distributions": 1, "sigma_init": 2.0, "temperature": 0.0}),
        ("compass", {"num_distributions": 3, "sigma_init": 1.0, "temperature": 0.0})]
    rows += [{**rows[0], "instance": i, "strategy": strategy, "options": o, "seconds": 30.0,
              "trace": [[1.0, 64, 2.0], [29.0, 640, 3.0]]}
             for i in range(2) for strategy, o in searches]
    assert figures.plot_anytime(rows, TASK, Path("unused.png"))
    (fig,) = drawn
    _check_readable(fig)
    styles = {(line.get_color(), line.get_marker(), line.get_linestyle())
              for ax in fig.axes for line in ax.get_lines() if line.get_label()[0] != "_"}
    assert len(styles) == len(searches)  # every option set draws apart
    assert figures.legend_columns(["x" * 40] * 2) == 3
    assert figures.legend_columns(["x" * 41, "y"]) == 2
    assert figures.legend_columns(["x" * 71]) == 1


def test_long_row_labels_wrap_within_the_page(drawn: list[Any]) -> None:
    options = json.dumps({"num_distributions": 1, "sigma_init": 2.0, "temperature": 0.0})
    configs = [Config("compass", options, "compass", 30.0, None, 64),
               Config("sampling", "{}", "mappo", 30.0, None, 64)]
    gains = [{"task": TASK, "config": c, "gain_percent": 60.0 + i, "ci95": (40.0, 90.0 + i),
              "zero_shot_algorithm": "mappo", "zero_shot_return": 25.2}
             for i, c in enumerate(configs)]
    assert figures.plot_answer(gains, Path("unused.png"))
    figures.plot_iqm([{"config": c, "iqm": 0.9, "ci95": (0.88, 0.92)} for c in configs],
                     Path("unused.png"))
    for fig in drawn:
        _check_readable(fig)
        labels = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
        assert any("\n" in label and "sigma_init=2.0" in label for label in labels)
        assert max(len(line) for label in labels for line in label.split("\n")) \
            <= figures.LABEL_CHARACTERS
