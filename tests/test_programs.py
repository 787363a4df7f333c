"""Compiled programs' memory mappings: counted, and freed when the process releases its caches
(`ceiling.programs`); the replay cache is bounded; a sweep's worker releases near the limit."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ceiling import programs
from ceiling.search import solution

SMOKE = Path(__file__).resolve().parents[1] / "suites" / "smoke.yaml"

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="counts mappings in /proc/self/maps")


@linux_only
def test_released_programs_give_their_memory_mappings_back() -> None:
    functions = [jax.jit(lambda x, i=i: jnp.sin(x) * i + jnp.cos(x) ** i) for i in range(40)]
    before = programs.mapping_count()
    for function in functions:
        function(jnp.ones(3)).block_until_ready()
    compiled = programs.mapping_count()
    assert before is not None and compiled is not None
    assert compiled >= before + 2 * len(functions), (before, compiled)  # code, per program
    programs.release_compiled_programs()
    released = programs.mapping_count()
    assert released is not None
    # the functions are still referenced, their compiled programs no longer
    assert released <= compiled - 2 * len(functions), (compiled, released)


@linux_only
def test_the_mapping_limit_is_read_from_the_kernel() -> None:
    assert programs.mapping_limit() == int(open("/proc/sys/vm/max_map_count").read())
    assert programs.near_mapping_limit(0.0)
    assert not programs.near_mapping_limit(1.0)


def test_without_proc_the_count_is_unknown_and_never_near_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(programs, "MAPS", tmp_path / "absent")
    monkeypatch.setattr(programs, "MAX_MAP_COUNT", tmp_path / "absent")
    assert programs.mapping_count() is None
    assert programs.mapping_limit() == programs.DEFAULT_MAP_LIMIT
    assert not programs.near_mapping_limit(0.0)


def test_release_runs_the_registered_hooks(monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(programs, "_release_hooks", [])
    programs.on_release(lambda: calls.append("first"))
    programs.on_release(lambda: calls.append("second"))
    programs.release_compiled_programs()
    assert calls == ["first", "second"]


def test_prepared_replays_are_bounded_and_released(connector_task, monkeypatch) -> None:
    monkeypatch.setattr(solution, "PREPARED_REPLAYS", 2)
    key = jax.device_put(np.asarray(jax.random.PRNGKey(3)))
    agents = connector_task.spec.num_agents
    shapes = [(steps, agents) for steps in (1, 2, 3)]
    for shape in shapes:
        solution.prepare_replay(connector_task, key, shape)
    kept = [signature[-1] for signature in solution._prepared]
    assert kept == shapes[1:]  # the oldest is dropped
    solution.prepare_replay(connector_task, key, shapes[1])  # used again: now the newest
    assert [signature[-1] for signature in solution._prepared] == [shapes[2], shapes[1]]
    programs.release_compiled_programs()  # `forget_prepared_replays` is registered
    assert not solution._prepared


def test_a_watch_releases_past_its_share_then_only_after_more_growth(monkeypatch) -> None:
    count = [0]
    monkeypatch.setattr(programs, "mapping_count", lambda: count[0])
    monkeypatch.setattr(programs, "mapping_limit", lambda: 1000)
    watch = programs.MappingWatch(0.5)
    count[0] = 500
    assert not watch.due()
    count[0] = 501
    assert watch.due()
    count[0] = 600  # a release that freed little
    watch.released()
    assert not watch.due()  # not again at once
    count[0] = 851
    assert watch.due()  # 600 + a quarter of the limit
    count[0] = 100  # a release that freed much
    watch.released()
    count[0] = 501
    assert watch.due()  # the share of the limit again


def test_a_sweep_worker_near_the_limit_drops_its_strategies(monkeypatch) -> None:
    from ceiling.bench import run
    from ceiling.bench.suite import load_suite

    cell = load_suite(SMOKE).cells()[0]
    due = [False]
    monkeypatch.setattr(programs.MappingWatch, "due", lambda self: due[0])
    released: list[bool] = []
    monkeypatch.setattr(run, "release_compiled_programs", lambda: released.append(True))
    prepared = run.Prepared()
    stale = ("task", "checkpoint", "strategy", "options", 1)
    prepared.strategies[stale] = object()
    built = prepared.strategy(cell)
    assert not released and stale in prepared.strategies
    assert prepared.strategy(cell) is built  # kept while far from the limit
    due[0] = True
    rebuilt = prepared.strategy(cell)
    assert released == [True]
    assert rebuilt is not built and list(prepared.strategies) == [cell.group]
