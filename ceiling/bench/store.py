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
3. `results.cpu_share`: the CPU seconds the cell's process used per wall-clock second while it
   ran (compiling, searching, replaying): about 1.0 for a single-threaded cell with a core to
   itself, less when another process competed for the core, so that a report can tell a time
   budget that bought fewer rollouts because the machine was busy. Rows stored before keep
   NULL (not measured).
4. `replaced`: rows that `ceiling bench --rerun` ran again, each kept as JSON with its config
   hash and when it was replaced, so the store stays a full history of what was run.
5. `results.search_defaults`: the options the checkpoint's recorded search defaults (`ceiling
   defaults`, `ceiling tune --record`) gave the cell's strategy when the cell ran, canonical
   JSON (`{}` for none): the options a plain suite entry searched that checkpoint with then,
   so that a report can tell which of a strategy's option variants is the one a user gets
   without options (`claim_measures.primary_variants`). Rows stored before keep NULL.
6. `results.speed`: how fast the core was while the cell ran, `speed.probe()` (a fixed
   reference computation's iterations per second, the mean of one probe just before the search
   and one just after, in the searching process), so that a report can tell a time budget that
   bought fewer rollouts because the machine itself was slower that day, which the CPU share
   does not show. Only ratios between cells mean anything. Rows stored before keep NULL.

Tables: `results` (one row per cell), `baselines` (the uniform random policy's return per task
and instance: the minimum of the per-task normalisation), `failures` (cells that raised; not
results, so a rerun retries them), `sweeps` (which suite and command wrote to the store) and
`replaced` (earlier rows of cells run again on purpose, `ceiling bench --rerun`: a row is
never changed in place, it is moved there in the transaction that stores its replacement).

Damage is found, not read past. Opening runs SQLite's `quick_check` (every page's structure,
linear in the file's size: milliseconds for a sweep's store) or, with `integrity="full"`, its
`integrity_check` (indexes against their tables too); a damaged store is a `CeilingError` that
says what to do, so `ceiling bench` never mistakes a damaged results table for an empty one
("0 to run"). A row whose values do not decode (bad JSON in its trace, text in a number
column) is left out of `rows()` and listed in `Store.problems` with its cell, for the report to
show, instead of stopping the reader with a traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import math
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ceiling import __version__
from ceiling.bench.speed import SLOW_SPEED
from ceiling.errors import CeilingError

SCHEMA_VERSION = 6

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
    actions TEXT,
    cpu_share REAL,
    search_defaults TEXT,
    speed REAL
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
CREATE TABLE IF NOT EXISTS replaced (
    config_hash TEXT NOT NULL, row TEXT NOT NULL, replaced TEXT NOT NULL
);
"""

# Additive upgrades: the statements that bring a store of version V - 1 to version V.
_UPGRADES: dict[int, tuple[str, ...]] = {
    2: ("ALTER TABLE results ADD COLUMN actions TEXT",),
    3: ("ALTER TABLE results ADD COLUMN cpu_share REAL",),
    4: ("CREATE TABLE replaced (config_hash TEXT NOT NULL, row TEXT NOT NULL, "
        "replaced TEXT NOT NULL)",),
    5: ("ALTER TABLE results ADD COLUMN search_defaults TEXT",),
    6: ("ALTER TABLE results ADD COLUMN speed REAL",),
}

# Columns that identify a cell and its outcome; timings, version and timestamps are left out
# so that two sweeps of the same suite compare equal.
OUTCOME_COLUMNS = ("config_hash", "task", "instance", "checkpoint", "strategy", "options",
                   "seconds", "rollouts", "width", "seed", "total_return", "won", "verified",
                   "verified_return", "rollouts_done", "actions")

# Columns `rows()` leaves out unless asked: large, and read by no statistic or figure.
_HEAVY_COLUMNS = ("actions",)

# What a stored value must be, per column, for `rows()` to hand it out.
_INTEGER_COLUMNS = ("instance", "width", "seed", "rollouts_done")
_NUMBER_COLUMNS = ("total_return", "verified_return", "compile_seconds", "search_seconds")
_OPTIONAL_NUMBER_COLUMNS = ("seconds", "rollouts", "cpu_share", "speed")

INTEGRITY_CHECKS = {"quick": "quick_check", "full": "integrity_check"}

# A searching cell whose process had less than this share of a core while it ran competed with
# another process for the CPU: its time budget bought fewer rollouts than an idle machine's.
# (Sweep cells run single-threaded, one per core, so an idle machine gives them about 1.0.)
CONTENDED_CPU_SHARE = 0.9


# What `ceiling bench --rerun` can run again (zero-shot cells never: they have no budget).
RERUN_CHOICES = {
    "contended": f"cells that had less than {100 * CONTENDED_CPU_SHARE:.0f} % of a CPU core",
    "unmeasured": "cells stored before ceiling measured their CPU share",
    "slow": f"cells whose machine-speed probe was below {100 * SLOW_SPEED:.0f} % of the "
            "store's median (the machine itself was slower while they ran)",
    "superseded": "cells (zero-shot ones too) stored for an earlier checkpoint under the "
                  "same label (one retrained since): the new checkpoint's cells run anyway, and "
                  "this moves the old rows out of the results as the new ones are stored "
                  "(with those under options the suite no longer has: other search defaults)",
    "before=TIME": "cells stored before TIME (ISO 8601, as in `2026-12-06T04:00`; UTC unless "
                   "it names a zone): cells run under conditions since changed, such as sweep "
                   "workers that were not yet pinned to a core",
}


def rerun_before(which: str) -> datetime.datetime | None:
    """The time a `--rerun before=TIME` names, timezone-aware (UTC when it names none); None
    for the other kinds. A TIME that is not ISO 8601 is a clear error."""
    if not which.startswith("before="):
        return None
    text = which.removeprefix("before=")
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise CeilingError(f"--rerun before={text}: not an ISO 8601 time; give one such as "
                           "before=2026-12-06T04:00 (UTC) or before=2026-12-06T05:00+01:00") \
            from None
    return when if when.tzinfo is not None else when.replace(tzinfo=datetime.UTC)

# What identifies a cell apart from the checkpoint's parameters: a stored row that matches a
# suite cell here but was searched with other parameters (`checkpoint_sha256`) under the same
# checkpoint label is that cell's row for an earlier checkpoint.
CELL_COLUMNS = ("task", "checkpoint", "strategy", "options", "seconds", "rollouts", "width",
                "instance", "seed")


def contended(row: dict[str, Any] | Row) -> bool:
    """Whether a stored cell ran with less than `CONTENDED_CPU_SHARE` of a core (False when its
    CPU share was not measured: a row stored before schema version 3)."""
    share = row.cpu_share if isinstance(row, Row) else row.get("cpu_share")
    return share is not None and share < CONTENDED_CPU_SHARE


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
    cpu_share: float | None = None  # CPU seconds per wall second while the cell ran
    search_defaults: str | None = None  # the strategy's options a plain entry gets (JSON)
    speed: float | None = None  # `speed.probe()` around the search: how fast the core was


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def damaged(path: Path, detail: str) -> CeilingError:
    """The error for a store SQLite cannot read reliably, with what to do about it."""
    return CeilingError(
        f"results database {path} is damaged ({detail}); its rows cannot be trusted. Move it "
        f"aside and run the suite into a new file (`ceiling bench SUITE --db NEW.sqlite`), "
        f"or try to save its readable rows with `sqlite3 {path} .recover | sqlite3 "
        f"RECOVERED.sqlite`")


