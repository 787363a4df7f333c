"""The report's figures, drawn to be read at the page width (about 1,000 px) without zooming.

Rules every figure here keeps: text at 9 pt or more; axes scaled to the data, with the 95 %
confidence interval of every point drawn; every reference line labelled where it is drawn; a
strategy keeps its colour, line style and marker in every figure (`style_of`), so lines that
coincide stay distinguishable by their markers, and its option variants (sampling at two
temperatures) keep its colour with line styles and markers of their own; time axes end at the
budget; and no value is drawn that was not measured (the budget x width figure is a grid of
the measured cells, not an interpolation between them).

- `plot_answer`: per task, each strategy's gain over the best zero-shot policy at its largest
  budget and width, with its CI; the best per task is filled and its label bold.
- `plot_iqm`: IQM of normalised score per configuration, grouped by strategy.
- `plot_budget`: IQM against the time budget, one panel per width.
- `plot_grid`: IQM over (time budget x width), one panel per strategy, one colour scale.
- `plot_anytime`: best return against seconds of search on one task, one panel per base policy.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ceiling.bench import stats

DPI = 110
TITLE_CHARACTERS = 40  # a contour panel's title lines wrap here (three panels a row)
LABEL_CHARACTERS = 48  # a row label of the answer and IQM figures wraps here
PAGE_WIDTH = 8.5  # inches: 935 px at DPI, so that with its labels a figure fits the report's
# 1,040-px column without being scaled down (and its 9-pt text with it)
TEXT: dict[str, Any] = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10,
                        "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 9,
                        "figure.titlesize": 11}
_LINES = ["-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3))]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
_COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
            "tab:pink", "tab:olive", "tab:cyan"]
ZERO_SHOT_COLOUR = "dimgrey"
# Behind a reference line's label, so a curve crossing it does not make it unreadable.
LABEL_BOX = {"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1.0}


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # The stubs list RcParams keys as literals; these are among them.
    plt.rcParams.update(TEXT)  # type: ignore[arg-type]
    return plt


def panel_grid(plt: Any, count: int, panel_height: float, extra_height: float = 0.0,
               **subplots: Any) -> tuple[Any, Any]:
    """A page-wide figure of `count` panels, at most three a row, the unused cells of the last
    row hidden; returns the figure and its [rows, columns] axes."""
    columns = min(3, count)
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, squeeze=False, **subplots,
                             figsize=(PAGE_WIDTH, panel_height * rows + extra_height))
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, axes


def save(fig: Any, path: Path) -> None:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    pyplot().close(fig)


def style_of(strategy: str, variant: int = 0) -> dict[str, Any]:
    """One colour, line style and marker per strategy, the same in every figure: the
    registry's order first, then any other name (a row from another version). A strategy's
    `variant`s (its other option sets, numbered by `variant_numbers`) keep its colour and take
    the next line styles and markers, so two of them never draw alike."""
    from ceiling.search import STRATEGIES

    order = list(STRATEGIES)
    index = order.index(strategy) if strategy in order else len(order) + sum(map(ord, strategy))
    return {"color": _COLOURS[index % len(_COLOURS)],
            "linestyle": _LINES[(index + variant) % len(_LINES)],
            "marker": _MARKERS[(index + variant) % len(_MARKERS)]}


Variants = dict[tuple[str, str], int]


def variant_numbers(configs: Iterable[stats.Config]) -> Variants:
    """Each strategy's option sets among `configs` numbered 0, 1, ... (its defaults, `{}`,
    first, then in sorted order), for `style_of`. A report numbers every configuration of its
    store once, so a variant looks the same in every figure."""
    by_strategy: dict[str, set[str]] = {}
    for config in configs:
        by_strategy.setdefault(config.strategy, set()).add(config.options)
    return {(strategy, options): number
            for strategy, sets in by_strategy.items()
            for number, options in enumerate(sorted(sets, key=lambda o: (o != "{}", o)))}


def config_style(config: stats.Config, variants: Variants) -> dict[str, Any]:
    """`style_of` a configuration's strategy and its variant in `variants`."""
    return style_of(config.strategy, variants.get((config.strategy, config.options), 0))


def _numbering(configs: Iterable[stats.Config], variants: Variants | None) -> Variants:
    """The caller's numbering, or one of the figure's own configurations."""
    return variants if variants is not None else variant_numbers(configs)


