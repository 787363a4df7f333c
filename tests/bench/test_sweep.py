"""Sweeps: a killed `ceiling bench` resumes to the same table as an uninterrupted sweep."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ceiling.bench.run import pending_cells
from ceiling.bench.store import Store
from ceiling.bench.suite import load_suite
from ceiling.cli import main

SMOKE = Path(__file__).resolve().parents[2] / "suites" / "smoke.yaml"


def _resume_suite(tmp_path: Path) -> Path:
    """The smoke suite with more cells (4 instances x 3 seeds), so a kill lands mid-way."""
    text = SMOKE.read_text().replace("instances: 2", "instances: 4").replace(
        "seeds: [0]", "seeds: [0, 1, 2]")
    path = tmp_path / "resume.yaml"
    path.write_text(text)
    return path


def _copy_rows(connection: sqlite3.Connection, where: str, prefix: str, **values: str) -> None:
    """Insert a copy of each stored row matching `where`, its config hash prefixed with
    `prefix` (a cell of its own) and the named columns set to `values`."""
    columns = [row[1] for row in connection.execute("PRAGMA table_info(results)")]
    literal = {name: "'" + value.replace("'", "''") + "'" for name, value in values.items()}
    picked = ", ".join(f"'{prefix}' || config_hash" if c == "config_hash" else
                       literal.get(c, c) for c in columns)
    connection.execute(f"INSERT INTO results SELECT {picked} FROM results WHERE {where}")


def _count(db: Path) -> int:
    try:
        connection = sqlite3.connect(db, timeout=0.1)
        try:
            return int(connection.execute("SELECT COUNT(*) FROM results").fetchone()[0])
        finally:
            connection.close()
    except sqlite3.Error:
        return 0


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for sweep processes sharing a persistent JAX compilation cache: the
    sweeps after the first skip most compiles (what a resumed sweep on a real machine can do
    too), which keeps these tests fast. It changes no result, only when code is compiled."""
    cache = tmp_path_factory.mktemp("jax-cache")
    return {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(cache),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}


