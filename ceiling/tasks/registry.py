"""Task names (`family:task`), their construction, and their specs without construction.

Each family module exposes `TASKS`, a dict from task name to the keyword arguments of its
constructor, and `make_task(name) -> Task`. Families are imported lazily so that listing one
family never pays for importing another's simulator.

Building a task runs its simulator's set-up op by op (jumanji lays out the warehouse and the
grid eagerly: about 70 small compiles for one RWARE layout), so listing all 24 tasks by building
them took 17 s. A spec is a pure function of the code, so `specs.json` beside this module holds
every task's spec, written by `write_spec_table()` from the built tasks; `spec_records`,
`spec_table` and `task_spec` read it, and `tests/tasks/test_specs.py` checks that it matches
`make(name).spec` for every task (and fails, saying how to regenerate it, when a family
changes).
"""

from __future__ import annotations

import functools
import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from ceiling.errors import CeilingError
from ceiling.tasks.base import Task, TaskSpec

FAMILIES: dict[str, str] = {
    "rware": "ceiling.tasks.rware",
    "connector": "ceiling.tasks.connector",
    "smax": "ceiling.tasks.smax",
}

SPECS_FILE = Path(__file__).with_name("specs.json")
REGENERATE_SPECS = ('python -c "from ceiling.tasks.registry import write_spec_table; '
                    'write_spec_table()"')


def _family(family: str) -> ModuleType:
    return importlib.import_module(FAMILIES[family])


def names(family: str | None = None) -> list[str]:
    """Every valid task name, `family:task`, in a stable order."""
    families = [family] if family is not None else list(FAMILIES)
    return [f"{fam}:{task}" for fam in families for task in _family(fam).TASKS]


@functools.cache
def make(name: str) -> Task:
    """The task called `name` (e.g. "rware:tiny-2ag-hard"); a clear error lists valid names."""
    family, _, task = name.partition(":")
    if family not in FAMILIES or task not in _family(family).TASKS:
        raise CeilingError(f"unknown task {name!r}; valid tasks: {', '.join(names())}")
    return _family(family).make_task(task)


def spec_to_dict(spec: TaskSpec) -> dict[str, Any]:
    return {
        "num_agents": spec.num_agents, "observation_shape": list(spec.observation_shape),
        "num_actions": spec.num_actions, "global_state_shape": list(spec.global_state_shape),
        "horizon": spec.horizon, "has_win": spec.has_win,
        "observation_fields": [[field, list(shape)] for field, shape in spec.observation_fields],
    }


def spec_from_dict(name: str, data: dict[str, Any]) -> TaskSpec:
    return TaskSpec(
        name=name, num_agents=int(data["num_agents"]),
        observation_shape=tuple(data["observation_shape"]), num_actions=int(data["num_actions"]),
        global_state_shape=tuple(data["global_state_shape"]), horizon=int(data["horizon"]),
        has_win=bool(data["has_win"]),
        observation_fields=tuple((str(field), tuple(shape))
                                 for field, shape in data["observation_fields"]),
    )


def spec_records() -> dict[str, dict[str, Any]]:
    """{task name: its spec as plain JSON data} for every task, in `names()` order, read from
    `specs.json`: no task is built and no simulator imported."""
    return {name: dict(entry) for name, entry in _spec_file().items()}


@functools.cache
def _spec_file() -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(SPECS_FILE.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CeilingError(f"cannot read the task specs in {SPECS_FILE} ({err}); this "
                           f"installation is damaged: reinstall ceiling, or regenerate the "
                           f"file with `{REGENERATE_SPECS}`") from None
    return dict(data)


def spec_table() -> dict[str, TaskSpec]:
    """{task name: spec} for every task, without building any (see `spec_records`)."""
    return {name: spec_from_dict(name, entry) for name, entry in _spec_file().items()}


def task_spec(name: str) -> TaskSpec:
    """The spec of task `name` without building the task; unknown names fail like `make`'s."""
    records = _spec_file()
    if name not in records:
        raise CeilingError(f"unknown task {name!r}; valid tasks: {', '.join(records)}")
    return spec_from_dict(name, records[name])


def write_spec_table(path: Path = SPECS_FILE) -> dict[str, Any]:
    """Build every task and write its spec to `path` (what `task_spec` reads)."""
    table = {name: spec_to_dict(make(name).spec) for name in names()}
    lines = [f"  {json.dumps(name)}: {json.dumps(entry)}" for name, entry in table.items()]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")  # one task per line
    _spec_file.cache_clear()
    return table
