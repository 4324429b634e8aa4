"""The store's schema: tables and indexes, migrations keyed on SQLite's `PRAGMA user_version`, and the
read-only connection every reader opens. Tables are documented in docs/store.md.

A store records the schema version it was migrated to in its header (`PRAGMA user_version`). Stores made
before versions existed read 0 and may lack any of ADDED_COLUMNS. `migrate` brings a writable store to
SCHEMA_VERSION, one migration per version, each in its own transaction; a read-only connection never
migrates, it shows the columns an older store lacks as NULL instead (see connect_readonly).
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import stat
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, get_args

import numpy as np

from harness.errors import HarnessError
from harness.records import ScoreKind

if TYPE_CHECKING:  # sqlite_utils imports pandas when it is installed (~0.3 s): only a writer loads it
    import sqlite_utils

DEFAULT_DB = Path("results/harness.db")
FINISHED = ("done", "not_applicable")
SCORE_DTYPE = np.dtype("<f4")  # class scores: 4 bytes per (example, label); see docs/store.md
SCORE_KINDS: tuple[ScoreKind, ...] = get_args(ScoreKind)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  key TEXT PRIMARY KEY,
  suite TEXT NOT NULL,
  label TEXT NOT NULL DEFAULT '',
  model TEXT NOT NULL,
  task TEXT NOT NULL,
  task_version TEXT NOT NULL,
  data_fingerprint TEXT NOT NULL,
  protocol TEXT NOT NULL,
  seed INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('done', 'failed', 'not_applicable')),
  error TEXT,
  config_json TEXT NOT NULL,
  selected_json TEXT NOT NULL DEFAULT '{}',
  confusion_json TEXT,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  duration_s REAL NOT NULL,
  hardware TEXT,
  harness_version TEXT NOT NULL,
  git_hash TEXT,
  env_json TEXT NOT NULL DEFAULT '{}',
  schema_version INTEGER NOT NULL,
  model_weights TEXT
);
CREATE INDEX IF NOT EXISTS runs_model_task ON runs (model, task, protocol);
CREATE TABLE IF NOT EXISTS metrics (
  run_key TEXT NOT NULL REFERENCES runs(key) ON DELETE CASCADE,
  name TEXT NOT NULL,
  value REAL NOT NULL,
  ci_low REAL,
  ci_high REAL,
  PRIMARY KEY (run_key, name)
);
CREATE TABLE IF NOT EXISTS predictions (
  run_key TEXT NOT NULL REFERENCES runs(key) ON DELETE CASCADE,
  example_id TEXT NOT NULL,
  label INTEGER NOT NULL,
  pred INTEGER NOT NULL,
  score REAL,
  PRIMARY KEY (run_key, example_id)
);
CREATE TABLE IF NOT EXISTS class_scores (
  run_key TEXT PRIMARY KEY REFERENCES runs(key) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  n_examples INTEGER NOT NULL,
  n_labels INTEGER NOT NULL,
  scores BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS timings (
  run_key TEXT PRIMARY KEY REFERENCES runs(key) ON DELETE CASCADE,
  hardware TEXT NOT NULL,
  device TEXT NOT NULL,
  batch_size INTEGER NOT NULL,
  p50_ms REAL NOT NULL,
  p95_ms REAL NOT NULL,
  p99_ms REAL NOT NULL,
  mean_ms REAL NOT NULL,
  std_ms REAL NOT NULL,
  n_timed INTEGER NOT NULL,
  items_per_s REAL NOT NULL,
  peak_mem_mb REAL,
  params INTEGER
);
CREATE TABLE IF NOT EXISTS hardware (
  fingerprint TEXT PRIMARY KEY,
  cpu TEXT, gpu TEXT, torch TEXT, cuda TEXT, threads INTEGER, platform TEXT, details_json TEXT
);
CREATE TABLE IF NOT EXISTS models (
  name TEXT PRIMARY KEY,
  family TEXT NOT NULL, modality TEXT NOT NULL, source TEXT, revision TEXT, params INTEGER,
  license TEXT, description TEXT, feature_dim INTEGER, spec_json TEXT,
  weights TEXT, identity_json TEXT
);
CREATE TABLE IF NOT EXISTS claims (
  key TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  claimed_at REAL NOT NULL,
  heartbeat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
  name TEXT NOT NULL, version TEXT NOT NULL,
  modality TEXT NOT NULL, labels_json TEXT NOT NULL,
  n_train INTEGER, n_validation INTEGER, n_test INTEGER,
  fingerprint TEXT NOT NULL, source_signature TEXT,
  source TEXT, license TEXT, citation TEXT, spec_json TEXT,
  hygiene_json TEXT,
  PRIMARY KEY (name, version, fingerprint)
);
CREATE TABLE IF NOT EXISTS task_groups (
  suite TEXT NOT NULL, name TEXT NOT NULL, task TEXT NOT NULL,
  PRIMARY KEY (suite, name, task)
);
"""

