"""The results store: append-only rows, a newer schema refused without touching it, an older
one upgraded additively."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from ceiling.bench.store import SCHEMA_VERSION, Row, Store
from ceiling.errors import CeilingError


def _row(key: str, value: float, actions: str | None = None, strategy: str = "sampling",
         instance: int = 0) -> Row:
    return Row(config_hash=key, suite="t", task="connector:con-5x5x3a", instance=instance,
               checkpoint="shipped:ippo", algorithm="ippo", checkpoint_sha256="x",
               strategy=strategy, options="{}", seconds=None, rollouts=64, width=16, seed=0,
               total_return=value, won=None, verified=True, verified_return=value, aborted=None,
               trace="[[0.1, 16, 1.0]]", compile_seconds=0.5, search_seconds=0.1,
               rollouts_done=64, actions=actions)


# The schema of version 1, as ceiling wrote it before `results.actions`: frozen here so the
# upgrade is tested against what old stores really hold.
_SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE results (
    config_hash TEXT PRIMARY KEY, suite TEXT NOT NULL, task TEXT NOT NULL,
    instance INTEGER NOT NULL, checkpoint TEXT NOT NULL, algorithm TEXT NOT NULL,
    checkpoint_sha256 TEXT NOT NULL, strategy TEXT NOT NULL, options TEXT NOT NULL,
    seconds REAL, rollouts INTEGER, width INTEGER NOT NULL, seed INTEGER NOT NULL,
    total_return REAL NOT NULL, won INTEGER, verified INTEGER NOT NULL,
    verified_return REAL NOT NULL, aborted TEXT, trace TEXT NOT NULL,
    compile_seconds REAL NOT NULL, search_seconds REAL NOT NULL, rollouts_done INTEGER NOT NULL,
    ceiling_version TEXT NOT NULL, created TEXT NOT NULL
);
CREATE TABLE baselines (
    task TEXT NOT NULL, instance INTEGER NOT NULL, kind TEXT NOT NULL, total_return REAL NOT NULL,
    PRIMARY KEY (task, instance, kind)
);
CREATE TABLE failures (
    config_hash TEXT NOT NULL, task TEXT NOT NULL, strategy TEXT NOT NULL, error TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE sweeps (
    suite TEXT NOT NULL, suite_path TEXT NOT NULL, command TEXT NOT NULL, executor TEXT NOT NULL,
    cells INTEGER NOT NULL, created TEXT NOT NULL
);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO meta VALUES ('created_by', '0.0.0');
"""


def _v1_store(path: Path) -> None:
    """A version-1 store holding greedy and sampling rows on two instances, and baselines."""
    connection = sqlite3.connect(path)
    connection.executescript(_SCHEMA_V1)
    with connection:
        for i, (strategy, instance, value) in enumerate(
                [("greedy", 0, 0.5), ("greedy", 1, 0.25), ("sampling", 0, 1.0),
                 ("sampling", 1, 0.75)]):
            data = dataclasses.asdict(_row(f"old{i}", value, strategy=strategy,
                                           instance=instance))
            del data["actions"], data["cpu_share"], data["search_defaults"], data["speed"]
            data.update(won=None, verified=1, ceiling_version="0.0.0", created="2025-01-01")
            connection.execute(f"INSERT INTO results ({', '.join(data)}) VALUES "
                               f"({', '.join('?' for _ in data)})", tuple(data.values()))
        connection.executemany("INSERT INTO baselines VALUES (?, ?, 'random', ?)",
                               [("connector:con-5x5x3a", 0, 0.0), ("connector:con-5x5x3a", 1, 0.0)])
        connection.execute("INSERT INTO sweeps VALUES ('t', 't.yaml', 'ceiling bench t.yaml', "
                           "'local', 4, '2025-01-01')")
    connection.close()