def wrap_label(label: str) -> str:
    """`label` broken at spaces into lines of at most `LABEL_CHARACTERS` (a COMPASS's
    recorded search options make labels of 80 characters, which would push the figure past
    the page)."""
    return textwrap.fill(label, LABEL_CHARACTERS, break_long_words=False,
                         break_on_hyphens=False)


def legend_columns(labels: Sequence[str]) -> int:
    """Columns for a figure-wide legend that stays within the page: three short labels a row,
    two up to 70 characters, else one."""
    longest = max((len(label) for label in labels), default=0)
    return 3 if longest <= 40 else 2 if longest <= 70 else 1


def family_label(family: tuple[str, str, str]) -> str:
    """`sampling (mappo)`, `sampling temperature=0.5 (mappo)`."""
    strategy, options, algorithm = family
    extra = "".join(f" {k}={v}" for k, v in sorted(json.loads(options).items()))
    return f"{strategy}{extra} ({algorithm})"


def covered_label(family: tuple[str, str, str], rows: Sequence[dict[str, Any]],
                  tasks: Sequence[str] | None, sep: str = " ") -> str:
    """`family_label`, and, when the family's `rows` (aggregate rows) cover only some of the
    report's `tasks`, which ones: an IQM across tasks is only comparable between lines that
    average the same tasks."""
    note = coverage(rows, tasks)
    return f"{family_label(family)}{sep}[{note}]" if note else family_label(family)


def coverage(rows: Sequence[dict[str, Any]], tasks: Sequence[str] | None) -> str:
    """`only con-10x10x10a, tiny-4ag-hard` (task names without the family) when the aggregate
    `rows` cover only some of `tasks`, else ``."""
    if tasks is None:
        return ""
    mine = sorted({t for r in rows for t in r["tasks"]})
    if set(mine) >= set(tasks):
        return ""
    return "only " + ", ".join(t.split(":", 1)[-1] for t in mine)


def budget_label(config: stats.Config) -> str:
    """`10 s x 64`, `64 rollouts x 16`, `zero-shot`."""
    if stats.is_zero_shot(config.strategy):
        return "zero-shot"
    budget = " ".join(p for p in (f"{config.seconds:g} s" if config.seconds else "",
                                  f"{config.rollouts} rollouts" if config.rollouts else "") if p)
    return f"{budget} × {config.width}"


def at_largest_extent(items: Sequence[tuple[Any, stats.Config]], group: Callable[
        [Any, stats.Config], Any]) -> list[Any]:
    """The items whose config has the largest (budget, width) within its group."""
    largest: dict[Any, tuple[float, int, int]] = {}
    for item, config in items:
        key = group(item, config)
        largest[key] = max(largest.get(key, config.extent), config.extent)
    return [item for item, config in items if config.extent == largest[group(item, config)]]


