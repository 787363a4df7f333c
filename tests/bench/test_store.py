"""The results store: append-only rows, and a newer schema refused without touching it."""

from __future__ import annotations

import sqlite3

import pytest

from ceiling.bench.store import SCHEMA_VERSION, Row, Store
from ceiling.errors import CeilingError


def _row(key: str, value: float) -> Row:
    return Row(config_hash=key, suite="t", task="connector:con-5x5x3a", instance=0,
               checkpoint="shipped:ippo", algorithm="ippo", checkpoint_sha256="x",
               strategy="sampling", options="{}", seconds=None, rollouts=64, width=16, seed=0,
               total_return=value, won=None, verified=True, verified_return=value, aborted=None,
               trace="[[0.1, 16, 1.0]]", compile_seconds=0.5, search_seconds=0.1,
               rollouts_done=64)


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
