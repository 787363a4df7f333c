"""`ceiling report`: a results store as a Markdown and an HTML report with PNG figures.

Figures: IQM of normalised score per configuration with 95 % stratified bootstrap CIs; the
per-task gain over the best zero-shot policy (sorted); performance against the time budget,
one line per strategy; contour maps over (time budget x width) per strategy when the grid has
at least 2 x 2 points; anytime curves (best return against seconds) per task. Every figure is
captioned with the suites and commands that filled the store, so a figure can be reproduced
from its caption alone.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ceiling.bench import stats
from ceiling.bench.store import Store
from ceiling.errors import CeilingError


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path)
    _pyplot().close(fig)


def plot_iqm(table: list[dict[str, Any]], path: Path) -> None:
    plt = _pyplot()
    labels = [row["config"].label for row in table]
    values = np.array([row["iqm"] for row in table])
    low = values - np.array([row["ci95"][0] for row in table])
    high = np.array([row["ci95"][1] for row in table]) - values
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(labels) + 1.2), dpi=110)
    ax.barh(labels, values, xerr=[low, high], color="tab:blue", alpha=0.8, capsize=3)
    ax.invert_yaxis()
    ax.set_xlabel("IQM of normalised score (0 = random, 1 = best known), 95 % CI")
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)


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


def plot_gains(gains: list[dict[str, Any]], path: Path) -> None:
    plt = _pyplot()
    ordered = sorted(headline_gains(gains), key=lambda g: g["gain_percent"])
    labels = [f"{g['task']} | {g['config'].label}" for g in ordered]
    values = np.array([g["gain_percent"] for g in ordered])
    err = [values - np.array([g["ci95"][0] for g in ordered]),
           np.array([g["ci95"][1] for g in ordered]) - values]
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(labels) + 1.2), dpi=110)
    colours = ["tab:green" if v >= 0 else "tab:red" for v in values]
    ax.barh(labels, values, xerr=err, color=colours, alpha=0.8, capsize=2)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("gain of mean return over the best zero-shot policy (%), 95 % CI\n"
                  "(each strategy at its largest budget and width)")
    ax.tick_params(axis="y", labelsize=6)
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)


def _by_strategy(table: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    lines: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in table:
        config = row["config"]
        if not stats.is_zero_shot(config.strategy) and config.seconds is not None:
            lines.setdefault((config.strategy, config.options, config.algorithm), []).append(row)
    return lines


def plot_budget(table: list[dict[str, Any]], path: Path) -> bool:
    lines = _by_strategy(table)
    if not lines:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=110)
    for (strategy, options, algorithm), rows in sorted(lines.items()):
        width = max(r["config"].width for r in rows)  # the widest attempts per strategy
        rows = sorted((r for r in rows if r["config"].width == width),
                      key=lambda r: r["config"].seconds)
        x = [r["config"].seconds for r in rows]
        y = np.array([r["iqm"] for r in rows])
        extra = "" if options == "{}" else f" {options}"
        ax.plot(x, y, marker="o", label=f"{strategy}{extra} ({algorithm}, width {width})")
        ax.fill_between(x, [r["ci95"][0] for r in rows], [r["ci95"][1] for r in rows],
                        alpha=0.15)
    for row in table:
        if stats.is_zero_shot(row["config"].strategy):
            ax.axhline(row["iqm"], linestyle="--", color="grey", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("time budget per instance (s, log scale; dashed: zero-shot)")
    ax.set_ylabel("IQM normalised score (95 % CI)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, path)
    return True


def plot_contours(table: list[dict[str, Any]], path: Path) -> bool:
    grids = {}
    for key, rows in _by_strategy(table).items():
        seconds = sorted({r["config"].seconds for r in rows})
        widths = sorted({r["config"].width for r in rows})
        if len(seconds) >= 2 and len(widths) >= 2:
            values = np.full((len(widths), len(seconds)), np.nan)
            for r in rows:
                values[widths.index(r["config"].width), seconds.index(r["config"].seconds)] = \
                    r["iqm"]
            grids[key] = (seconds, widths, values)
    if not grids:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(grids), figsize=(4.2 * len(grids), 3.6), dpi=110,
                             squeeze=False)
    for ax, ((strategy, _, algorithm), (seconds, widths, values)) in zip(
            axes[0], sorted(grids.items()), strict=True):
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        if high - low < 1e-6:  # a flat map still needs increasing contour levels
            low, high = low - 0.01, high + 0.01
        filled = ax.contourf(seconds, widths, values, levels=np.linspace(low, high, 12),
                             cmap="viridis")
        fig.colorbar(filled, ax=ax, label="IQM normalised score", format="%.3f")
        ax.set_xscale("log")
        ax.set_yscale("log", base=2)
        ax.set_xlabel("time budget (s)")
        ax.set_ylabel("parallel attempts (width)")
        ax.set_title(f"{strategy} ({algorithm})", fontsize=9)
    _save(fig, path)
    return True


def plot_anytime(rows: Sequence[dict[str, Any]], task: str, path: Path) -> None:
    plt = _pyplot()
    mine = [r for r in rows if r["task"] == task]
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=110)
    # One curve per strategy, from its runs at the largest budget and width: a longer run's
    # trace already holds every shorter budget's curve, and 30 overlapping lines do not read.
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in at_largest_extent([(r, stats.config_of(r)) for r in mine
                                if not stats.is_zero_shot(r["strategy"])],
                               lambda _, config: config.family):
        groups.setdefault(stats.config_of(r).label, []).append(r)
    horizon = max((r["trace"][-1][0] for r in mine if r["trace"]), default=1.0)
    grid = np.linspace(0.0, horizon, 200)
    for label, group in sorted(groups.items()):
        curves = []
        for r in group:
            seconds = np.array([p[0] for p in r["trace"]])
            best = np.array([p[2] for p in r["trace"]])
            index = np.searchsorted(seconds, grid, side="right") - 1
            # After its budget a run keeps its final best (it stopped, it did not regress).
            curves.append(np.where(index >= 0, best[np.maximum(index, 0)], np.nan))
        ax.plot(grid, np.mean(curves, axis=0), label=label, linewidth=1)
    base = stats.zero_shot(mine)
    if task in base:
        ax.axhline(base[task][1], color="grey", linestyle="--",
                   label=f"best zero-shot ({base[task][0]})")
    ax.set_xlabel("seconds of search (compile time excluded)")
    ax.set_ylabel("best return found (mean over instances)")
    ax.set_title(task, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, path)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def write_report(db: str | Path, out: str | Path, force: bool = False) -> list[Path]:
    """Write `out/index.html`, `out/README.md` and the PNGs; returns the paths written."""
    out_dir = Path(out)
    if (out_dir / "index.html").exists() and not force:
        raise CeilingError(f"{out_dir / 'index.html'} exists; pass --force to overwrite it")
    with Store(db, create=False) as store:
        rows = store.rows()
        baselines = store.baselines("random")
        sweeps = store.sweeps()
        failures = store.failure_count()
    if not rows:
        raise CeilingError(f"results database {db} holds no results yet; run `ceiling bench`")
    out_dir.mkdir(parents=True, exist_ok=True)
    table = stats.aggregate(rows, baselines)
    gains = stats.gains_over_zero_shot(rows)
    bounds = stats.normalisation_bounds(rows, baselines)
    suites = sorted({s["suite"] for s in sweeps}) or sorted({r["suite"] for r in rows})
    commands = list(dict.fromkeys(s["command"] for s in sweeps))
    caption = (f"Suite {', '.join(suites)}; produced by `{'`, `'.join(commands)}` then "
               f"`ceiling report {db} --out {out}`.")

    figures: list[tuple[str, str]] = []  # (file, title)
    plot_iqm(table, out_dir / "iqm.png")
    figures.append(("iqm.png", "IQM of normalised score per configuration (95 % CI)"))
    if gains:
        plot_gains(gains, out_dir / "gain_over_zero_shot.png")
        figures.append(("gain_over_zero_shot.png", "Per-task gain over the best zero-shot "
                                                   "policy at each strategy's largest budget "
                                                   "and width, sorted"))
    if plot_budget(table, out_dir / "performance_vs_budget.png"):
        figures.append(("performance_vs_budget.png", "Performance against time budget"))
    if plot_contours(table, out_dir / "budget_width_contours.png"):
        figures.append(("budget_width_contours.png", "Performance over time budget x width"))
    for task in sorted(bounds):
        name = f"anytime_{task.replace(':', '_')}.png"
        plot_anytime(rows, task, out_dir / name)
        figures.append((name, f"Anytime curves on {task}"))

    iqm_rows = [[row["config"].label, ", ".join(row["tasks"]), str(row["runs"]),
                 f"{row['iqm']:.3f} [{row['ci95'][0]:.3f}, {row['ci95'][1]:.3f}]",
                 _fmt(row["probability_of_improvement"], 2)] for row in table]
    gain_rows = [[g["task"], g["config"].label, f"{g['zero_shot_return']:.3f} "
                  f"({g['zero_shot_algorithm']})", f"{g['mean_return']:.3f}",
                  f"{g['gain_percent']:+.1f} % [{g['ci95'][0]:+.1f}, {g['ci95'][1]:+.1f}]",
                  _fmt(g["win_rate"], 2), str(g["instances"])] for g in gains]
    summary_rows = [[row["config"].label, str(row["tasks"]),
                     f"{row['mean_gain_percent']:+.1f} % [{row['ci95'][0]:+.1f}, "
                     f"{row['ci95'][1]:+.1f}]",
                     f"{row['max_gain_percent']:+.1f} % ({row['max_task']})"]
                    for row in stats.gain_summary(gains)]
    bound_rows = [[task, f"{low:.3f}", f"{high:.3f}"] for task, (low, high) in bounds.items()]
    tables = [
        ("Aggregate across tasks", ["configuration", "tasks", "runs",
                                    "IQM normalised score [95 % CI]", "P(> best zero-shot)"],
         iqm_rows),
        ("Gain over the best zero-shot policy",
         ["task", "configuration", "zero-shot return", "mean return", "gain [95 % CI]",
          "win rate", "instances"],
         gain_rows),
        ("Gain over zero-shot across tasks (reference study: +45 % mean, +126 % max)",
         ["configuration", "tasks", "mean gain [95 % CI]", "max gain"], summary_rows),
        ("Normalisation bounds", ["task", "min (uniform random policy, mean)",
                                  "max (best stored return)"], bound_rows),
    ]
    intro = (f"{len(rows)} stored cells ({failures} failures recorded). Scores are min-max "
             "normalised per task (min: uniform random policy's mean return on the same test "
             "instances; max: best return stored for the task). IQM and 95 % stratified "
             "bootstrap confidence intervals as in rliable; gains are of the mean return over "
             "the zero-shot mean of the base policy with the best zero-shot mean.")

    md = [f"# Benchmark report: {', '.join(suites)}", "", intro, "", f"_{caption}_", ""]
    for title, header, body in tables:
        md += [f"## {title}", "", "| " + " | ".join(header) + " |",
               "|" + "---|" * len(header)]
        md += ["| " + " | ".join(cells) + " |" for cells in body]
        md.append("")
    md.append("## Figures")
    for file, title in figures:
        md += ["", f"### {title}", "", f"![{title}]({file})", "", f"_{caption}_"]
    (out_dir / "README.md").write_text("\n".join(md) + "\n")

    esc = html.escape
    page = ["<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>ceiling report: {esc(', '.join(suites))}</title>",
            "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
            "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
            "padding:3px 6px}figcaption{font-size:12px;color:#444}</style></head><body>",
            f"<h1>Benchmark report: {esc(', '.join(suites))}</h1><p>{esc(intro)}</p>"]
    for title, header, body in tables:
        page.append(f"<h2>{esc(title)}</h2><table><tr>"
                    + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
        page += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>"
                 for cells in body]
        page.append("</table>")
    for file, title in figures:
        page.append(f"<figure><h3>{esc(title)}</h3><img src='{esc(file)}' alt='{esc(title)}'>"
                    f"<figcaption>{esc(caption)}</figcaption></figure>")
    page.append("</body></html>")
    (out_dir / "index.html").write_text("\n".join(page) + "\n")
    return [out_dir / "index.html", out_dir / "README.md"] + [out_dir / f for f, _ in figures]