def _schema(path: Path) -> tuple[str, list[str]]:
    connection = sqlite3.connect(path)
    try:
        version = connection.execute(
            "SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
        columns = [row[1] for row in connection.execute("PRAGMA table_info(results)")]
        return version, columns
    finally:
        connection.close()


def test_rows_round_trip_and_are_never_overwritten(tmp_path) -> None:
    with Store(tmp_path / "r.sqlite") as store:
        store.add(_row("a", 1.0))
        store.add(_row("a", 9.0))
        store.add(_row("b", 2.0))
    with Store(tmp_path / "r.sqlite", create=False) as store:
        rows = store.rows()
        assert [(r["config_hash"], r["total_return"]) for r in rows] == [("a", 1.0), ("b", 2.0)]
        assert rows[0]["trace"] == [[0.1, 16, 1.0]] and rows[0]["won"] is None
        assert store.stored_keys() == {"a", "b"}
        assert "actions" not in rows[0]  # left out unless asked for


def test_a_replaced_row_moves_to_the_replaced_table_in_one_step(tmp_path: Path) -> None:
    with Store(tmp_path / "r.sqlite") as store:
        store.add(dataclasses.replace(_row("a", 1.0), cpu_share=0.4))
        store.add(_row("b", 2.0))
        store.add(dataclasses.replace(_row("a", 5.0), cpu_share=0.99), replace=True)
        store.add(_row("c", 3.0), replace=True)  # nothing stored to replace: a plain add
        rows = {r["config_hash"]: r for r in store.rows()}
        assert {k: (r["total_return"], r["cpu_share"]) for k, r in rows.items()} == {
            "a": (5.0, 0.99), "b": (2.0, None), "c": (3.0, None)}
        assert store.replaced_count() == 1
        ((key, old, when),) = store.connection.execute("SELECT * FROM replaced").fetchall()
        old = json.loads(old)
        assert key == "a" and (old["total_return"], old["cpu_share"]) == (1.0, 0.4)
        assert when == rows["a"]["created"]
        assert store.cpu_shares() == {"a": 0.99, "b": None, "c": None}


def test_actions_round_trip(tmp_path: Path) -> None:
    with Store(tmp_path / "r.sqlite") as store:
        store.add(_row("a", 1.0, actions="[[1,2,0],[4,0,3]]"))
        store.add(_row("b", 2.0))
        rows = store.rows(actions=True)
        assert [r["actions"] for r in rows] == [[[1, 2, 0], [4, 0, 3]], None]
        assert store.outcome_table()[0][-1] == "[[1,2,0],[4,0,3]]"


def test_a_version_1_store_is_read_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite"
    _v1_store(path)
    with Store(path, create=False) as store:
        assert store.version == 1
        rows = store.rows(actions=True)
        assert len(rows) == 4 and all(r["actions"] is None for r in rows)
        assert all(row[-1] is None for row in store.outcome_table())
        with pytest.raises(CeilingError, match="opened for reading"):
            store.add(_row("new", 1.0))
    version, columns = _schema(path)
    assert version == "1" and "actions" not in columns  # reading changes no schema


def test_a_version_1_store_is_upgraded_in_place_for_writing(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite"
    _v1_store(path)
    connection = sqlite3.connect(path)
    before = connection.execute("SELECT * FROM results ORDER BY config_hash").fetchall()
    connection.close()
    with Store(path) as store:
        assert store.version == SCHEMA_VERSION == 6
        store.add(dataclasses.replace(_row("new", 3.0, actions="[[0,1,2]]"), cpu_share=0.97,
                                      search_defaults='{"temperature": 0.5}', speed=1234.5))
        assert store.replaced_count() == 0  # the table of replaced rows exists, empty
        new = next(r for r in store.rows() if r["config_hash"] == "new")
        assert new["search_defaults"] == {"temperature": 0.5}  # decoded, as options are
    version, columns = _schema(path)
    assert version == "6" and columns[-4:] == ["actions", "cpu_share", "search_defaults",
                                               "speed"]
    connection = sqlite3.connect(path)
    after = connection.execute("SELECT * FROM results WHERE config_hash != 'new' "
                               "ORDER BY config_hash").fetchall()
    connection.close()
    # Every old row kept, its actions, CPU share, search defaults and speed NULL (not
    # recorded).
    assert after == [(*row, None, None, None, None) for row in before]
    with Store(path) as store:  # opening it again changes nothing
        rows = {r["config_hash"]: r for r in store.rows(actions=True)}
        assert rows["new"]["actions"] == [[0, 1, 2]] and rows["old0"]["actions"] is None
        assert rows["new"]["cpu_share"] == 0.97 and rows["old0"]["cpu_share"] is None
        assert rows["new"]["speed"] == 1234.5 and rows["old0"]["speed"] is None
        assert store.speeds() == {"new": 1234.5, **{f"old{i}": None for i in range(4)}}
        assert len(rows) == 5


def test_report_reads_an_upgraded_version_1_store(tmp_path: Path) -> None:
    from ceiling.bench.report import write_report

    path = tmp_path / "v1.sqlite"
    _v1_store(path)
    written = {p.name for p in write_report(path, tmp_path / "old-report")[0]}  # read as v1
    assert {"index.html", "README.md"} <= written
    assert _schema(path)[0] == "1"
    with Store(path) as store:
        store.add(_row("new", 3.0, actions="[[0,1,2]]", instance=1))
    assert "README.md" in {p.name for p in write_report(path, tmp_path / "report")[0]}


def test_a_newer_schema_is_refused_and_left_untouched(tmp_path) -> None:
    path = tmp_path / "r.sqlite"
    with Store(path) as store:
        store.add(_row("a", 1.0))
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("UPDATE meta SET value=? WHERE key='schema_version'",
                           (str(SCHEMA_VERSION + 1),))
    connection.close()
    with pytest.raises(CeilingError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        Store(path)
    connection = sqlite3.connect(path)
    assert connection.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 1
    connection.close()


def test_a_foreign_database_is_refused(tmp_path) -> None:
    path = tmp_path / "other.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE people (name TEXT)")
    connection.commit()
    connection.close()
    with pytest.raises(CeilingError, match="not a ceiling results database"):
        Store(path)


def corrupt_results_page(path: Path) -> None:
    """Overwrite the results table's root page with garbage, leaving every other page (the
    schema on page 1 included) intact: the store still opens as SQLite."""
    connection = sqlite3.connect(path)
    root = connection.execute(
        "SELECT rootpage FROM sqlite_master WHERE name='results'").fetchone()[0]
    page = connection.execute("PRAGMA page_size").fetchone()[0]
    connection.close()
    data = bytearray(path.read_bytes())
    data[(root - 1) * page: root * page] = b"\x5a" * page
    path.write_bytes(bytes(data))


def _filled(path: Path, rows: int = 40) -> Path:
    with Store(path) as store:
        for i in range(rows):
            store.add(_row(f"k{i}", float(i), actions="[[1, 2, 3]]", instance=i))
    return path


@pytest.mark.parametrize("integrity", ["quick", "full"])
def test_a_damaged_page_is_found_on_opening_with_what_to_do(tmp_path: Path,
                                                             integrity: str) -> None:
    path = _filled(tmp_path / "r.sqlite")
    corrupt_results_page(path)
    for create in (False, True):
        with pytest.raises(CeilingError) as caught:
            Store(path, create=create, integrity=integrity)
        message = str(caught.value)
        assert f"results database {path} is damaged" in message
        assert "Move it aside" in message and ".recover" in message


def test_an_intact_store_passes_the_full_check(tmp_path: Path) -> None:
    path = _filled(tmp_path / "r.sqlite", rows=3)
    with Store(path, create=False, integrity="full") as store:
        assert len(store.rows()) == 3
    with pytest.raises(CeilingError, match="unknown integrity check 'deep'; valid: quick, full"):
        Store(path, integrity="deep")


def test_rows_that_do_not_decode_are_left_out_and_named(tmp_path: Path) -> None:
    path = _filled(tmp_path / "r.sqlite", rows=4)
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("UPDATE results SET trace='not json' WHERE config_hash='k0'")
        connection.execute("UPDATE results SET total_return='high' WHERE config_hash='k1'")
        connection.execute("UPDATE results SET actions='[[1,' WHERE config_hash='k2'")
        connection.execute("UPDATE baselines SET total_return='x'")
        connection.execute("INSERT INTO baselines VALUES ('connector:con-5x5x3a', 0, 'random', "
                           "'zero')")
    connection.close()
    with Store(path, create=False) as store:
        assert [row["config_hash"] for row in store.rows()] == ["k2", "k3"]  # actions unread
        assert [row["config_hash"] for row in store.rows(actions=True)] == ["k3"]
        assert store.baselines() == {}
        problems = store.problems
    assert any(p.startswith("cell k0 (connector:con-5x5x3a ippo sampling 64 rollouts width 16 "
                            "instance 0 seed 0): trace does not decode") for p in problems)
    assert any("cell k1" in p and "total_return is 'high', not a number" in p for p in problems)
    assert any("cell k2" in p and "actions does not decode" in p for p in problems)
    assert any("random baseline of connector:con-5x5x3a instance 0" in p for p in problems)


def test_a_store_path_that_cannot_be_created_says_so(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CeilingError, match="cannot create results database .*file/r.sqlite"):
        Store(blocker / "r.sqlite")
    with pytest.raises(CeilingError, match="is a directory; give a file path"):
        Store(tmp_path)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not sqlite at all" * 200)
    with pytest.raises(CeilingError, match="is not a ceiling results database"):
        Store(garbage)