def headline_gains(gains: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each (task, strategy, options, base)'s gain at its largest budget and width: the
    reference study's headline cell (30 s x 64 attempts in its grid)."""
    return at_largest_extent([(g, g["config"]) for g in gains],
                             lambda g, config: (g["task"], config.family))


# Gains (in %) this close are a tie: float32 returns of one episode summed in another order
# differ in their last bits (2.0000002 against 2.0000002384 on a task whose maximum is 2).
TIE_PERCENT = 1e-4


def best_per_task(gains: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """{task: the headline gains that are the task's largest (several when they tie)}."""
    by_task: dict[str, list[dict[str, Any]]] = {}
    for gain in headline_gains(gains):
        by_task.setdefault(gain["task"], []).append(gain)
    best: dict[str, list[dict[str, Any]]] = {}
    for task, group in sorted(by_task.items()):
        top = max(g["gain_percent"] for g in group)
        best[task] = [g for g in group if g["gain_percent"] >= top - TIE_PERCENT]
    return best


def _limits(lows: Sequence[float], highs: Sequence[float], include: Sequence[float] = (),
            margin: float = 0.08, least: float = 0.02) -> tuple[float, float]:
    """Axis limits around every interval (and `include`), with a margin, spanning at least
    `least` (so equal values do not blow the axis up to meaningless decimals)."""
    values = [v for v in (*lows, *highs, *include) if np.isfinite(v)]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high - low < least:
        middle = (high + low) / 2
        low, high = middle - least / 2, middle + least / 2
    span = high - low
    return low - margin * span, high + margin * span


def _ci_row(ax: Any, y: float, value: float, ci: tuple[float, float], style: dict[str, Any],
            filled: bool = True) -> None:
    ax.errorbar([value], [y], xerr=[[value - ci[0]], [ci[1] - value]], fmt=style["marker"],
                color=style["color"], markerfacecolor=style["color"] if filled else "white",
                markersize=7, capsize=3, linewidth=1.5)


# -- the answer --------------------------------------------------------------------------------
def plot_answer(gains: list[dict[str, Any]], path: Path, variants: Variants | None = None
                ) -> bool:
    """Per task (a block of rows), each strategy's gain over the best zero-shot policy at its
    largest budget and width, with its 95 % CI and its value written beside it."""
    kept = headline_gains(gains)
    if not kept:
        return False
    variants = _numbering((g["config"] for g in kept), variants)
    best = {task: {id(g) for g in group} for task, group in best_per_task(gains).items()}
    plt = pyplot()
    rows: list[tuple[str, dict[str, Any] | None]] = []  # (label, gain or None for a header)
    for task in sorted({g["task"] for g in kept}):
        mine = sorted((g for g in kept if g["task"] == task), key=lambda g: -g["gain_percent"])
        rows.append((f"{task}  (zero-shot: {mine[0]['zero_shot_algorithm']} "
                     f"{mine[0]['zero_shot_return']:.2f})", None))
        rows += [(f"{family_label(g['config'].family)}, {budget_label(g['config'])}", g)
                 for g in mine]
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH * 0.8, 0.34 * len(rows) + 1.3))
    lows = [g["ci95"][0] for _, g in rows if g is not None]
    highs = [g["ci95"][1] for _, g in rows if g is not None]
    low, high = _limits(lows, highs, include=[0.0], least=4.0)  # percentage points
    high += 0.45 * (high - low)  # room for the values written right of each interval
    ax.set_xlim(low, high)
    labels = []
    for y, (label, gain) in enumerate(rows):
        labels.append(label)
        if gain is None:
            ax.axhline(y, color="lightgrey", linewidth=0.8, zorder=0)
            continue
        filled = id(gain) in best[gain["task"]]
        _ci_row(ax, y, gain["gain_percent"], gain["ci95"], config_style(gain["config"], variants),
                filled)
        ax.text(gain["ci95"][1] + 0.01 * (high - low), y,
                f" {gain['gain_percent']:+.1f} % [{gain['ci95'][0]:+.1f}, "
                f"{gain['ci95'][1]:+.1f}]" + (("  best" if gain["gain_percent"] > 0
                                               else "  none beat zero-shot") if filled else ""),
                va="center", fontsize=9, fontweight="bold" if filled else "normal")
    ax.set_yticks(range(len(rows)), [wrap_label(label) for label in labels])
    for tick, (_, gain) in zip(ax.get_yticklabels(), rows, strict=True):
        if gain is None:
            tick.set_fontweight("bold")
        elif id(gain) in best[gain["task"]]:
            tick.set_fontweight("bold")
    ax.set_ylim(len(rows) - 0.5, -0.7)
    ax.axvline(0, color=ZERO_SHOT_COLOUR, linestyle="--", linewidth=1)
    ax.text(0, -0.65, " 0 = best zero-shot policy", color=ZERO_SHOT_COLOUR, fontsize=9,
            va="top")
    ax.set_xlabel("gain of the mean return over the best zero-shot policy (%), 95 % CI")
    ax.grid(axis="x", alpha=0.3)
    save(fig, path)
    return True


