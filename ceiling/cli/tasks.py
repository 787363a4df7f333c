"""`ceiling tasks`: every task with its spec, as a table or JSON.

The specs come from the registry's spec table (`ceiling/tasks/specs.json`, see
`ceiling.tasks.registry`), read here directly: importing `ceiling.tasks` imports JAX, and
listing needs neither JAX nor a simulator, nor to build a task (which took 17 s for all 24)."""

from __future__ import annotations

import argparse
import json
from importlib import resources
from typing import Any

from ceiling.cli.common import console
from ceiling.errors import CeilingError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("tasks", help="list every task with its spec")
    p.add_argument("--family", help="only this family (rware, connector, smax)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_tasks)


# The families, in the registry's order (`ceiling.tasks.registry.FAMILIES`; a test checks).
FAMILIES = ("rware", "connector", "smax")


def spec_records() -> dict[str, dict[str, Any]]:
    """`ceiling.tasks.registry.spec_records()`, read without importing `ceiling.tasks`."""
    path = resources.files("ceiling").joinpath("tasks", "specs.json")
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError) as err:
        raise CeilingError(f"cannot read the task specs in {path} ({err}); this installation "
                           "is damaged: reinstall ceiling") from None


def cmd_tasks(args: argparse.Namespace) -> int:
    if args.family is not None and args.family not in FAMILIES:
        raise CeilingError(f"unknown family {args.family!r}; valid: {', '.join(FAMILIES)}")
    rows: list[dict[str, Any]] = []
    for name, spec in spec_records().items():
        if args.family is not None and name.partition(":")[0] != args.family:
            continue
        rows.append({
            "task": name, "agents": spec["num_agents"],
            "observation_size": int(spec["observation_shape"][0]),
            "actions": spec["num_actions"], "global_state_size": int(spec["global_state_shape"][0]),
            "horizon": spec["horizon"], "win_condition": spec["has_win"],
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.table import Table

    table = Table(title="ceiling tasks")
    for column in ("task", "agents", "obs", "actions", "state", "horizon", "win"):
        table.add_column(column, justify="left" if column == "task" else "right")
    for row in rows:
        table.add_row(row["task"], str(row["agents"]), str(row["observation_size"]),
                      str(row["actions"]), str(row["global_state_size"]), str(row["horizon"]),
                      "yes" if row["win_condition"] else "-")
    console().print(table)
    return 0