class Store:
    """An open results database. Use as a context manager or call `close()`.

    `create=True` (the default) opens for writing: a missing store is created and an older one
    upgraded. `create=False` opens an existing store for reading, schema as it is.
    `integrity` is the check run on opening: "quick" (SQLite's quick_check, the default) or
    "full" (integrity_check, which also checks indexes against tables; slower).
    """

    def __init__(self, path: str | Path, create: bool = True, integrity: str = "quick") -> None:
        self.path = Path(path)
        self.problems: list[str] = []  # rows that did not decode, each with its cell
        if integrity not in INTEGRITY_CHECKS:
            raise CeilingError(f"unknown integrity check {integrity!r}; valid: "
                               f"{', '.join(INTEGRITY_CHECKS)}")
        if self.path.is_dir():
            raise CeilingError(f"results database {self.path} is a directory; give a file path")
        if not create and not self.path.is_file():
            raise CeilingError(f"results database {self.path} does not exist")
        existed = self.path.exists()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.connection = sqlite3.connect(self.path, timeout=30.0)
        except (OSError, sqlite3.OperationalError) as err:
            raise CeilingError(f"cannot {'open' if existed else 'create'} results database "
                               f"{self.path}: {err}") from None
        try:
            self._check_integrity(INTEGRITY_CHECKS[integrity], existed)
            self.version = self._check_version(upgrade=create)
            self.columns = self._columns()
            # WAL with synchronous=NORMAL: a commit survives the process being killed (what a
            # resumable sweep needs) without an fsync per cell; only power loss can drop the
            # last commits, never corrupt the file.
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.OperationalError as err:
            self.connection.close()
            raise CeilingError(f"cannot {'open' if existed else 'create'} results database "
                               f"{self.path}: {err}") from None
        except sqlite3.DatabaseError as err:
            self.connection.close()
            raise CeilingError(f"{self.path} is not a ceiling results database: {err}") from None
        except CeilingError:
            self.connection.close()
            raise

    def _check_integrity(self, pragma: str, existed: bool) -> None:
        if not existed:
            return
        try:
            found = [str(row[0]) for row in self.connection.execute(f"PRAGMA {pragma}")]
        except sqlite3.DatabaseError as err:
            if "not a database" in str(err) or "encrypted" in str(err):
                raise  # not SQLite at all: the caller says so
            raise damaged(self.path, str(err)) from None
        if found != ["ok"]:
            shown = "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3
                                            else "")
            raise damaged(self.path, f"SQLite's {pragma} found: {shown}")

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Reads that hit a damaged page the opening check missed say so, not a traceback."""
        try:
            yield
        except sqlite3.DatabaseError as err:
            raise damaged(self.path, str(err)) from None

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

    def _tables(self) -> set[str]:
        return {name for (name,) in self.connection.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")}

    def _check_version(self, upgrade: bool) -> int:
        """The store's schema version, once it is created or (`upgrade`) brought up to date."""
        tables = self._tables()
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
    def add(self, row: Row, replace: bool = False, supersedes: Sequence[str] = ()) -> None:
        """Store `row`. A cell already stored keeps its row (two drivers racing on one cell
        keep the first), unless `replace`: then the stored row moves to `replaced` and `row`
        takes its place, in one transaction (`ceiling bench --rerun`). The rows whose config
        hashes `supersedes` names (the same cell's rows for an earlier checkpoint under the
        same label) move to `replaced` in that transaction too."""
        self._check_writable()
        data = dataclasses.asdict(row)
        data["won"] = None if row.won is None else int(row.won)
        data["verified"] = int(row.verified)
        data["ceiling_version"] = __version__
        data["created"] = _now()
        columns = ", ".join(data)
        marks = ", ".join("?" for _ in data)
        with self.connection:
            self._move_to_replaced(([row.config_hash] if replace else []) + list(supersedes),
                                   data["created"])
            self.connection.execute(f"INSERT OR IGNORE INTO results ({columns}) VALUES ({marks})",
                                    tuple(data.values()))

    def retire(self, keys: Sequence[str]) -> None:
        """Move the rows of `keys` to `replaced`, in one transaction: rows of an earlier
        checkpoint whose cells the new checkpoint has already stored."""
        self._check_writable()
        with self.connection:
            self._move_to_replaced(keys, _now())

    def _move_to_replaced(self, keys: Sequence[str], when: str) -> None:
        """Inside the caller's transaction: each row of `keys` into `replaced`, as JSON."""
        for key in keys:
            cursor = self.connection.execute("SELECT * FROM results WHERE config_hash=?", (key,))
            names = [d[0] for d in cursor.description]
            for values in cursor.fetchall():
                self.connection.execute(
                    "INSERT INTO replaced VALUES (?, ?, ?)",
                    (key, json.dumps(dict(zip(names, values, strict=True))), when))
            self.connection.execute("DELETE FROM results WHERE config_hash=?", (key,))

    def _check_writable(self) -> None:
        if self.version < SCHEMA_VERSION:
            raise CeilingError(f"results database {self.path} (schema version {self.version}) "
                               "was opened for reading; open it with create=True to upgrade "
                               "it and write")

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
        with self._reading():
            return {key for (key,) in self.connection.execute(
                "SELECT config_hash FROM results")}

    def cpu_shares(self) -> dict[str, float | None]:
        """{config hash: the cell's CPU share, None where it was not measured}."""
        with self._reading():
            return {key: share for key, share in self.connection.execute(
                f"SELECT config_hash, {self._select(['cpu_share'])} FROM results")}

    def speeds(self) -> dict[str, float | None]:
        """{config hash: the cell's machine-speed probe, None where it was not measured}."""
        with self._reading():
            return {key: speed for key, speed in self.connection.execute(
                f"SELECT config_hash, {self._select(['speed'])} FROM results")}

    def stored_times(self) -> dict[str, datetime.datetime]:
        """{config hash: when the row was stored (UTC)}."""
        with self._reading():
            return {key: datetime.datetime.fromisoformat(created) for key, created in
                    self.connection.execute("SELECT config_hash, created FROM results")}

    def cell_identities(self) -> dict[str, tuple[tuple[Any, ...], str]]:
        """{config hash: (the row's `CELL_COLUMNS` values, its checkpoint_sha256)}."""
        with self._reading():
            return {key: (tuple(values), sha) for key, sha, *values in self.connection.execute(
                f"SELECT config_hash, checkpoint_sha256, {', '.join(CELL_COLUMNS)} "
                "FROM results")}

    def replaced_count(self) -> int:
        if "replaced" not in self._tables():
            return 0
        with self._reading():
            return int(self.connection.execute("SELECT COUNT(*) FROM replaced").fetchone()[0])

    def baselines(self, kind: str = "random") -> dict[str, dict[int, float]]:
        """{task: {instance: return}} of baseline `kind`; values that are not numbers are left
        out and listed in `problems`."""
        table: dict[str, dict[int, float]] = {}
        with self._reading():
            found = list(self.connection.execute(
                "SELECT task, instance, total_return FROM baselines WHERE kind=?", (kind,)))
        for task, instance, value in found:
            if not (_is_integer(instance) and _is_number(value)):
                self.problems.append(f"{kind} baseline of {task} instance {instance!r}: return "
                                     f"{value!r} is not a number; left out")
                continue
            table.setdefault(str(task), {})[int(instance)] = float(value)
        return table

    def rows(self, actions: bool = False) -> list[dict[str, Any]]:
        """Every row as a dict by column name, trace and options decoded. The actions are left
        out unless `actions`; then they are decoded ([T, A] lists, None for rows stored before
        schema version 2)."""
        names = [name for name in self.columns if actions or name not in _HEAVY_COLUMNS]
        if actions and "actions" not in names:
            names.append("actions")
        with self._reading():
            found = list(self.connection.execute(
                f"SELECT {self._select(names)} FROM results ORDER BY config_hash"))
        rows = []
        for values in found:
            row = dict(zip(names, values, strict=True))
            problem = _decode(row, actions)
            if problem is not None:
                self.problems.append(f"{describe_row(row)}: {problem}; left out")
                continue
            rows.append(row)
        return rows

    def outcome_table(self) -> list[tuple[Any, ...]]:
        """Identity and outcome of every row, sorted: equal for two equivalent sweeps."""
        with self._reading():
            return list(self.connection.execute(
                f"SELECT {self._select(OUTCOME_COLUMNS)} FROM results ORDER BY config_hash"))

    def sweeps(self) -> list[dict[str, Any]]:
        with self._reading():
            cursor = self.connection.execute("SELECT * FROM sweeps ORDER BY created")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, values, strict=True)) for values in cursor]

    def failure_count(self) -> int:
        with self._reading():
            return int(self.connection.execute("SELECT COUNT(*) FROM failures").fetchone()[0])


