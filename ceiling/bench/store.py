"""The results store: one SQLite row per benchmark cell, written one transaction at a time.

SQLite because a sweep must survive being killed: each finished cell is inserted in its own
transaction (commit or nothing), so a killed sweep loses at most the cells in flight and a
rerun finds every stored cell by its config hash and skips it. The store is append-only. Its
schema version lives in the `meta` table; a store written by a newer ceiling is refused with
a clear error rather than migrated (a silent migration could drop rows nobody can rerun).

Tables: `results` (one row per cell), `baselines` (the uniform random policy's return per task
and instance: the minimum of the per-task normalisation), `failures` (cells that raised; not
results, so a rerun retries them) and `sweeps` (which suite and command wrote to the store).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ceiling import __version__
from ceiling.errors import CeilingError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    config_hash TEXT PRIMARY KEY,
    suite TEXT NOT NULL,
    task TEXT NOT NULL,
    instance INTEGER NOT NULL,
    checkpoint TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    checkpoint_sha256 TEXT NOT NULL,
    strategy TEXT NOT NULL,
    options TEXT NOT NULL,
    seconds REAL,
    rollouts INTEGER,
    width INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    total_return REAL NOT NULL,
    won INTEGER,
    verified INTEGER NOT NULL,
    verified_return REAL NOT NULL,
    aborted TEXT,
    trace TEXT NOT NULL,
    compile_seconds REAL NOT NULL,
    search_seconds REAL NOT NULL,
    rollouts_done INTEGER NOT NULL,
    ceiling_version TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS baselines (
    task TEXT NOT NULL, instance INTEGER NOT NULL, kind TEXT NOT NULL, total_return REAL NOT NULL,
    PRIMARY KEY (task, instance, kind)
);
CREATE TABLE IF NOT EXISTS failures (
    config_hash TEXT NOT NULL, task TEXT NOT NULL, strategy TEXT NOT NULL, error TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sweeps (
    suite TEXT NOT NULL, suite_path TEXT NOT NULL, command TEXT NOT NULL, executor TEXT NOT NULL,
    cells INTEGER NOT NULL, created TEXT NOT NULL
);
"""

# Columns that identify a cell and its outcome; timings, version and timestamps are left out
# so that two sweeps of the same suite compare equal.
OUTCOME_COLUMNS = ("config_hash", "task", "instance", "checkpoint", "strategy", "options",
                   "seconds", "rollouts", "width", "seed", "total_return", "won", "verified",
                   "verified_return", "rollouts_done")


@dataclasses.dataclass(frozen=True)
class Row:
    """A finished cell, as the executor produces it (workers build these; the driver stores)."""

    config_hash: str
    suite: str
    task: str
    instance: int
    checkpoint: str
    algorithm: str
    checkpoint_sha256: str
    strategy: str
    options: str
    seconds: float | None
    rollouts: int | None
    width: int
    seed: int
    total_return: float
    won: bool | None
    verified: bool
    verified_return: float
    aborted: str | None
    trace: str  # JSON [[seconds, rollouts, best_return], ...]
    compile_seconds: float
    search_seconds: float
    rollouts_done: int


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class Store:
    """An open results database. Use as a context manager or call `close()`."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise CeilingError(f"results database {self.path} does not exist")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.connection = sqlite3.connect(self.path, timeout=30.0)
            self._check_version()
            # WAL with synchronous=NORMAL: a commit survives the process being killed (what a
            # resumable sweep needs) without an fsync per cell; only power loss can drop the
            # last commits, never corrupt the file.
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError as err:
            raise CeilingError(f"{self.path} is not a ceiling results database: {err}") from None

    def _check_version(self) -> None:
        tables = {name for (name,) in self.connection.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" in tables:
            found = self.connection.execute(
                "SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(found[0]) if found else None
            if version is None or version > SCHEMA_VERSION:
                raise CeilingError(
                    f"results database {self.path} has schema version {version}, newer than "
                    f"this ceiling ({__version__}) understands ({SCHEMA_VERSION}); upgrade "
                    "ceiling to read it - it is left untouched")
            return
        if tables:
            raise CeilingError(f"{self.path} is an SQLite database but not a ceiling results "
                               f"database (tables: {', '.join(sorted(tables))})")
        # One script, one transaction: a store either has its whole schema and version or
        # nothing at all.
        self.connection.executescript(
            "BEGIN;" + _SCHEMA
            + f"INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');"
            + f"INSERT INTO meta VALUES ('created_by', '{__version__}');COMMIT;")

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes: each one transaction ------------------------------------------------------
    def add(self, row: Row) -> None:
        data = dataclasses.asdict(row)
        data["won"] = None if row.won is None else int(row.won)
        data["verified"] = int(row.verified)
        data["ceiling_version"] = __version__
        data["created"] = _now()
        columns = ", ".join(data)
        marks = ", ".join("?" for _ in data)
        with self.connection:
            # OR IGNORE: two drivers racing on one cell keep the first row; rows never change.
            self.connection.execute(f"INSERT OR IGNORE INTO results ({columns}) VALUES ({marks})",
                                    tuple(data.values()))

    def add_failure(self, config_hash: str, task: str, strategy: str, error: str) -> None:
        with self.connection:
            self.connection.execute("INSERT INTO failures VALUES (?, ?, ?, ?, ?)",
                                    (config_hash, task, strategy, error, _now()))

    def add_baselines(self, task: str, kind: str, returns: Iterable[float]) -> None:
        with self.connection:
            self.connection.executemany(
                "INSERT OR REPLACE INTO baselines VALUES (?, ?, ?, ?)",
                [(task, i, kind, float(r)) for i, r in enumerate(returns)])

    def add_sweep(self, suite: str, suite_path: str, command: str, executor: str,
                  cells: int) -> None:
        with self.connection:
            self.connection.execute("INSERT INTO sweeps VALUES (?, ?, ?, ?, ?, ?)",
                                    (suite, suite_path, command, executor, cells, _now()))

    # -- reads -------------------------------------------------------------------------------
    def stored_keys(self) -> set[str]:
        return {key for (key,) in self.connection.execute("SELECT config_hash FROM results")}

    def baselines(self, kind: str = "random") -> dict[str, dict[int, float]]:
        table: dict[str, dict[int, float]] = {}
        for task, instance, value in self.connection.execute(
                "SELECT task, instance, total_return FROM baselines WHERE kind=?", (kind,)):
            table.setdefault(task, {})[int(instance)] = float(value)
        return table

    def rows(self) -> list[dict[str, Any]]:
        cursor = self.connection.execute("SELECT * FROM results ORDER BY config_hash")
        names = [d[0] for d in cursor.description]
        rows = []
        for values in cursor:
            row = dict(zip(names, values, strict=True))
            row["trace"] = json.loads(row["trace"])
            row["options"] = json.loads(row["options"])
            rows.append(row)
        return rows

    def outcome_table(self) -> list[tuple[Any, ...]]:
        """Identity and outcome of every row, sorted: equal for two equivalent sweeps."""
        columns = ", ".join(OUTCOME_COLUMNS)
        return list(self.connection.execute(
            f"SELECT {columns} FROM results ORDER BY config_hash"))

    def sweeps(self) -> list[dict[str, Any]]:
        cursor = self.connection.execute("SELECT * FROM sweeps ORDER BY created")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor]

    def failure_count(self) -> int:
        return int(self.connection.execute("SELECT COUNT(*) FROM failures").fetchone()[0])
