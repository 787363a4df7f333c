"""The spec table (`ceiling/tasks/specs.json`) that `ceiling tasks` and checkpoint loading read
instead of building tasks: it must be what building each task gives."""

from __future__ import annotations

import pytest

from ceiling.errors import CeilingError
from ceiling.tasks import make, names, spec_table, task_spec
from ceiling.tasks.registry import REGENERATE_SPECS

# Cheap to build (no eager warehouse or grid layout): checked in the quick set.
QUICK = ["smax:3m", "smax:smacv2_20_units", "connector:con-5x5x3a"]


def _check(name: str) -> None:
    assert task_spec(name) == make(name).spec, (
        f"ceiling/tasks/specs.json is stale for {name}; regenerate it with `{REGENERATE_SPECS}`")


def test_the_table_lists_every_task_in_order() -> None:
    assert list(spec_table()) == names()


@pytest.mark.parametrize("name", QUICK)
def test_the_table_matches_the_built_task(name: str) -> None:
    _check(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in names() if n not in QUICK])
def test_the_table_matches_every_built_task(name: str) -> None:
    _check(name)


def test_an_unknown_task_is_refused_naming_the_valid_ones() -> None:
    with pytest.raises(CeilingError, match="unknown task 'rware:tiny'; valid tasks: rware:"):
        task_spec("rware:tiny")