def describe_row(row: dict[str, Any]) -> str:
    """The cell a stored row belongs to, in words, for messages about it."""
    budget = " ".join(part for part in (
        f"{row.get('seconds')} s" if row.get("seconds") is not None else "",
        f"{row.get('rollouts')} rollouts" if row.get("rollouts") is not None else "") if part)
    return (f"cell {row.get('config_hash')} ({row.get('task')} {row.get('algorithm')} "
            f"{row.get('strategy')}{' ' + budget if budget else ''} width {row.get('width')} "
            f"instance {row.get('instance')} seed {row.get('seed')})")


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _decode(row: dict[str, Any], actions: bool) -> str | None:
    """Decode `row`'s JSON columns in place; the first problem in words, or None."""
    for name in _INTEGER_COLUMNS:
        if name in row and not _is_integer(row[name]):
            return f"{name} is {row[name]!r}, not an integer"
    for name in _NUMBER_COLUMNS:
        if name in row and not _is_number(row[name]):
            return f"{name} is {row[name]!r}, not a number"
    for name in _OPTIONAL_NUMBER_COLUMNS:
        if row.get(name) is not None and not _is_number(row[name]):
            return f"{name} is {row[name]!r}, not a number"
    if row.get("won") not in (None, 0, 1):
        return f"won is {row['won']!r}, not 0, 1 or empty"
    decoders = {"trace": _trace, "options": _options, "search_defaults": _options}
    if actions:
        decoders["actions"] = _actions
    for name, decode in decoders.items():
        if row.get(name) is None and name in ("actions", "search_defaults"):
            continue
        try:
            row[name] = decode(row[name])
        except (TypeError, ValueError) as err:  # JSONDecodeError is a ValueError
            return f"{name} does not decode ({err})"
    return None


def _trace(text: Any) -> list[list[float]]:
    points = json.loads(text)
    if not isinstance(points, list) or not all(
            isinstance(p, list) and len(p) == 3 and all(_is_number(v) for v in p)
            for p in points):
        raise ValueError("not a list of [seconds, rollouts, best return] points")
    return points


def _options(text: Any) -> dict[str, Any]:
    options = json.loads(text)
    if not isinstance(options, dict):
        raise ValueError("not a JSON object")
    return options


def _actions(text: Any) -> list[list[int]]:
    actions = json.loads(text)
    if not isinstance(actions, list):
        raise ValueError("not a list of joint actions")
    return actions
