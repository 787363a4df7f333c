"""`ceiling report`: a results store as a Markdown and an HTML report with PNG figures.

The report opens with the reference study's claims, each tested on the store with a figure, its
95 % CI and a verdict (`ceiling.bench.claims`); then the answer: per task, the best strategy at
its largest budget and width and its gain over the best zero-shot policy with a 95 % CI, in a
short table and one figure. Then the figures (`ceiling.bench.figures`): IQM of normalised score
per configuration, performance against the time budget, the measured (time budget x width)
grid, anytime curves per task; then the full tables, the first of which gives the rollouts each
cell spent next to its time budget, so that budgets compare across hardware. Every figure is
captioned with the suites and commands that filled the store, so a figure can be reproduced
from its caption alone. Rows the store could not decode are left out and listed.

The report is written into a staging folder beside `out` and moved into place, so a write that
fails half-way leaves `out` as it was; files of an earlier report that this one does not draw
are removed.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ceiling.bench import stats
from ceiling.bench.claims import ClaimResult, evaluate_claims
from ceiling.bench.figures import (
    best_per_task,
    family_label,
    headline_gains,
    plot_answer,
    plot_anytime,
    plot_budget,
    plot_grid,
    plot_iqm,
    variant_numbers,
)
from ceiling.bench.speed import SLOW_SPEED, row_speeds
from ceiling.bench.store import CONTENDED_CPU_SHARE, Store, contended
from ceiling.errors import CeilingError
from ceiling.outputs import check_writable

# Files an earlier report may have drawn (some under names this version no longer uses).
REPORT_FILES = ("index.html", "README.md", "iqm.png", "gain_over_zero_shot.png",
                "performance_vs_budget.png", "budget_width_contours.png", "budget_width.png")

__all__ = ["headline_gains", "write_report"]


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _gain(value: float, ci: tuple[float, float]) -> str:
    return f"{value:+.1f} % [{ci[0]:+.1f}, {ci[1]:+.1f}]"


def answer_rows(gains: list[dict[str, Any]]) -> list[list[str]]:
    """Per task: the best strategy (ties listed together), its budget and width, its gain with
    its CI, and the zero-shot and searched mean returns."""
    from ceiling.bench.figures import budget_label, family_label

    rows = []
    for task, group in best_per_task(gains).items():
        first = group[0]
        names = ", ".join(family_label(g["config"].family) for g in group)
        if len(group) > 1:
            names += " (tied)"
        if first["gain_percent"] <= 0:
            names += "; none beat zero-shot"
        rows.append([task, names, budget_label(first["config"]),
                     _gain(first["gain_percent"], first["ci95"]),
                     f"{first['zero_shot_return']:.3f} ({first['zero_shot_algorithm']}) → "
                     f"{first['mean_return']:.3f}", str(first["instances"])])
    return rows


def claim_rows(results: list[ClaimResult]) -> list[list[str]]:
    """One row per claim: number, claim, our figure with its CI, the study's, the test, the
    verdict and the details."""
    return [[c.number, c.text,
             "–" if c.value is None or c.ci95 is None else _gain(c.value, c.ci95),
             c.study, c.test, c.verdict, c.detail] for c in results]


def rollout_rows(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: per task, search strategy (base policy) and width, the rollouts a cell
    spent (mean over its instances and seeds), one column per budget, the least CPU share any
    of its cells had and the least machine speed (its speed probe over the store's median;
    "–" where none was measured)."""
    relative = row_speeds(rows)
    budgets: dict[str, tuple[float, int]] = {}  # label: sort key
    spent: dict[tuple[str, tuple[str, str, str], int], dict[str, list[int]]] = {}
    shares: dict[tuple[str, tuple[str, str, str], int], list[float]] = {}
    speeds: dict[tuple[str, tuple[str, str, str], int], list[float]] = {}
    for row in rows:
        config = stats.config_of(row)
        if stats.is_zero_shot(config.strategy):
            continue
        label = " ".join(p for p in (f"{config.seconds:g} s" if config.seconds else "",
                                     f"{config.rollouts} rollouts" if config.rollouts else "")
                         if p)
        budgets[label] = (config.seconds or 0.0, config.rollouts or 0)
        key = (row["task"], config.family, config.width)
        spent.setdefault(key, {}).setdefault(label, []).append(int(row["rollouts_done"]))
        if row.get("cpu_share") is not None:
            shares.setdefault(key, []).append(float(row["cpu_share"]))
        speed = relative.get(row["config_hash"])
        if speed is not None:
            speeds.setdefault(key, []).append(speed)
    columns = sorted(budgets, key=lambda label: budgets[label])
    body = [[task, family_label(family), str(width)]
            + [f"{np.mean(by_budget[c]):,.0f}" if c in by_budget else "–" for c in columns]
            + [f"{min(found[(task, family, width)]):.2f}" if (task, family, width) in found
               else "–" for found in (shares, speeds)]
            for (task, family, width), by_budget in sorted(spent.items())]
    return (["task", "strategy (base policy)", "width"] + columns
            + ["least CPU share", "least speed"], body)