# Columns added before stores carried a schema version: (table, column, SQL type). A store at user_version 0
# may lack any of them; migration 1 adds them. New columns go in a new migration, not here.
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("tasks", "hygiene_json", "TEXT"),
    ("runs", "model_weights", "TEXT"),  # NULL: run made before weights were hashed
    ("models", "weights", "TEXT"),
    ("models", "identity_json", "TEXT"),
    # latency: adaptive sampling, memory, load time, contention guard (see records.TimingRecord)
    ("timings", "p50_rel_ci", "REAL"),
    ("timings", "stop_reason", "TEXT"),
    ("timings", "weights_mb", "REAL"),
    ("timings", "rss_peak_mb", "REAL"),
    ("timings", "load_s", "REAL"),
    ("timings", "threads", "INTEGER"),
    ("timings", "cpu_wall_ratio", "REAL"),
    ("timings", "run_wait_frac", "REAL"),
    ("timings", "others_cpu_frac", "REAL"),
    ("timings", "steal_frac", "REAL"),
    ("timings", "load_avg", "REAL"),
    ("timings", "gpu_other_procs", "INTEGER"),
    ("timings", "contended", "INTEGER"),
    ("timings", "attempts", "INTEGER"),
)


def _migrate_unversioned(db: sqlite_utils.Database) -> None:
    """0 -> 1: a store from before schema versions: add the columns it lacks (NULL in its old rows) and
    re-key a tasks table from before per-data task rows by (name, version, fingerprint), so a task whose
    data changes keeps the description of each data set."""
    for table, column, sql_type in ADDED_COLUMNS:
        if column not in db.table(table).columns_dict:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")
    if db.table("tasks").pks != ["name", "version", "fingerprint"]:
        db.table("tasks").transform(pk=("name", "version", "fingerprint"))


# MIGRATIONS[i] takes a store from user_version i to i + 1. Append one to change the schema (and update
# SCHEMA so new stores are created at the newest version directly).
MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (_migrate_unversioned,)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite_utils.Database, path: Path) -> None:
    """Create missing tables and run the migrations from the store's version to SCHEMA_VERSION, each with
    its version bump in one IMMEDIATE transaction. A store from a newer harness is refused: its rows may not mean
    what this version writes."""
    version = schema_version(db.conn)
    if version > SCHEMA_VERSION:  # refused before any table is created in it
        raise _newer(path, version)
    db.executescript(SCHEMA)  # tables and indexes IF NOT EXISTS: a new store gets the newest schema
    for target in range(version + 1, SCHEMA_VERSION + 1):
        db.execute("BEGIN IMMEDIATE")  # another `harness run` opening the store now waits, then skips it
        try:
            if schema_version(db.conn) < target:
                MIGRATIONS[target - 1](db)
                db.execute(f"PRAGMA user_version = {target}")
            db.execute("COMMIT")
        except BaseException:
            if db.conn.in_transaction:
                db.execute("ROLLBACK")
            raise


SQLITE_HEADER = b"SQLite format 3\x00"
_WAL_HEADER_BYTES = 32  # a -wal file no longer than its header holds no change