# -- aggregates --------------------------------------------------------------------------------
def plot_iqm(table: list[dict[str, Any]], path: Path, tasks: Sequence[str] | None = None,
             variants: Variants | None = None) -> None:
    """IQM of normalised score per configuration with its CI, grouped by strategy (one block
    per strategy and base policy; a block or zero-shot row covering only some of `tasks` says
    which); the best zero-shot IQM is a labelled vertical line."""
    plt = pyplot()
    variants = _numbering((r["config"] for r in table), variants)
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in table:
        config = row["config"]
        key = ("zero-shot", "{}", "") if stats.is_zero_shot(config.strategy) else config.family
        groups.setdefault(key, []).append(row)
    rows: list[tuple[str, dict[str, Any] | None]] = []
    notes: dict[int, str] = {}  # header row -> the tasks its block covers, if not all
    for key, members in groups.items():
        title = "zero-shot" if key[0] == "zero-shot" else family_label(key)
        notes[len(rows)] = "" if key[0] == "zero-shot" else coverage(members, tasks)
        rows.append((title, None))
        rows += [((covered_label(row["config"].family, [row], tasks)
                   if key[0] == "zero-shot" else budget_label(row["config"])), row)
                 for row in members]
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH * 0.8, 0.27 * len(rows) + 1.2))
    lows = [r["ci95"][0] for _, r in rows if r is not None]
    highs = [r["ci95"][1] for _, r in rows if r is not None]
    ax.set_xlim(*_limits(lows, highs))
    zero = [r["iqm"] for r in table if stats.is_zero_shot(r["config"].strategy)]
    for y, (_, point) in enumerate(rows):
        if point is None:
            ax.axhline(y, color="lightgrey", linewidth=0.8, zorder=0)
            if notes.get(y):
                ax.text(ax.get_xlim()[0], y, f" {notes[y]}", fontsize=9, va="center",
                        color=ZERO_SHOT_COLOUR, bbox=LABEL_BOX)
            continue
        style = ({"color": ZERO_SHOT_COLOUR, "marker": "o"}
                 if stats.is_zero_shot(point["config"].strategy)
                 else config_style(point["config"], variants))
        _ci_row(ax, y, point["iqm"], point["ci95"], style)
    ax.set_yticks(range(len(rows)), [wrap_label(label) for label, _ in rows])
    for tick, (_, point) in zip(ax.get_yticklabels(), rows, strict=True):
        if point is None:
            tick.set_fontweight("bold")
    ax.set_ylim(len(rows) - 0.5, -0.9)
    if zero:
        ax.axvline(max(zero), color=ZERO_SHOT_COLOUR, linestyle="--", linewidth=1)
        ax.text(max(zero), -0.85, f" best zero-shot IQM {max(zero):.3f}",
                color=ZERO_SHOT_COLOUR, fontsize=9, va="top")
    ax.set_xlabel("IQM of normalised score (0 = random policy, 1 = best return found), "
                  "95 % CI")
    ax.grid(axis="x", alpha=0.3)
    save(fig, path)