def cpu_warnings(rows: list[dict[str, Any]]) -> list[str]:
    """What the store says of the machine its searching cells ran on: the cells that had less
    than `CONTENDED_CPU_SHARE` of a core (another process competed, so their time budgets
    bought fewer rollouts), the cells stored before the CPU share was measured, and the cells
    whose speed probe was below `SLOW_SPEED` of the store's median (the machine itself was
    slower)."""
    from ceiling.bench.figures import budget_label

    # A rollout budget buys the same search on any machine: only time budgets can lose to one.
    searching = [row for row in rows if not stats.is_zero_shot(row["strategy"])
                 and row.get("seconds") is not None]
    relative = row_speeds(rows)

    def flagged(measure: Any) -> tuple[int, str]:
        """How many searching cells `measure` (row -> figure or None) flags, and where they
        are: per task, strategy and budget, how many and the least figure."""
        found: dict[str, list[float]] = {}
        for row in searching:
            figure = measure(row)
            if figure is not None:
                config = stats.config_of(row)
                where = f"{row['task']} {family_label(config.family)} {budget_label(config)}"
                found.setdefault(where, []).append(figure)
        listed = "; ".join(f"{where}: {len(cells)} cell{'s' if len(cells) > 1 else ''}, "
                           f"least {min(cells):.2f}" for where, cells in sorted(found.items()))
        return sum(map(len, found.values())), listed

    warnings = []
    count, listed = flagged(lambda row: float(row["cpu_share"]) if contended(row) else None)
    if count:
        warnings.append(
            f"{count} of {len(searching)} searching cells with a time budget had less than "
            f"{100 * CONTENDED_CPU_SHARE:.0f} % of a CPU core while they ran ({listed}): another "
            "process competed for the machine, so their time budgets bought fewer rollouts "
            "than an idle machine's and they are not comparable with the others by time. "
            "Run them again with nothing else running (`ceiling bench SUITE --db STORE --rerun "
            "contended`), or compare by rollouts (the table at the end).")
    count, listed = flagged(lambda row: speed if (speed := relative.get(row["config_hash"]))
                            is not None and speed < SLOW_SPEED else None)
    if count:
        warnings.append(
            f"{count} of {len(searching)} searching cells with a time budget ran on a machine "
            f"slower than "
            f"{100 * SLOW_SPEED:.0f} % of the store's median speed ({listed}; each cell's speed "
            "probe over the store's median): the machine itself was slower while they ran (a "
            "virtual machine's host can be, from one day to the next, with the cell's core all "
            "its own), so their time budgets bought fewer rollouts than the other cells' and "
            "they are not comparable with them by time. Run them again when the machine is "
            "back to speed (`ceiling bench SUITE --db STORE --rerun slow`), or compare by "
            "rollouts (the table at the end).")
    unmeasured = sum(row.get("cpu_share") is None for row in searching)
    if unmeasured:
        warnings.append(
            f"{unmeasured} of {len(searching)} searching cells with a time budget were stored "
            "before ceiling "
            "recorded each cell's CPU share (store schema version 3), so whether another "
            "process competed with them for the CPU is not known; cells stored in different "
            "sessions compare by time only if the machine was equally fast and idle in each "
            "(`ceiling bench SUITE --db STORE --rerun unmeasured` runs them again, measured).")
    return warnings


def _stage(out_dir: Path) -> Path:
    """A fresh folder beside `out_dir` to write the report into."""
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=parent))