def connect_readonly(path: str | Path) -> sqlite3.Connection:
    """The one way read commands (show, models, site, pick, compare, export-baseline) open a store: SQLite URI
    mode=ro, so nothing is created, no table added and the journal mode left as it is. A missing path, a
    folder, an empty file, a file that is not SQLite and an SQLite database without a runs table are refused
    with the file untouched."""
    path = Path(path)
    hint = "pass --db with the results file `harness run` wrote (default results/harness.db)"
    if not path.exists():
        raise HarnessError(f"No results database at {path} (the file does not exist). Run a suite first (harness run SUITE --db {path}) or {hint}.")
    if path.is_dir():
        raise HarnessError(f"--db {path} is a directory; give the results file, e.g. {path}/harness.db.")
    if stat.S_ISFIFO(path.stat().st_mode):  # reading one that nobody writes would wait forever
        raise HarnessError(f"{path} is not a harness results database: it is a named pipe; {hint}.")
    try:
        with path.open("rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise HarnessError(f"Results database {path} cannot be read: {exc.strerror or exc}.") from None
    if not header:
        raise HarnessError(f"{path} is not a harness results database: it is an empty file (0 bytes); {hint}.")
    if header != SQLITE_HEADER:
        raise HarnessError(f"{path} is not a harness results database: not an SQLite file; {hint}.")
    uri = f"{path.resolve().as_uri()}?mode=ro"
    if not os.access(path.parent, os.W_OK):
        # A WAL store in a read-only folder (a read-only mount, a CI artifact): SQLite cannot create its -shm
        # file there, and no writer can be changing the file either, so read it as immutable. Unless a -wal file
        # holds changes not yet in the file: immutable reads leave them out (deleted runs shown, new ones
        # missing), while a plain read-only open reads them as long as the -shm file is there too.
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
        if not (wal.exists() and wal.stat().st_size > _WAL_HEADER_BYTES):
            uri += "&immutable=1"
        elif not shm.exists():
            raise HarnessError(
                f"Results database {path} is in a read-only folder beside a -wal file that holds changes not yet "
                f"written into it, and SQLite can read those only with its -shm file, which is missing and cannot be "
                f"created there. Copy {path.name} with {wal.name} to a writable folder and pass --db with the copy, "
                f"or checkpoint it where it was written (sqlite3 {path} 'PRAGMA wal_checkpoint')."
            )
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=5, isolation_level=None)
        has_runs = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").fetchone()
    except sqlite3.DatabaseError as exc:
        if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_BUSY:  # not the file's fault
            raise HarnessError(
                f"{path} cannot be read (SQLite: {exc}): another program holds an exclusive lock on it (a store "
                "this harness writes is in WAL mode, which readers never wait for). Run again once it has finished."
            ) from None
        raise HarnessError(f"{path} is not a harness results database: SQLite cannot read it ({exc}); {hint}.") from None
    if not has_runs:
        conn.close()
        raise HarnessError(f"{path} is not a harness results database: an SQLite database without a runs table; {hint}.")
    try:
        lacking = missing_schema(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise HarnessError(f"{path} is not a harness results database: SQLite cannot read it ({exc}); {hint}.") from None
    if lacking:
        conn.close()
        raise HarnessError(f"{path} is not a harness results database: it has a runs table but not a harness store's tables ({lacking}); {hint}.")
    version = schema_version(conn)
    if version == 0:
        _show_added_columns(conn)
    elif version > SCHEMA_VERSION:  # read as far as this harness understands it, and said so
        warnings.warn(
            f"{path} was written by a newer harness (store schema version {version}; this harness reads up to "
            f"version {SCHEMA_VERSION}): what it shows is what this version understands of it, and what the newer "
            "one added is left out. Upgrade harness to read it in full.",
            UserWarning,
            stacklevel=2,
        )
    return conn


# Tables every store has had since the first release; the others (class_scores, task_groups, claims) came
# later and readers check for them.
CORE_TABLES = ("runs", "metrics", "predictions", "timings", "hardware", "models", "tasks")


_HARNESS_TABLES = frozenset(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA))


@functools.cache
def _core_columns() -> dict[str, tuple[str, ...]]:
    """Table -> the columns every store of it has had (SCHEMA's, less ADDED_COLUMNS)."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    added = {(table, column) for table, column, _ in ADDED_COLUMNS}
    out = {
        table: tuple(row[1] for row in conn.execute(f"PRAGMA table_info({table})") if (table, row[1]) not in added)
        for table in CORE_TABLES
    }
    conn.close()
    return out


@functools.cache
def column_info(table: str) -> tuple[tuple[str, str, bool], ...]:
    """(name, SQL type, NOT NULL) of each column of `table` in the current schema."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    for t, column, sql_type in ADDED_COLUMNS:
        if t == table and column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")
    out = tuple((row[1], row[2], bool(row[3])) for row in conn.execute(f"PRAGMA table_info({table})"))
    conn.close()
    return out