def _searching(table: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """The rows with a time budget, by (strategy, options, base)."""
    lines: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in table:
        config = row["config"]
        if not stats.is_zero_shot(config.strategy) and config.seconds is not None:
            lines.setdefault(config.family, []).append(row)
    return dict(sorted(lines.items()))


def plot_budget(table: list[dict[str, Any]], path: Path,
                tasks: Sequence[str] | None = None, variants: Variants | None = None) -> bool:
    """IQM against the time budget, one panel per width, one line (with its CI band) per
    strategy; the zero-shot IQMs are labelled horizontal lines. A line that covers only some
    of `tasks` says which. False unless rows have at least two time budgets (one budget is a
    column of points: the IQM figure shows them)."""
    lines = _searching(table)
    budgets = sorted({r["config"].seconds for rows in lines.values() for r in rows})
    if len(budgets) < 2:
        return False
    plt = pyplot()
    widths = sorted({r["config"].width for rows in lines.values() for r in rows})
    zero = [(r["config"].algorithm, r["iqm"]) for r in table
            if stats.is_zero_shot(r["config"].strategy)]
    fig, axes = panel_grid(plt, len(widths), 3.6, sharey=True)
    every = [r for rows in lines.values() for r in rows]
    variants = _numbering((r["config"] for r in every), variants)
    low, high = _limits([r["ci95"][0] for r in every], [r["ci95"][1] for r in every],
                        include=[v for _, v in zero])
    for ax, width in zip(axes.flat, widths, strict=False):
        for family, rows in lines.items():
            mine = sorted((r for r in rows if r["config"].width == width),
                          key=lambda r: r["config"].seconds)
            if not mine:
                continue
            style = config_style(mine[0]["config"], variants)
            x = [r["config"].seconds for r in mine]
            ax.plot(x, [r["iqm"] for r in mine], label=covered_label(family, rows, tasks),
                    markersize=6,
                    linewidth=1.6, **style)
            ax.fill_between(x, [r["ci95"][0] for r in mine], [r["ci95"][1] for r in mine],
                            color=style["color"], alpha=0.12)
        for index, (algorithm, value) in enumerate(sorted(zero, key=lambda z: -z[1])):
            ax.axhline(value, color=ZERO_SHOT_COLOUR, linestyle=_LINES[1 + index % 3],
                       linewidth=1)
            ax.text(budgets[0], value, f" greedy zero-shot ({algorithm})", fontsize=9,
                    color=ZERO_SHOT_COLOUR, va="bottom", bbox=LABEL_BOX)
        ax.set_xscale("log")
        ax.set_xticks(budgets, [f"{b:g} s" for b in budgets])
        ax.minorticks_off()
        ax.set_xlim(budgets[0] / 1.25, budgets[-1] * 1.25)
        ax.set_ylim(low, high)
        ax.set_title(f"width {width} (parallel attempts)")
        ax.set_xlabel("time budget per instance (log scale)")
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("IQM normalised score (95 % CI band)")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    columns = legend_columns(labels)
    fig.legend(handles, labels, loc="lower center", ncol=min(columns, len(labels)),
               bbox_to_anchor=(0.5, -0.02), frameon=False)
    fig.tight_layout(rect=(0, 0.07 + 0.04 * ((len(labels) - 1) // columns), 1, 1))
    save(fig, path)
    return True


def plot_grid(table: list[dict[str, Any]], path: Path,
              tasks: Sequence[str] | None = None) -> bool:
    """IQM over the measured (time budget x width) cells, one panel per strategy with at least
    two budgets and two widths, all on one colour scale, each cell's value written in it; a
    panel that covers only some of `tasks` says which. False if no strategy has such a grid."""
    grids = {}
    titles = {}
    for family, rows in _searching(table).items():
        seconds = sorted({r["config"].seconds for r in rows})
        widths = sorted({r["config"].width for r in rows})
        if len(seconds) >= 2 and len(widths) >= 2:
            values = np.full((len(widths), len(seconds)), np.nan)
            for r in rows:
                values[widths.index(r["config"].width), seconds.index(r["config"].seconds)] = \
                    r["iqm"]
            grids[family] = (seconds, widths, values)
            titles[family] = covered_label(family, rows, tasks, sep="\n")
    if not grids:
        return False
    plt = pyplot()
    low = min(float(np.nanmin(v)) for _, _, v in grids.values())
    high = max(float(np.nanmax(v)) for _, _, v in grids.values())
    if high - low < 1e-6:
        low, high = low - 0.01, high + 0.01
    fig, axes = panel_grid(plt, len(grids), 2.7, 0.6)
    image = None
    for ax, (family, (seconds, widths, values)) in zip(axes.flat, grids.items(), strict=False):
        image = ax.imshow(values, origin="lower", cmap="viridis", vmin=low, vmax=high,
                          aspect="auto")
        for (i, j), value in np.ndenumerate(values):
            if np.isfinite(value):
                shade = (value - low) / (high - low)
                ax.text(j, i, f"{value:.3f}", ha="center", va="center", fontsize=10,
                        color="black" if shade > 0.55 else "white")
        ax.set_xticks(range(len(seconds)), [f"{s:g} s" for s in seconds])
        ax.set_yticks(range(len(widths)), [str(w) for w in widths])
        ax.set_xlabel("time budget")
        ax.set_ylabel("width")
        # A third of the page per panel: long variant names wrap rather than run into the next.
        ax.set_title("\n".join(textwrap.fill(line, TITLE_CHARACTERS)
                               for line in titles[family].split("\n")), fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    bar = fig.add_axes((0.92, 0.15, 0.018, 0.7))
    fig.colorbar(image, cax=bar, label="IQM normalised score")
    save(fig, path)
    return True


# -- one task ----------------------------------------------------------------------------------
def _mean_curve(rows: list[dict[str, Any]], grid: np.ndarray) -> np.ndarray:
    curves = []
    for r in rows:
        seconds = np.array([p[0] for p in r["trace"]])
        best = np.array([p[2] for p in r["trace"]])
        index = np.searchsorted(seconds, grid, side="right") - 1
        # After its budget a run keeps its final best (it stopped, it did not regress); before
        # its first batch it has nothing, and the mean waits for every run.
        curves.append(np.where(index >= 0, best[np.maximum(index, 0)], np.nan))
    return np.mean(curves, axis=0)


def plot_anytime(rows: Sequence[dict[str, Any]], task: str, path: Path,
                 variants: Variants | None = None) -> bool:
    """Mean best return against seconds of search on `task`, one panel per base policy, one
    line per strategy at its largest budget and width (a longer run's trace holds every
    shorter budget's curve); the time axis ends at that budget, and the best zero-shot mean is
    a labelled line. False if the task has no searching rows with a trace."""
    mine = [r for r in rows if r["task"] == task]
    searching = at_largest_extent([(r, stats.config_of(r)) for r in mine
                                   if not stats.is_zero_shot(r["strategy"]) and r["trace"]],
                                  lambda _, config: config.family)
    if not searching:
        return False
    variants = _numbering((stats.config_of(r) for r in searching), variants)
    panels: dict[str, dict[stats.Config, list[dict[str, Any]]]] = {}
    for r in searching:
        config = stats.config_of(r)
        panels.setdefault(config.algorithm, {}).setdefault(config, []).append(r)
    plt = pyplot()
    # At most three panels a row (four or five squeeze their titles and labels together).
    fig, grid_axes = panel_grid(plt, len(panels), 3.2, 0.6, sharey=True)
    axes = list(grid_axes.flat)
    base = stats.zero_shot(mine)
    for ax, (algorithm, configs) in zip(axes, sorted(panels.items()), strict=False):
        budgets = [c.seconds for c in configs if c.seconds is not None]
        end = max(budgets) if budgets else max(r["trace"][-1][0] for g in configs.values()
                                               for r in g)
        # A run whose first batch outlasted its budget (it may overrun by one batch) has no
        # point before the budget: the axis goes on past its first result, so it still shows.
        first = max(r["trace"][0][0] for g in configs.values() for r in g)
        if first > end:
            end = 1.1 * first
        grid = np.linspace(0.0, end, 300)
        for index, (config, group) in enumerate(sorted(configs.items(),
                                                       key=lambda item: item[0].order)):
            # Markers at staggered places (lines that coincide still show every marker), and
            # one where the curve starts, so that a short one (a late first batch) shows too.
            curve = _mean_curve(group, grid)
            start = int(np.argmax(np.isfinite(curve)))
            step = len(grid) // 5
            marks = sorted({start, *range(start + step // 5 * (index % 5 + 1), len(grid), step)})
            ax.plot(grid, curve, linewidth=1.8, markersize=6, markevery=marks,
                    label=f"{family_label(config.family)}, {budget_label(config)}",
                    **config_style(config, variants))
        if task in base:
            zero_algorithm, value = base[task]
            ax.axhline(value, color=ZERO_SHOT_COLOUR, linestyle="--", linewidth=1)
            # Below the line: the searches' curves start at or above it.
            ax.text(0.01 * end, value, f" best zero-shot ({zero_algorithm}): {value:.2f}",
                    ha="left", va="top", fontsize=9, color=ZERO_SHOT_COLOUR, bbox=LABEL_BOX)
        ax.set_xlim(0, end)
        ax.set_title(f"{algorithm} checkpoint")  # the figure title: compile excluded
        ax.set_xlabel("seconds of search")
        ax.grid(alpha=0.3)
    for line in grid_axes:
        line[0].set_ylabel("best return found\n(mean over instances)")
    if task in base:  # room for the zero-shot label under its line (the panels share y)
        low, high = axes[0].get_ylim()
        axes[0].set_ylim(min(low, base[task][1] - 0.12 * (high - low)), high)
    handles = [h for ax in axes for h in ax.get_legend_handles_labels()[0]]
    labels = [label for ax in axes for label in ax.get_legend_handles_labels()[1]]
    fig.suptitle(f"{task} (seconds of search exclude the compile)")
    columns = legend_columns(labels)
    rows_of_legend = -(-len(labels) // columns)
    fig.legend(handles, labels, loc="lower center", ncol=min(columns, len(labels)),
               bbox_to_anchor=(0.5, 0.0), frameon=False)
    height = fig.get_figheight()
    fig.set_figheight(height + 0.25 * rows_of_legend)
    fig.tight_layout(rect=(0, (0.2 * rows_of_legend + 0.3) / fig.get_figheight(), 1, 1))
    save(fig, path)
    return True