def _publish(staging: Path, out_dir: Path) -> None:
    """Move the staged report into `out_dir`: the whole folder if there is none yet, else file
    by file (each an atomic rename), then drop an earlier report's files not drawn now."""
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    written = {path.name for path in staging.iterdir()}
    for name in written:
        os.replace(staging / name, out_dir / name)
    for old in out_dir.iterdir():
        ours = old.name in REPORT_FILES or (old.name.startswith("anytime_")
                                            and old.suffix == ".png")
        if ours and old.name not in written:
            old.unlink()
    staging.rmdir()


def write_report(db: str | Path, out: str | Path, force: bool = False,
                 integrity: str = "quick") -> tuple[list[Path], list[str]]:
    """Write `out/index.html`, `out/README.md` and the PNGs; returns the paths written and the
    problems met (store rows that did not decode, left out; checkpoints pooled under one
    label)."""
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise CeilingError(f"--out {out_dir} is a file; give a directory")
    if (out_dir / "index.html").exists() and not force:
        raise CeilingError(f"{out_dir / 'index.html'} exists; pass --force to overwrite it")
    check_writable(out_dir, force=True, directory=True)  # before the store is read
    with Store(db, create=False, integrity=integrity) as store:
        rows = store.rows()
        baselines = store.baselines("random")
        sweeps = store.sweeps()
        failures = store.failure_count()
        replaced = store.replaced_count()
        problems = list(store.problems)
    if not rows:
        raise CeilingError(f"results database {db} holds no results yet; run `ceiling bench`"
                           + (f" ({len(problems)} rows could not be read)" if problems else ""))
    try:
        staging = _stage(out_dir)
    except OSError as err:
        raise CeilingError(f"cannot write the report to {out_dir}: {err.strerror or err}; "
                           "nothing was written") from None
    try:
        pooled = stats.pooled_checkpoints(rows)
        paths = _draw(rows, baselines, sweeps, (failures, replaced), problems, pooled, db,
                      out_dir, staging)
        _publish(staging, out_dir)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise CeilingError(f"could not write the report to {out_dir} ({err.strerror or err}); "
                           f"{out_dir} is as it was, and the store is untouched: rerun "
                           "`ceiling report` once the problem is fixed") from None
    finally:
        with contextlib.suppress(OSError):
            if staging.exists():
                shutil.rmtree(staging)
    return [out_dir / path.name for path in paths], pooled + problems


