"""The results store: one SQLite row per benchmark cell, written one transaction at a time.

SQLite because a sweep must survive being killed: each finished cell is inserted in its own
transaction (commit or nothing), so a killed sweep loses at most the cells in flight and a
rerun finds every stored cell by its config hash and skips it. The store is append-only. Its
schema version lives in the `meta` table. A store written by a newer ceiling is refused with a
clear error and left untouched (a migration backwards could drop rows nobody can rerun). An
older store gets only additive upgrades, in place, when it is opened for writing (`Store(path)`,
as `ceiling bench` does), in one transaction: a column is added and the version bumped, no row
is changed or dropped. Opened for reading (`create=False`, as `ceiling report` does), an older
store is read as it is. The versions:

1. the first schema;
2. `results.actions`: the verified solution's joint actions, JSON `[[a_1, ..., a_A] per step]`,
   so `ceiling solve` can be checked against a stored cell action by action. Rows from a
   version-1 store keep NULL there.

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

SCHEMA_VERSION = 2

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
    created TEXT NOT NULL,
    actions TEXT
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

# Additive upgrades: the statements that bring a store of version V - 1 to version V.
_UPGRADES: dict[int, tuple[str, ...]] = {
    2: ("ALTER TABLE results ADD COLUMN actions TEXT",),
}

# Columns that identify a cell and its outcome; timings, version and timestamps are left out
# so that two sweeps of the same suite compare equal.
OUTCOME_COLUMNS = ("config_hash", "task", "instance", "checkpoint", "strategy", "options",
                   "seconds", "rollouts", "width", "seed", "total_return", "won", "verified",
                   "verified_return", "rollouts_done", "actions")

# Columns `rows()` leaves out unless asked: large, and read by no statistic or figure.
_HEAVY_COLUMNS = ("actions",)


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
    actions: str | None = None  # JSON [[a_1, ..., a_A] per step]: the verified solution


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class Store:
    """An open results database. Use as a context manager or call `close()`.

    `create=True` (the default) opens for writing: a missing store is created and an older one
    upgraded. `create=False` opens an existing store for reading, schema as it is.
    """

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise CeilingError(f"results database {self.path} does not exist")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.connection = sqlite3.connect(self.path, timeout=30.0)
            self.version = self._check_version(upgrade=create)
            self.columns = self._columns()
            # WAL with synchronous=NORMAL: a commit survives the process being killed (what a
            # resumable sweep needs) without an fsync per cell; only power loss can drop the
            # last commits, never corrupt the file.
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError as err:
            raise CeilingError(f"{self.path} is not a ceiling results database: {err}") from None

    def _stored_version(self) -> int:
        found = self.connection.execute(
            "SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(found[0]) if found else None
        if version is None or version > SCHEMA_VERSION:
            raise CeilingError(
                f"results database {self.path} has schema version {version}, newer than "
                f"this ceiling ({__version__}) understands ({SCHEMA_VERSION}); upgrade "
                "ceiling to read it - it is left untouched")
        return version

    def _check_version(self, upgrade: bool) -> int:
        """The store's schema version, once it is created or (`upgrade`) brought up to date."""
        tables = {name for (name,) in self.connection.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" in tables:
            version = self._stored_version()
            if version < SCHEMA_VERSION and upgrade:
                version = self._upgrade()
            return version
        if tables:
            raise CeilingError(f"{self.path} is an SQLite database but not a ceiling results "
                               f"database (tables: {', '.join(sorted(tables))})")
        # One script, one transaction: a store either has its whole schema and version or
        # nothing at all.
        self.connection.executescript(
            "BEGIN;" + _SCHEMA
            + f"INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');"
            + f"INSERT INTO meta VALUES ('created_by', '{__version__}');COMMIT;")
        return SCHEMA_VERSION

    def _upgrade(self) -> int:
        """Apply the additive upgrades in one transaction. BEGIN IMMEDIATE takes the write
        lock before the version is read again, so two drivers opening one old store at once
        upgrade it once."""
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            version = self._stored_version()
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _UPGRADES[target]:
                    self.connection.execute(statement)
            self.connection.execute(
                "UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))
        except BaseException:
            self.connection.rollback()
            raise
        self.connection.commit()
        return SCHEMA_VERSION

    def _columns(self) -> tuple[str, ...]:
        return tuple(row[1] for row in self.connection.execute("PRAGMA table_info(results)"))

    def _select(self, names: Iterable[str]) -> str:
        """A select list of `names`; a column this store's schema lacks reads as NULL."""
        return ", ".join(name if name in self.columns else f"NULL AS {name}" for name in names)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes: each one transaction ------------------------------------------------------
    def add(self, row: Row) -> None:
        if self.version < SCHEMA_VERSION:
            raise CeilingError(f"results database {self.path} (schema version {self.version}) "
                               "was opened for reading; open it with create=True to upgrade "
                               "it and write")
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

    def rows(self, actions: bool = False) -> list[dict[str, Any]]:
        """Every row as a dict by column name, trace and options decoded. The actions are left
        out unless `actions`; then they are decoded ([T, A] lists, None for rows stored before
        schema version 2)."""
        names = [name for name in self.columns if actions or name not in _HEAVY_COLUMNS]
        if actions and "actions" not in names:
            names.append("actions")
        cursor = self.connection.execute(
            f"SELECT {self._select(names)} FROM results ORDER BY config_hash")
        rows = []
        for values in cursor:
            row = dict(zip(names, values, strict=True))
            row["trace"] = json.loads(row["trace"])
            row["options"] = json.loads(row["options"])
            if actions and row["actions"] is not None:
                row["actions"] = json.loads(row["actions"])
            rows.append(row)
        return rows

    def outcome_table(self) -> list[tuple[Any, ...]]:
        """Identity and outcome of every row, sorted: equal for two equivalent sweeps."""
        return list(self.connection.execute(
            f"SELECT {self._select(OUTCOME_COLUMNS)} FROM results ORDER BY config_hash"))

    def sweeps(self) -> list[dict[str, Any]]:
        cursor = self.connection.execute("SELECT * FROM sweeps ORDER BY created")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor]

    def failure_count(self) -> int:
        return int(self.connection.execute("SELECT COUNT(*) FROM failures").fetchone()[0])
