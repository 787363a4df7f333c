"""Training return at fixed environment-step marks, read from training runs' `metrics.jsonl`.

Issue 12's base-policy quality target is stated as the training return at 3M, 7.5M and 10M
environment steps (IPPO on `smax:3m`: at least 1.87 at 7.5M and 1.90 at 10M, what the public
JAX baseline reaches). The training return at a mark is the mean return of the training
episodes (stochastic actions) that ended within `--window` steps either side of it: the
logged intervals in that window, each weighted by the episodes it counted. A mark past a run's
last logged step reads that run's final window (the last logged step minus the window).

    python benchmarks/training_return.py ceiling/checkpoints/smax-3m/ippo RUN_DIR ...
    python benchmarks/training_return.py RUN_DIR --target 7.5M=1.87 --target 10M=1.90

Prints one row per run (the recorded settings that differ between the runs, then the return at each
mark) and, with `--target`, whether each run meets every target.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from ceiling.errors import CeilingError
from ceiling.training import convergence
from ceiling.training.config import parse_scalar

DEFAULT_MARKS = "3M,7.5M,10M"
DEFAULT_WINDOW = "300k"


def parse_steps(text: str) -> int:
    """'7.5M' -> 7500000; anything but a positive step count is a ValueError."""
    value = parse_scalar(text)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{text!r} is not a positive number of steps (e.g. 7.5M, 300k)")
    return int(value)


def read_metrics(run: Path) -> list[dict[str, Any]]:
    """The logged training intervals of one run (rows with a training return)."""
    try:
        rows = convergence.read_metrics(run)
    except CeilingError as error:
        raise SystemExit(str(error)) from None
    rows = [r for r in rows if r.get("train_return") is not None and r.get("episodes")]
    if not rows:
        raise SystemExit(f"{run / 'metrics.jsonl'}: no logged training interval with episodes")
    return rows


def return_at(rows: list[dict[str, Any]], mark: int, window: int) -> tuple[float, int]:
    """The episode-weighted mean training return within `window` steps of `mark` (a mark past
    the last logged step is moved back to it), and the steps the window was centred on."""
    centre = min(mark, max(r["step"] for r in rows))
    chosen = [r for r in rows if abs(r["step"] - centre) <= window]
    if not chosen:
        raise SystemExit(f"no logged interval within {window} steps of {centre}")
    episodes = sum(r["episodes"] for r in chosen)
    return sum(r["train_return"] * r["episodes"] for r in chosen) / episodes, centre


def settings(run: Path) -> dict[str, Any]:
    """The run's recorded configuration (config.yaml), or nothing if it has none."""
    path = run / "config.yaml"
    return yaml.safe_load(path.read_text()) if path.is_file() else {}


def parse_target(text: str) -> tuple[int, float]:
    mark, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"--target {text!r}: write MARK=RETURN, e.g. 7.5M=1.87")
    try:
        return parse_steps(mark), float(value)
    except ValueError as error:
        raise SystemExit(f"--target {text!r}: {error}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="training run or checkpoint directories")
    parser.add_argument("--marks", default=DEFAULT_MARKS, help=f"default {DEFAULT_MARKS}")
    parser.add_argument("--window", default=DEFAULT_WINDOW, help=f"default {DEFAULT_WINDOW}")
    parser.add_argument("--target", action="append", default=[], metavar="MARK=RETURN",
                        help="a training return to reach at a mark (repeatable)")
    args = parser.parse_args(argv)
    try:
        marks = [parse_steps(m) for m in args.marks.split(",")]
        window = parse_steps(args.window)
    except ValueError as error:
        raise SystemExit(f"--marks/--window: {error}") from None
    targets = [parse_target(t) for t in args.target]
    configs = [settings(run) for run in args.runs]
    # Settings every run records (a field added since an older run was trained is left out).
    keys = sorted(set.intersection(*(set(c) for c in configs))) if configs else []
    differing = [k for k in keys if len({json.dumps(c.get(k)) for c in configs}) > 1]
    header = ["run", *differing, *(f"{m / 1e6:g}M" for m in marks)]
    if targets:
        header.append("targets met")
    print(" | ".join(header))
    failed = False
    for run, config in zip(args.runs, configs, strict=True):
        rows = read_metrics(run)
        cells = [str(run), *(json.dumps(config.get(k)) for k in differing)]
        at = {mark: return_at(rows, mark, window) for mark in {*marks, *(m for m, _ in targets)}}
        for mark in marks:
            value, centre = at[mark]
            cells.append(f"{value:.3f}" + ("" if centre == mark else f" (at {centre / 1e6:.2f}M)"))
        if targets:
            met = [at[mark][0] >= value for mark, value in targets]
            cells.append("yes" if all(met) else "no")
            failed |= not all(met)
        print(" | ".join(cells))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