def _draw(rows: list[dict[str, Any]], baselines: dict[str, dict[int, float]],
          sweeps: list[dict[str, Any]], counts: tuple[int, int], problems: list[str],
          pooled: list[str], db: str | Path, out_dir: Path, staging: Path) -> list[Path]:
    """`counts`: the failures recorded and the rows replaced by reruns."""
    failures, replaced = counts
    table = stats.aggregate(rows, baselines)
    gains = stats.gains_over_zero_shot(rows)
    bounds = stats.normalisation_bounds(rows, baselines)
    suites = sorted({s["suite"] for s in sweeps}) or sorted({r["suite"] for r in rows})
    commands = list(dict.fromkeys(s["command"] for s in sweeps))
    # The commands that filled the store, listed once at the top; each figure's caption names
    # the suite and the store and points there.
    reproduce = commands + [f"ceiling report {db} --out {out_dir}"]
    caption = f"Suite {', '.join(suites)}, store {db}; the commands that made it are at the top."
    reproduce_title = "Produced by these commands, in this order:"

    figures: list[tuple[str, str]] = []  # (file, title)
    # One numbering of every strategy's option sets, so a variant looks alike in every figure.
    variants = variant_numbers(stats.config_of(r) for r in rows)
    answer_figure = plot_answer(gains, staging / "gain_over_zero_shot.png", variants)
    plot_iqm(table, staging / "iqm.png", sorted(bounds), variants)
    figures.append(("iqm.png", "IQM of normalised score per configuration (95 % CI)"))
    scaling = stats.aggregate(stats.scaling_rows(rows), baselines, bounds=bounds)
    tasks = sorted(bounds)
    if plot_budget(scaling, staging / "performance_vs_budget.png", tasks, variants):
        figures.append(("performance_vs_budget.png", "Performance against the time budget, "
                                                     "one panel per width (on the instances "
                                                     "every budget and width measured)"))
    if plot_grid(scaling, staging / "budget_width.png", tasks):
        figures.append(("budget_width.png", "IQM over the measured time budget × width cells "
                                            "(one colour scale for every panel; on the "
                                            "instances every cell measured)"))
    for task in sorted(bounds):
        name = f"anytime_{task.replace(':', '_')}.png"
        if plot_anytime(rows, task, staging / name, variants):
            figures.append((name, f"Anytime curves on {task}"))

    answer = answer_rows(gains)
    claims = evaluate_claims(rows)
    claims_table = ("The reference study's claims, tested on this store",
                    ["#", "claim (reference study)", "ours [95 % CI]", "study", "test",
                     "verdict", "details"], claim_rows(claims))
    claims_text = (
        "Each figure is a difference in mean return between what the claim compares, measured "
        "on the same instances, in % of the task's best zero-shot mean return (claim 1: of the "
        "compared base policy's; claim 2: the gain of the table below), with a 95 % paired "
        "bootstrap CI over instances, stratified over tasks where it is a mean over tasks. A "
        "claim holds when the CI lies beyond the threshold on the claimed side, does not hold "
        "when it lies on the other side or touches the threshold from there, and is undecided "
        "when it straddles the threshold (at this sample size); not measurable when the store "
        "lacks the cells it needs. Every verdict is computed from the store.")
    definitions = [f"{c.number}. {c.definition}" for c in claims]
    rollout_header, rollouts = rollout_rows(rows)
    warnings = pooled + cpu_warnings(rows)
    iqm_rows = [[row["config"].label, ", ".join(row["tasks"]), str(row["runs"]),
                 f"{row['iqm']:.3f} [{row['ci95'][0]:.3f}, {row['ci95'][1]:.3f}]",
                 _fmt(row["probability_of_improvement"], 2)] for row in table]
    gain_rows = [[g["task"], g["config"].label, f"{g['zero_shot_return']:.3f} "
                  f"({g['zero_shot_algorithm']})", f"{g['mean_return']:.3f}",
                  _gain(g["gain_percent"], g["ci95"]), _fmt(g["win_rate"], 2),
                  str(g["instances"])] for g in gains]
    summary_rows = [[row["config"].label, str(row["tasks"]),
                     _gain(row["mean_gain_percent"], row["ci95"]),
                     f"{row['max_gain_percent']:+.1f} % ({row['max_task']})"]
                    for row in stats.gain_summary(gains)]
    bound_rows = [[task, f"{low:.3f}", f"{high:.3f}"] for task, (low, high) in bounds.items()]
    answer_table = ("The answer: the best strategy per task",
                    ["task", "best strategy (base policy)", "budget × width",
                     "gain over the best zero-shot [95 % CI]", "mean return: zero-shot → best",
                     "instances"], answer)
    tables = [
        ("Rollouts spent per cell (mean over instances), next to its time budget",
         rollout_header, rollouts),
        ("Gain over zero-shot across tasks (reference study: +45 % mean, +126 % max)",
         ["configuration", "tasks", "mean gain [95 % CI]", "max gain"], summary_rows),
        ("Aggregate across tasks", ["configuration", "tasks", "runs",
                                    "IQM normalised score [95 % CI]", "P(> best zero-shot)"],
         iqm_rows),
        ("Gain over the best zero-shot policy, every configuration",
         ["task", "configuration", "zero-shot return", "mean return", "gain [95 % CI]",
          "win rate", "instances"],
         gain_rows),
        ("Normalisation bounds", ["task", "min (uniform random policy, mean)",
                                  "max (best stored return)"], bound_rows),
    ]
    answer_text = (
        "Each strategy is compared at its largest budget and width (the reference study's "
        "headline is 30 s × 64 attempts); the gain is of the mean return over the zero-shot "
        "mean of the base policy with the best zero-shot mean, on the same instances, with a "
        "paired bootstrap 95 % CI. Filled markers: the best per task.")
    intro = (f"{len(rows)} stored cells ({failures} failure{'' if failures == 1 else 's'} "
             "recorded"
             + (f"; {replaced} earlier row{'' if replaced == 1 else 's'} of cells run again, "
                "kept apart in the store's replaced table and not used" if replaced else "")
             + (f"; {len(problems)} rows could not be read and are left out, listed at the end"
                if problems else "")
             + "). Scores are min-max normalised per task (min: uniform random policy's mean "
             "return on the same test instances; max: best return stored for the task). IQM "
             "and 95 % stratified bootstrap confidence intervals as in rliable.")

    md = [f"# Benchmark report: {', '.join(suites)}", "", reproduce_title, ""]
    md += [f"- `{command}`" for command in reproduce] + [""]
    md += [f"**Warning:** {warning}\n" for warning in warnings]

    def md_table(title: str, header: list[str], body: list[list[str]]) -> list[str]:
        return ([f"## {title}", "", "| " + " | ".join(header) + " |",
                 "|" + "---|" * len(header)]
                + ["| " + " | ".join(cells) + " |" for cells in body] + [""])

    md += md_table(*claims_table) + [claims_text, "", "How each claim is measured:", ""]
    md += [f"- {definition}" for definition in definitions] + [""]
    if answer:
        md += md_table(*answer_table) + [answer_text, ""]
    if answer_figure:
        md += ["![gain over the best zero-shot policy](gain_over_zero_shot.png)", "",
               f"_{caption}_", ""]
    md += ["## Figures", "", intro]
    for file, title in figures:
        md += ["", f"### {title}", "", f"![{title}]({file})", "", f"_{caption}_"]
    md.append("")
    for title, header, body in tables:
        md += md_table(title, header, body)
    if problems:
        md += ["## Rows left out", ""] + [f"- {problem}" for problem in problems] + [""]
    (staging / "README.md").write_text("\n".join(md) + "\n")

    esc = html.escape

    def html_table(title: str, header: list[str], body: list[list[str]],
                   nowrap: tuple[int, ...] = ()) -> list[str]:
        """`nowrap`: the columns kept on one line (a figure with its interval, a verdict)."""
        def cell(column: int, text: str) -> str:
            style = " style='white-space:nowrap'" if column in nowrap else ""
            return f"<td{style}>{esc(text)}</td>"

        return ([f"<h2>{esc(title)}</h2><table><tr>"
                 + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"]
                + ["<tr>" + "".join(cell(i, c) for i, c in enumerate(cells)) + "</tr>"
                   for cells in body] + ["</table>"])

    page = ["<!doctype html><html><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            f"<title>ceiling report: {esc(', '.join(suites))}</title>",
            "<style>body{font-family:sans-serif;max-width:1040px;margin:auto;padding:0 12px;"
            "line-height:1.4}table{border-collapse:collapse;font-size:14px;margin:8px 0}"
            "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
            "img{max-width:100%;height:auto}figure{margin:16px 0}"
            "figcaption{font-size:13px;color:#444}</style></head><body>",
            f"<h1>Benchmark report: {esc(', '.join(suites))}</h1>",
            f"<p>{esc(reproduce_title)}</p><ul>"]
    page += [f"<li><code>{esc(command)}</code></li>" for command in reproduce] + ["</ul>"]
    # A warning's `command` spans (Markdown code) are code on the page too.
    page += ["<p><strong>Warning:</strong> "
             + re.sub(r"`([^`]+)`", r"<code>\1</code>", esc(warning)) + "</p>"
             for warning in warnings]
    page += html_table(*claims_table, nowrap=(2, 5)) + [f"<p>{esc(claims_text)}</p>",
                                         "<p>How each claim is measured:</p><ul>"]
    page += [f"<li>{esc(definition)}</li>" for definition in definitions] + ["</ul>"]
    if answer:
        page += html_table(*answer_table, nowrap=(3,)) + [f"<p>{esc(answer_text)}</p>"]
    if answer_figure:
        page.append("<figure><img src='gain_over_zero_shot.png' alt='gain over the best "
                    f"zero-shot policy'><figcaption>{esc(caption)}</figcaption></figure>")
    page += ["<h2>Figures</h2>", f"<p>{esc(intro)}</p>"]
    for file, title in figures:
        page.append(f"<figure><h3>{esc(title)}</h3><img src='{esc(file)}' alt='{esc(title)}'>"
                    f"<figcaption>{esc(caption)}</figcaption></figure>")
    for title, header, body in tables:
        page += html_table(title, header, body)
    if problems:
        page += ["<h2>Rows left out</h2><ul>"] + [f"<li>{esc(p)}</li>" for p in problems]
        page.append("</ul>")
    page.append("</body></html>")
    (staging / "index.html").write_text("\n".join(page) + "\n")
    written = ["index.html", "README.md"] + (["gain_over_zero_shot.png"] if answer_figure
                                             else []) + [file for file, _ in figures]
    return [staging / name for name in written]
