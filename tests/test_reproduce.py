"""One search identity: `ceiling solve` reproduces stored `ceiling bench` cells exactly.

A bench cell searches instance `instance_key(task, instance)` from `search_key(seed, task,
instance)`; `ceiling solve --instance I --seed S` derives the same two keys, so under a rollout
budget (deterministic) it must return the stored return and the stored actions bit for bit.
Both commands run here as a user runs them, through `ceiling.cli.main`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jax
import pytest

from ceiling.bench.store import Store
from ceiling.bench.suite import load_suite
from ceiling.cli import main

SMOKE = Path(__file__).resolve().parents[1] / "suites" / "smoke.yaml"
TASK = "connector:con-5x5x3a"


@pytest.fixture
def compile_cache(tmp_path: Path) -> Iterator[None]:
    """A persistent JAX compilation cache for this test only: `ceiling solve` then loads the
    programs the sweep compiled instead of compiling them again (about 15 s of the test on two
    cores). It changes when code is compiled, never a result. `reset_cache` (private, but the
    one way) makes a process that already compiled without a cache pick the setting up."""
    from jax._src import compilation_cache

    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
    saved = {name: getattr(jax.config, name) for name in names}
    jax.config.update(names[0], str(tmp_path / "jax-cache"))
    jax.config.update(names[1], 0.0)
    compilation_cache.reset_cache()
    try:
        yield
    finally:
        for name, value in saved.items():
            jax.config.update(name, value)
        compilation_cache.reset_cache()


@pytest.mark.slow
def test_ceiling_solve_returns_the_stored_return_and_actions_of_bench_cells(
    tmp_path: Path, compile_cache: None,
) -> None:
    db = tmp_path / "smoke.sqlite"
    assert main(["bench", str(SMOKE), "--db", str(db), "--quiet"]) == 0
    with Store(db) as store:
        rows = store.rows(actions=True)
    assert len(rows) == len(load_suite(SMOKE).cells()) == 4
    assert all(r["actions"] for r in rows)

    # A greedy cell and sampling cells on both instances: at least one greedy and two
    # sampling cells on different instances.
    greedy = [r for r in rows if r["strategy"] == "greedy"]
    sampling = [r for r in rows if r["strategy"] == "sampling"]
    chosen = [min(greedy, key=lambda r: r["instance"]),
              *sorted(sampling, key=lambda r: r["instance"])]
    assert len({r["instance"] for r in chosen if r["strategy"] == "sampling"}) == 2
    checkpoint = load_suite(SMOKE).tasks[TASK][0].path  # the shipped IPPO directory

    for row in chosen:
        assert row["task"] == TASK and row["options"] == {} and row["seconds"] is None
        out = tmp_path / f"{row['strategy']}-{row['instance']}-{row['seed']}.json"
        assert main(["solve", "--checkpoint", checkpoint, "--task", TASK,
                     "--instance", str(row["instance"]), "--seed", str(row["seed"]),
                     "--strategy", row["strategy"], "--rollouts", str(row["rollouts"]),
                     "--width", str(row["width"]), "--out", str(out)]) == 0
        solution = json.loads(out.read_text())["solution"]
        where = f"{row['strategy']} instance {row['instance']} seed {row['seed']}"
        assert solution["return"] == row["total_return"], where
        assert solution["actions"] == row["actions"], where
        assert solution["verified"] == row["verified_return"], where
