"""Task names (`family:task`) and their construction.

Each family module exposes `TASKS`, a dict from task name to the keyword arguments of its
constructor, and `make_task(name) -> Task`. Families are imported lazily so that listing one
family never pays for importing another's simulator.
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType

from ceiling.errors import CeilingError
from ceiling.tasks.base import Task

FAMILIES: dict[str, str] = {
    "rware": "ceiling.tasks.rware",
    "connector": "ceiling.tasks.connector",
    "smax": "ceiling.tasks.smax",
}


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