def _bench(suite: Path, db: Path) -> list[str]:
    return [sys.executable, "-m", "ceiling.cli", "bench", str(suite), "--db", str(db), "--quiet"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, compile_cache) -> tuple[Path, list, Path]:
    """An uninterrupted sweep of the resume suite."""
    tmp = tmp_path_factory.mktemp("reference")
    suite_path, db = _resume_suite(tmp), tmp / "reference.sqlite"
    cells = load_suite(suite_path).cells()
    assert len(cells) == 4 + 4 * 3
    finished = subprocess.run(_bench(suite_path, db), env=compile_cache,
                              capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    with Store(db) as store:
        table = store.outcome_table()
        assert len(table) == len(cells) and store.failure_count() == 0
        # Each cell records how much of a core its process had (CPU seconds per wall second).
        assert all(row["cpu_share"] > 0 for row in store.rows())
        # ... how fast its core was (the speed probe, around the search) ...
        assert all(row["speed"] > 0 for row in store.rows())
        # ... and the options its checkpoint's recorded search defaults gave the strategy
        # (the shipped small-task checkpoints record none).
        assert all(row["search_defaults"] == {} for row in store.rows())
        return suite_path, table, db


@pytest.mark.slow
def test_killed_sweep_resumes_to_the_same_table(tmp_path: Path, reference,
                                                compile_cache) -> None:
    suite_path, expected, _ = reference
    db = tmp_path / "killed.sqlite"
    command = _bench(suite_path, db)
    process = subprocess.Popen(command, env=compile_cache, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _count(db) < 4 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stored = _count(db)
    assert 4 <= stored < len(expected), f"kill landed at {stored} of {len(expected)} cells"
    connection = sqlite3.connect(db)
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    connection.close()

    finished = subprocess.run(command, env=compile_cache, capture_output=True, text=True,
                              timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert f"{stored} already in" in finished.stdout
    with Store(db) as store:
        assert store.outcome_table() == expected
        assert all(row["verified"] == 1 for row in store.rows())


@pytest.mark.slow
def test_a_cell_is_the_search_identity_of_its_seed_task_and_instance(reference) -> None:
    """A stored cell is `solve` from `search_key(seed, task, instance)` on
    `instance_key(task, instance)`, so `ceiling solve --seed S --instance I` replays it."""
    from ceiling.bench.run import Prepared
    from ceiling.search import Budget, instance_key, make_strategy, search_key, solve
    from ceiling.tasks import make

    prepared = Prepared()
    for task in ("connector:con-5x5x3a", "smax:3m"):
        for instance in (0, 5, 70):  # 70 grows the block of keys built at once
            assert (np.asarray(prepared.search_key(1, task, instance))
                    == np.asarray(search_key(1, task, instance))).all()
    _, _, db = reference
    with Store(db) as store:
        row = next(r for r in store.rows(actions=True)
                   if r["strategy"] == "sampling" and r["seed"] == 2)
    checkpoint = prepared.checkpoint(load_suite(SMOKE).tasks[row["task"]][0].path)
    strategy = make_strategy("sampling", make(row["task"]), checkpoint.policy, row["width"])
    result = solve(strategy, checkpoint.params, instance_key(row["task"], row["instance"]),
                   Budget(rollouts=row["rollouts"]),
                   search_key(row["seed"], row["task"], row["instance"]))
    assert result.solution.total_return == row["total_return"]
    assert result.solution.actions.tolist() == row["actions"]
    assert result.rollouts == row["rollouts_done"]


def test_a_bad_suite_fails_before_the_store_is_touched(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMOKE.read_text().replace("- sampling", "- samplng"))
    assert main(["bench", str(bad), "--db", str(tmp_path / "r.sqlite")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:15: unknown strategy 'samplng'" in err
    assert not (tmp_path / "r.sqlite").exists()


def test_report_from_a_sweep(tmp_path: Path, reference) -> None:
    from ceiling.bench.report import write_report

    db = reference[2]
    out = tmp_path / "report"
    written = {p.name for p in write_report(db, out)[0]}
    assert {"index.html", "README.md", "iqm.png", "gain_over_zero_shot.png",
            "anytime_connector_con-5x5x3a.png"} <= written
    readme = (out / "README.md").read_text()
    assert "ceiling report" in readme and "Suite smoke" in readme
    # the commands that filled the store are listed once, at the top, not under every figure
    assert readme.count("- `ceiling bench ") == 1
    assert readme.index("- `ceiling bench ") < readme.index("## ")
    assert "| connector:con-5x5x3a | sampling (ippo, 64 rollouts, width 16) |" in readme
    assert main(["report", str(db), "--out", str(out)]) == 2  # no silent overwrite


@pytest.mark.slow
def test_rerun_runs_contended_or_unmeasured_cells_again_and_keeps_their_old_rows(
        tmp_path: Path, reference, compile_cache) -> None:
    suite_path, expected, reference_db = reference
    db = tmp_path / "busy.sqlite"
    shutil.copy(reference_db, db)
    connection = sqlite3.connect(db)
    with connection:
        # Two searching cells had half a core; one was stored before shares were measured;
        # the zero-shot (greedy) cells are never run again, contended or not. Every other cell
        # had a whole core (the reference sweep itself may have run on a busy machine).
        connection.execute("UPDATE results SET cpu_share = 1.0")
        searching = [key for (key,) in connection.execute(
            "SELECT config_hash FROM results WHERE strategy != 'greedy' ORDER BY config_hash")]
        connection.execute("UPDATE results SET cpu_share = 0.5 WHERE strategy = 'greedy'")
        busy, unmeasured = searching[:2], searching[2]
        connection.executemany("UPDATE results SET cpu_share = 0.5 WHERE config_hash = ?",
                               [(key,) for key in busy])
        connection.execute("UPDATE results SET cpu_share = NULL WHERE config_hash = ?",
                           (unmeasured,))
        before = dict(connection.execute("SELECT config_hash, created FROM results"))
    connection.close()

    def run(which: str) -> str:
        finished = subprocess.run(_bench(suite_path, db) + ["--rerun", which],
                                  env=compile_cache, capture_output=True, text=True,
                                  timeout=300)
        assert finished.returncode == 0, finished.stderr
        return finished.stdout

    assert "2 to run (2 of them again, replacing their stored rows: --rerun contended)" in run(
        "contended")
    with Store(db) as store:
        assert store.outcome_table() == expected  # the same searches, run again
        shares = store.cpu_shares()
        rows = {r["config_hash"]: r for r in store.rows()}
        replaced = store.connection.execute("SELECT config_hash, row FROM replaced").fetchall()
    assert sorted(key for key, _ in replaced) == sorted(busy)
    assert all(json.loads(row)["cpu_share"] == 0.5 for _, row in replaced)
    assert all(shares[key] is not None and shares[key] != 0.5 for key in busy)
    changed = {key for key, row in rows.items() if row["created"] != before[key]}
    assert changed == set(busy) and shares[unmeasured] is None
    assert "1 to run (1 of them again" in run("unmeasured")
    with Store(db) as store:
        assert store.replaced_count() == 3 and store.cpu_shares()[unmeasured] is not None
        assert store.outcome_table() == expected


@pytest.mark.slow
def test_rerun_before_a_time_runs_the_searching_cells_stored_earlier_again(
        tmp_path: Path, reference, compile_cache) -> None:
    suite_path, expected, reference_db = reference
    db = tmp_path / "unpinned.sqlite"
    shutil.copy(reference_db, db)
    connection = sqlite3.connect(db)
    with connection:
        # Three searching cells and every zero-shot one were stored before 10:00 UTC, the rest
        # at 10:00 exactly (not before it): only those three run again.
        connection.execute("UPDATE results SET created = '2020-01-01T10:00:00+00:00'")
        searching = [key for (key,) in connection.execute(
            "SELECT config_hash FROM results WHERE strategy != 'greedy' ORDER BY config_hash")]
        early = searching[:3]
        connection.execute("UPDATE results SET created = '2020-01-01T09:59:59+00:00' "
                           "WHERE strategy = 'greedy'")
        connection.executemany("UPDATE results SET created = '2020-01-01T08:00:00+00:00' "
                               "WHERE config_hash = ?", [(key,) for key in early])
    connection.close()
    # 11:00 in a zone one hour ahead of UTC is 10:00 UTC.
    finished = subprocess.run(_bench(suite_path, db) + ["--rerun",
                                                        "before=2020-01-01T11:00+01:00"],
                              env=compile_cache, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert ("3 to run (3 of them again, replacing their stored rows: --rerun "
            "before=2020-01-01T11:00+01:00)") in finished.stdout
    with Store(db) as store:
        assert store.outcome_table() == expected
        assert sorted(key for (key,) in store.connection.execute(
            "SELECT config_hash FROM replaced")) == sorted(early)
        times = store.stored_times()
    assert all(times[key] > datetime.datetime(2020, 1, 1, 10, tzinfo=datetime.UTC)
               for key in early)
    # A time given without a zone is UTC: 10:00 would select the same three, now stored later
    # (and never the zero-shot cells, stored at 09:59:59).
    dry = subprocess.run(_bench(suite_path, db) + ["--rerun", "before=2020-01-01T10:00",
                                                   "--dry-run"],
                         env=compile_cache, capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0 and "0 to run" in dry.stdout


@pytest.mark.parametrize(("kind", "message"), [
    ("before=yesterday", "--rerun before=yesterday: not an ISO 8601 time; give one such as "
                         "before=2026-12-06T04:00 (UTC)"),
    ("fast", "'fast' is not a kind of cell to run again; valid: before=TIME, contended, "
             "slow, superseded, unmeasured"),
])
def test_rerun_rejects_an_unknown_kind_or_a_time_that_is_not_iso_8601(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, message: str) -> None:
    db = tmp_path / "x.sqlite"
    with pytest.raises(SystemExit) as info:  # argparse refuses it before reading the suite
        main(["bench", str(tmp_path / "suite.yaml"), "--db", str(db), "--rerun", kind])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert not db.exists()


def test_rerun_slow_picks_the_searching_cells_below_nine_tenths_of_the_store_median_speed(
        tmp_path: Path) -> None:
    from ceiling.bench.run import cells_to_rerun

    timed = tmp_path / "timed.yaml"  # the resume suite under a time budget
    timed.write_text(_resume_suite(tmp_path).read_text().replace("rollouts: 64", "seconds: 1"))
    cells = load_suite(timed).cells()
    searching = [cell.key for cell in cells if cell.strategy != "greedy"]
    greedy = [cell.key for cell in cells if cell.strategy == "greedy"]
    assert len(searching) >= 3 and greedy
    assert all(cell.seconds == 1 for cell in cells if cell.strategy != "greedy")
    # The store's median probe is 100 (cells of other suites count too): one searching cell
    # ran at 0.8 of it, one at 0.95, one was stored before the probe; a zero-shot cell at 0.5
    # has no budget to lose and is never run again.
    speeds: dict[str, float | None] = {key: 100.0 for key in searching}
    speeds.update({searching[0]: 80.0, searching[1]: 95.0, searching[2]: None,
                   greedy[0]: 50.0, "other-suite-a": 100.0, "other-suite-b": 100.0})
    shares = {key: 1.0 for key in speeds}
    assert cells_to_rerun(cells, shares, ["slow"], speeds=speeds) == {searching[0]}
    assert cells_to_rerun(cells, shares, ["contended"], speeds=speeds) == set()
    with pytest.raises(ValueError, match="needs the store's speed probes"):
        cells_to_rerun(cells, shares, ["slow"])
    # Under a rollout budget the same slow cell searched what any machine would: not again.
    by_rollouts = load_suite(_resume_suite(tmp_path)).cells()
    slow_cell = next(cell for cell in by_rollouts if cell.strategy != "greedy")
    assert cells_to_rerun(by_rollouts, {slow_cell.key: 1.0}, ["slow"],
                          speeds={slow_cell.key: 10.0, "a": 100.0, "b": 100.0}) == set()


@pytest.mark.slow
def test_rerun_superseded_moves_an_earlier_checkpoints_rows_out_as_the_new_ones_land(
        tmp_path: Path, reference, compile_cache) -> None:
    suite_path, expected, reference_db = reference
    db = tmp_path / "retrained.sqlite"
    shutil.copy(reference_db, db)
    old_sha = "0" * 64
    connection = sqlite3.connect(db)
    with connection:
        # Instance 0's rows (its greedy cell and its sampling cell of each of 3 seeds) as if
        # searched by the checkpoint that shipped:ippo named before it was retrained: other
        # parameters, so other config hashes.
        connection.execute("UPDATE results SET checkpoint_sha256 = ?, "
                           "config_hash = 'old' || config_hash WHERE instance = 0", (old_sha,))
        old = {key for (key,) in connection.execute(
            "SELECT config_hash FROM results WHERE instance = 0")}
    connection.close()
    assert len(old) == 4

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        finished = subprocess.run(_bench(suite_path, db) + list(extra), env=compile_cache,
                                  capture_output=True, text=True, timeout=300)
        assert finished.returncode == 0, finished.stderr
        return finished

    # Without the flag the sweep says the old rows would be pooled with the new ones.
    dry = run("--dry-run")
    assert "12 already in" in dry.stdout and "4 to run" in dry.stdout
    assert ("warning: 4 of the suite's cells are stored for an earlier checkpoint under the "
            "same label (connector:con-5x5x3a shipped:ippo): the report pools") in dry.stderr
    done = run("--rerun", "superseded")
    assert "4 to run\n" in done.stdout
    assert ("--rerun superseded: 4 of the cells to run take the place of rows stored for an "
            "earlier checkpoint under the same label") in done.stdout
    assert "earlier checkpoint" not in done.stderr
    with Store(db) as store:
        assert store.outcome_table() == expected  # the new checkpoint's rows, and only those
        moved = store.connection.execute("SELECT config_hash, row FROM replaced").fetchall()
    assert {key for key, _ in moved} == old
    assert all(json.loads(row)["checkpoint_sha256"] == old_sha for _, row in moved)
    again = run("--rerun", "superseded")
    assert "0 to run" in again.stdout and "--rerun superseded:" not in again.stdout


def test_rerun_superseded_retires_old_rows_whose_cells_the_new_checkpoint_has_stored(
        tmp_path: Path, reference) -> None:
    """A store that already pools two checkpoints' rows (the new one's run in without the
    flag): the flag moves the old rows out without running anything."""
    suite_path, expected, reference_db = reference
    db = tmp_path / "pooled.sqlite"
    shutil.copy(reference_db, db)
    connection = sqlite3.connect(db)
    with connection:  # a copy of every instance-1 row, as the earlier checkpoint's
        _copy_rows(connection, "instance = 1", "old", checkpoint_sha256="0" * 64)
    connection.close()
    finished = subprocess.run(_bench(suite_path, db) + ["--rerun", "superseded"],
                              capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "0 to run" in finished.stdout
    assert "moved 4 rows of an earlier checkpoint" in finished.stdout
    with Store(db) as store:
        assert store.outcome_table() == expected and store.replaced_count() == 4


def test_rerun_superseded_also_retires_old_rows_under_options_the_suite_no_longer_has(
        tmp_path: Path, reference) -> None:
    """The retrained checkpoint records another search default, so its cells' options differ
    from the earlier checkpoint's rows: those rows match no cell, yet are superseded; rows of
    the current checkpoint under other options (another suite's, say) are left alone."""
    suite_path, expected, reference_db = reference
    db = tmp_path / "defaults.sqlite"
    shutil.copy(reference_db, db)
    connection = sqlite3.connect(db)
    with connection:
        # instance 1's sampling rows (3 seeds) under other options: as the earlier
        # checkpoint's, and as the current checkpoint's (which must stay)
        current = connection.execute("SELECT checkpoint_sha256 FROM results LIMIT 1").fetchone()[0]
        for prefix, sha in (("old", "0" * 64), ("other", current)):
            _copy_rows(connection, "instance = 1 AND strategy = 'sampling' "
                       "AND config_hash NOT LIKE 'old%'", prefix, checkpoint_sha256=sha,
                       options='{"temperature": 0.5}')
    connection.close()
    finished = subprocess.run(_bench(suite_path, db) + ["--rerun", "superseded"],
                              capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "0 to run" in finished.stdout
    assert "moved 3 rows of an earlier checkpoint" in finished.stdout
    with Store(db) as store:
        assert store.replaced_count() == 3
        moved = store.connection.execute("SELECT config_hash FROM replaced").fetchall()
        kept = store.connection.execute(
            "SELECT COUNT(*) FROM results WHERE config_hash LIKE 'other%'").fetchone()[0]
    assert all(key.startswith("old") for (key,) in moved) and kept == 3


@pytest.mark.slow
def test_ray_executor_stores_the_same_rows_as_the_local_one(
    tmp_path: Path, reference, compile_cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("ray")
    for name in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"):
        monkeypatch.setenv(name, compile_cache[name])  # inherited by the local Ray workers
    from ceiling.bench.ray_executor import run_ray

    suite = load_suite(SMOKE)
    with Store(tmp_path / "ray.sqlite") as store:
        cells, _ = pending_cells(suite, store)
        stats = run_ray(suite, store, cells, max_retries=1)
        assert (stats.done, stats.failed) == (len(cells), 0)
        ray_rows = store.outcome_table()
        assert all(row["cpu_share"] > 0 for row in store.rows())  # measured on the workers
        assert all(row["speed"] > 0 for row in store.rows())
    local = {row[0]: row for row in reference[1]}
    assert len(ray_rows) == len(cells) == 4
    # Same cells as the local sweep (smoke's cells are a subset of the resume suite's).
    assert ray_rows == [local[row[0]] for row in ray_rows]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_ray_address_joins_a_running_cluster(tmp_path: Path, reference, compile_cache) -> None:
    """`--ray-address` against a head started by `ray start` (a one-machine cluster), as a
    user on a real cluster would; same rows as the local sweep. HOME is a fresh directory, so
    no token file from another Ray run turns the head's authentication on."""
    pytest.importorskip("ray")
    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.exists():
        pytest.skip(f"no `ray` command next to {sys.executable}")
    env = {**compile_cache, "HOME": str(tmp_path), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_AUTH_MODE", None)
    port = _free_port()
    started = subprocess.run(
        [str(ray_cli), "start", "--head", f"--port={port}", "--num-cpus=1",
         "--include-dashboard=false", "--disable-usage-stats"],
        env=env, capture_output=True, text=True, timeout=120)
    try:
        assert started.returncode == 0, started.stderr
        db = tmp_path / "cluster.sqlite"
        # A hang guard, not a time limit: the cluster's workers run at nice 15, so beside other
        # work on the machine (a training run) these 4 cells took over 300 s once.
        finished = subprocess.run(
            [*_bench(SMOKE, db)[:-1], "--ray-address", f"127.0.0.1:{port}", "--quiet"],
            env=env, capture_output=True, text=True, timeout=900)
        assert finished.returncode == 0, finished.stderr
        assert "4 cells stored, 0 failed" in finished.stdout
    finally:
        subprocess.run([str(ray_cli), "stop", "--force"], env=env, capture_output=True,
                       timeout=120)
    local = {row[0]: row for row in reference[1]}
    with Store(db) as store:
        rows = store.outcome_table()
        (sweep,) = store.sweeps()
    assert len(rows) == 4 and rows == [local[row[0]] for row in rows]
    assert sweep["command"].endswith(f"--ray-address 127.0.0.1:{port}")


def test_ray_address_with_nothing_listening_fails_fast_and_leaves_no_file(
        tmp_path: Path, capsys) -> None:
    pytest.importorskip("ray")
    port = _free_port()  # bound and released: nothing listens there now
    db = tmp_path / "r.sqlite"
    assert main(["bench", str(SMOKE), "--db", str(db), "--ray-address", f"127.0.0.1:{port}",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"nothing answers at 127.0.0.1:{port}" in err and "ray start --head" in err
    assert list(tmp_path.iterdir()) == []  # the join is refused before the store is created


def test_every_suite_problem_is_found_in_one_round_and_no_file_is_created(
        tmp_path: Path, capsys) -> None:
    """A bad option value (checked from the text), an option that does not hold at the suite's
    width (checked once the strategy is built) and an unknown strategy: one error, all three
    with their lines, and no database file."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMOKE.read_text().replace(
        "- sampling", "- {name: sampling, options: {temperature: -1}}\n"
                      "  - {name: sgbs, options: {beam_width: 99}}\n  - samplng"))
    db = tmp_path / "r.sqlite"
    assert main(["bench", str(bad), "--db", str(db), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "has 3 problem(s)" in err
    assert "bad.yaml:15: sampling option temperature must be a finite number > 0, got -1" in err
    assert "bad.yaml:16: sgbs on connector:con-5x5x3a: sgbs option beam_width must be" in err
    assert "bad.yaml:17: unknown strategy 'samplng'" in err
    assert not db.exists()


def test_a_damaged_store_is_an_error_not_zero_to_run(tmp_path: Path, capsys) -> None:
    from .test_store import _filled, corrupt_results_page

    db = _filled(tmp_path / "r.sqlite")
    corrupt_results_page(db)
    for argv in (["bench", str(SMOKE), "--db", str(db), "--quiet"],
                 ["bench", str(SMOKE), "--db", str(db), "--dry-run"],
                 ["report", str(db), "--out", str(tmp_path / "report")]):
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert f"ceiling: error: results database {db} is damaged" in captured.err
        assert "to run" not in captured.out and "Traceback" not in captured.err
    assert not (tmp_path / "report").exists()


def test_an_unwritable_db_path_is_refused_before_validation(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["bench", str(SMOKE), "--db", str(blocker / "r.sqlite"), "--quiet"]) == 2
    assert ("cannot write --db " + str(blocker / "r.sqlite") + f": {blocker} is a file, not a "
            "directory") in capsys.readouterr().err
    assert main(["bench", str(SMOKE), "--db", str(tmp_path), "--quiet"]) == 2
    assert "is a directory; give a file path" in capsys.readouterr().err


def test_an_inexact_rollout_budget_fails_a_dry_run(tmp_path: Path, capsys) -> None:
    """SGBS at width 10 runs 8 rollouts a batch, so 60 rollouts cannot be met: found by the
    preflight that a dry run also does, with the budget's line, and nothing is written."""
    bad = tmp_path / "fit.yaml"
    bad.write_text(SMOKE.read_text().replace("widths: [16]", "widths: [10]")
                   .replace("rollouts: 64", "rollouts: 60").replace("- sampling", "- sgbs"))
    db = tmp_path / "r.sqlite"
    assert main(["bench", str(bad), "--db", str(db), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "fit.yaml:9: sgbs on connector:con-5x5x3a: a rollout budget of 60 cannot be met" in err
    assert not db.exists()