@functools.cache
def numeric_columns(table: str) -> tuple[str, ...]:
    """The REAL and INTEGER columns of `table` in the current schema."""
    return tuple(name for name, sql_type, _ in column_info(table) if sql_type in ("REAL", "INTEGER"))


@functools.cache
def required_columns(table: str) -> frozenset[str]:
    """The NOT NULL columns of `table` in the current schema."""
    return frozenset(name for name, _, not_null in column_info(table) if not_null)


def missing_schema(conn: sqlite3.Connection) -> str:
    """What a database with a `runs` table lacks of a harness store's tables and columns ('' when nothing):
    another program's database may have a table of that name, and a damaged one may have lost tables."""
    problems: list[str] = []
    absent: list[str] = []
    for table, columns in _core_columns().items():
        existing = {row[1] for row in conn.execute(f"PRAGMA main.table_info({table})")}
        if not existing:
            absent.append(table)
        elif lacking := [c for c in columns if c not in existing]:
            shown = ", ".join(lacking[:5]) + (f" and {len(lacking) - 5} more" if len(lacking) > 5 else "")
            problems.append(f"table {table} lacks column(s) {shown}")
    if absent:
        problems.append(f"no {', '.join(absent)} table{'s' if len(absent) > 1 else ''}")
    return "; ".join(problems)


def check_writable_store(path: Path) -> None:
    """Before `harness run` opens an existing SQLite file for writing: it must hold a harness store (or no
    table at all: a new store), read at a schema version this harness writes, so that no table is added to
    another program's database and neither a damaged store nor a newer harness's is changed."""
    hint = "pass --db with a harness results file or a new path"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            tables = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
            theirs = [t for t in tables if t not in _HARNESS_TABLES and not t.startswith("sqlite_")]
            if "runs" not in tables:
                if not theirs:
                    return  # empty, or some of a harness store's tables: migrate creates the rest
                shown = ", ".join(theirs[:5]) + (f" and {len(theirs) - 5} more" if len(theirs) > 5 else "")
                raise HarnessError(
                    f"{path} is not a harness results database: an SQLite database with other tables ({shown}) "
                    f"and no runs table; `harness run` does not add its tables to another program's database; {hint}."
                )
            if lacking := missing_schema(conn):
                raise HarnessError(f"{path} is not a harness results database: it has a runs table but not a harness store's tables ({lacking}); {hint}.")
            if (version := schema_version(conn)) > SCHEMA_VERSION:
                raise _newer(path, version)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise HarnessError(f"{path} is not a harness results database: SQLite cannot read it ({exc}); {hint}.") from None


def _newer(path: Path, version: int) -> HarnessError:
    return HarnessError(
        f"{path} was written by a newer harness (store schema version {version}; this harness writes "
        f"version {SCHEMA_VERSION}). Upgrade harness to add runs to it, or pass --db with another file."
    )


def _show_added_columns(conn: sqlite3.Connection) -> None:
    """A store from before schema versions, read-only: the columns it lacks (ADDED_COLUMNS) read as NULL, through
    TEMP views that shadow its tables in this connection only (the file is not touched; `harness run`
    adds the real columns when it next writes to it)."""
    missing: dict[str, list[tuple[str, str]]] = {}
    for table, column, sql_type in ADDED_COLUMNS:
        existing = {row[1] for row in conn.execute(f"PRAGMA main.table_info({table})")}
        if existing and column not in existing:
            missing.setdefault(table, []).append((column, sql_type))
    for table, columns in missing.items():
        rowid = "rowid AS rowid, " if table == "tasks" else ""  # tasks are read in insertion order
        extra = ", ".join(f"CAST(NULL AS {sql_type}) AS {column}" for column, sql_type in columns)
        conn.execute(f"CREATE TEMP VIEW {table} AS SELECT {rowid}*, {extra} FROM main.{table}")


def has_sqlite_header(path: Path) -> bool:
    """Whether the file starts as an SQLite database does; False for one that cannot be read at all (e.g.
    /proc/self/mem: EIO), which the caller's reading then explains."""
    try:
        with path.open("rb") as fh:
            return fh.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError as exc:
        if exc.filename is not None:  # cannot be opened: the caller names it (missing, a folder, ...)
            raise
        return False
