"""SQLite result store (via sqlite-utils). Schema documented in docs/store.md.

One job = one transaction: a run row with its metrics, predictions and timing appear together or not
at all. Only the driver process writes.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, get_args

import numpy as np
import sqlite_utils

from harness import RESULT_SCHEMA_VERSION
from harness.errors import HarnessError
from harness.records import ClassScores, RunRecord, ScoreKind

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

# Columns added after the first release: (table, column, SQL type). Append here when the schema grows.
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


SQLITE_HEADER = b"SQLite format 3\x00"


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
        # file there, and no writer can be changing the file either, so read it as immutable.
        uri += "&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
        has_runs = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise HarnessError(f"{path} is not a harness results database: SQLite cannot read it ({exc}); {hint}.") from None
    if not has_runs:
        conn.close()
        raise HarnessError(f"{path} is not a harness results database: an SQLite database without a runs table; {hint}.")
    _show_added_columns(conn)
    return conn


def _show_added_columns(conn: sqlite3.Connection) -> None:
    """An older store read-only: the columns added since it was written (ADDED_COLUMNS) read as NULL, through
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


class Store:
    def __init__(self, path: str | Path = DEFAULT_DB) -> None:
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise HarnessError(f"--db {self.path} is a directory; give a file path such as {self.path}/harness.db.")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HarnessError(
                f"--db {self.path}: its folder {self.path.parent} cannot be created ({exc.strerror or exc})."
            ) from None
        if self.path.exists() and self.path.stat().st_size > 0 and not _has_sqlite_header(self.path):
            raise HarnessError(f"{self.path} is not an SQLite database; pass --db with a harness results file or a new path.")
        for target in (self.path, self.path.parent) if self.path.exists() else (self.path.parent,):
            if not os.access(target, os.W_OK):  # checked before any job runs: its compute would be lost
                raise HarnessError(
                    f"Results database {self.path} is read-only ({target} is not writable; SQLite also writes "
                    "a journal next to it), and `harness run` records its results there. Make it writable, or "
                    "pass --db with a writable path (show, site, compare and pick read it as it is)."
                )
        try:
            conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.enable_wal()
            self.db.executescript(SCHEMA)
            self._add_missing_columns()
            self._key_tasks_by_fingerprint()
        except sqlite3.DatabaseError as exc:
            if "readonly" in str(exc):
                raise HarnessError(
                    f"Results database {self.path} is read-only ({exc}); make it (and its folder) writable, or "
                    "pass --db with a writable path."
                ) from None
            raise HarnessError(f"{self.path} is not a harness results database ({exc}).") from None

    @classmethod
    def open_readonly(cls, path: str | Path) -> Store:
        """A store for reading only (see connect_readonly): write methods fail, nothing on disk changes."""
        store = cls.__new__(cls)
        store.path = Path(path)
        store.db = sqlite_utils.Database(connect_readonly(store.path))
        return store

    @classmethod
    def open_readonly_or_empty(cls, path: str | Path) -> Store:
        """open_readonly, or an empty in-memory store when no file exists at `path` yet (harness run --dry-run
        on a fresh checkout): nothing is created either way."""
        if Path(path).exists():
            return cls.open_readonly(path)
        store = cls.__new__(cls)
        store.path = Path(path)
        store.db = sqlite_utils.Database(memory=True)
        store.db.executescript(SCHEMA)
        return store

    def _add_missing_columns(self) -> None:
        """Stores made before a column existed get it added (NULL for their old rows)."""
        for table, column, sql_type in ADDED_COLUMNS:
            if column not in self.db.table(table).columns_dict:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")

    def _key_tasks_by_fingerprint(self) -> None:
        """Stores from before per-data task rows had one tasks row per (name, version): re-key it by
        (name, version, fingerprint) so a task whose data changes keeps the description of each data set."""
        if self.db.table("tasks").pks != ["name", "version", "fingerprint"]:
            with self.db.atomic():
                self.db.table("tasks").transform(pk=("name", "version", "fingerprint"))

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        with self.db.atomic():
            yield self.db

    # ---- writes -------------------------------------------------------------------------------------

    def record_task_groups(self, suite: str, groups: Mapping[str, Iterable[str]]) -> None:
        """The named task groups a suite declares (the site ranks each group on its own); replaces the
        suite's earlier declaration."""
        rows = [(suite, name, task) for name, tasks in groups.items() for task in tasks]
        current = {tuple(r) for r in self.db.execute("SELECT suite, name, task FROM task_groups WHERE suite = ?", [suite])}
        if current == set(rows):
            return  # unchanged: leave the store (and the site's signature of it) alone
        with self.transaction():
            self.db.execute("DELETE FROM task_groups WHERE suite = ?", [suite])
            self.db.conn.executemany("INSERT INTO task_groups VALUES (?, ?, ?)", rows)

    def write_run(
        self,
        record: RunRecord,
        *,
        label: str = "",
        model_row: Mapping[str, Any] | None = None,
        task_row: Mapping[str, Any] | None = None,
        hardware_row: Mapping[str, Any] | None = None,
        replace: bool = False,
    ) -> bool:
        """Write everything a job produced in one transaction, replacing an earlier failed attempt, and
        release the job's claim. False (nothing written) when the job is already finished in the store:
        another process recorded it first, and its result stays. replace (harness run --force): replace a
        finished run too, rows and all, in the same transaction."""
        job = record.job
        with self.transaction() as db:
            db.execute("DELETE FROM claims WHERE key = ?", [job.key])
            existing = db.execute("SELECT status FROM runs WHERE key = ?", [job.key]).fetchone()
            if existing and existing[0] in FINISHED and not replace:
                return False
            db.execute("DELETE FROM runs WHERE key = ?", [job.key])
            if model_row:
                db.table("models").upsert(dict(model_row), pk="name")
            if task_row:
                db.table("tasks").upsert(dict(task_row), pk=("name", "version", "fingerprint"))
            if hardware_row:
                db.table("hardware").upsert(dict(hardware_row), pk="fingerprint")
            db.table("runs").insert(
                {
                    "key": job.key,
                    "suite": job.suite,
                    "label": label,
                    "model": job.model,
                    "task": job.task,
                    "task_version": job.task_version,
                    "data_fingerprint": job.data_fingerprint,
                    "protocol": job.protocol,
                    "seed": job.seed,
                    "status": record.status,
                    "error": record.error,
                    "config_json": _dumps(job.config),
                    "selected_json": _dumps(record.selected),
                    "confusion_json": _dumps(record.confusion) if record.confusion is not None else None,
                    "started_at": record.started_at,
                    "finished_at": record.finished_at,
                    "duration_s": record.duration_s,
                    "hardware": record.timing.hardware if record.timing else record.env.get("hardware"),
                    "harness_version": record.env.get("harness_version", ""),
                    "git_hash": record.env.get("git_hash"),
                    "env_json": _dumps(record.env),
                    "schema_version": RESULT_SCHEMA_VERSION,
                    "model_weights": job.model_weights or None,
                }
            )
            if record.metrics:
                db.table("metrics").insert_all(
                    {"run_key": job.key, "name": m.name, "value": m.value, "ci_low": m.ci_low, "ci_high": m.ci_high}
                    for m in record.metrics
                )
            if record.predictions is not None:
                p = record.predictions
                db.conn.executemany(
                    "INSERT INTO predictions (run_key, example_id, label, pred, score) VALUES (?, ?, ?, ?, ?)",
                    (
                        (job.key, eid, int(y), int(yhat), float(s))
                        for eid, y, yhat, s in zip(p.example_ids, p.labels, p.preds, p.scores, strict=True)
                    ),
                )
                if p.class_scores is not None and p.score_kind is not None:
                    db.execute(
                        "INSERT INTO class_scores (run_key, kind, n_examples, n_labels, scores) VALUES (?, ?, ?, ?, ?)",
                        [job.key, p.score_kind, *p.class_scores.shape, score_blob(p.example_ids, p.class_scores)],
                    )
            if record.timing is not None:
                t = record.timing
                db.table("timings").insert({"run_key": job.key, **t.__dict__})
        return True

    # ---- reads --------------------------------------------------------------------------------------

    def finished_keys(self, keys: Iterable[str] | None = None) -> set[str]:
        placeholders = ",".join("?" for _ in FINISHED)
        rows = self.db.execute(f"SELECT key FROM runs WHERE status IN ({placeholders})", list(FINISHED)).fetchall()
        found = {r[0] for r in rows}
        return found if keys is None else found & set(keys)

    def run_states(self, keys: Iterable[str]) -> dict[str, tuple[str, str] | None]:
        """key -> (status, finished_at) of its run row, None when it has none."""
        wanted = list(keys)
        out: dict[str, tuple[str, str] | None] = dict.fromkeys(wanted)
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            marks = ",".join("?" for _ in chunk)
            for key, status, finished in self.db.execute(
                f"SELECT key, status, finished_at FROM runs WHERE key IN ({marks})", chunk
            ).fetchall():
                out[key] = (status, finished)
        return out

    def job_states(self, keys: Iterable[str]) -> dict[str, tuple[str, str | None]]:
        """key -> (status, error) of the stored runs among `keys`."""
        wanted = list(dict.fromkeys(keys))
        states: dict[str, tuple[str, str | None]] = {}
        for start in range(0, len(wanted), 500):  # stay under SQLite's bound-parameter limit
            chunk = wanted[start : start + 500]
            sql = f"SELECT key, status, error FROM runs WHERE key IN ({','.join('?' for _ in chunk)})"
            states.update({key: (status, error) for key, status, error in self.db.execute(sql, chunk).fetchall()})
        return states

    def stored_fingerprint(self, task: str, version: str, source_signature: str) -> str | None:
        row = self.db.execute(
            "SELECT fingerprint FROM tasks WHERE name = ? AND version = ? AND source_signature = ? "
            "ORDER BY rowid DESC LIMIT 1",
            [task, version, source_signature],
        ).fetchone()
        return row[0] if row else None

    def task_hygiene(self) -> dict[str, str | None]:
        """Task name -> stored hygiene report JSON of the data its newest run used."""
        rows = self.db.execute(
            "SELECT t.name, t.hygiene_json FROM tasks t JOIN runs r ON r.task = t.name AND r.task_version = t.version "
            "AND r.data_fingerprint = t.fingerprint GROUP BY t.name, t.version, t.fingerprint ORDER BY max(r.finished_at)"
        ).fetchall()
        return {name: report for name, report in rows}

    def task_data_versions(self) -> dict[str, list[tuple[str, str, int]]]:
        """Task name -> [(version, data fingerprint, runs)] of its runs, oldest data first: more than one entry
        means runs of that task name were computed on different data."""
        rows = self.db.execute(
            "SELECT task, task_version, data_fingerprint, count(*) FROM runs "
            "GROUP BY task, task_version, data_fingerprint ORDER BY task, min(finished_at)"
        ).fetchall()
        out: dict[str, list[tuple[str, str, int]]] = {}
        for task, version, fingerprint, n in rows:
            out.setdefault(task, []).append((version, fingerprint, int(n)))
        return out

    def runs(self, **where: Any) -> list[dict[str, Any]]:
        """Run rows (newest first) filtered by equality on columns, e.g. runs(task='bbc-news', status='done')."""
        clauses = " AND ".join(f"{col} = :{col}" for col in where) or "1"
        return list(self.db.query(f"SELECT * FROM runs WHERE {clauses} ORDER BY finished_at DESC", where))

    def metrics(self, run_key: str) -> dict[str, dict[str, float | None]]:
        return {
            r["name"]: {"value": r["value"], "ci_low": r["ci_low"], "ci_high": r["ci_high"]}
            for r in self.db.query("SELECT * FROM metrics WHERE run_key = ?", [run_key])
        }

    def predictions(self, run_key: str) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(example_ids, labels, preds) sorted by example id, for paired comparisons."""
        rows = self.db.execute(
            "SELECT example_id, label, pred FROM predictions WHERE run_key = ? ORDER BY example_id", [run_key]
        ).fetchall()
        ids = [r[0] for r in rows]
        return ids, np.array([r[1] for r in rows], dtype=np.int64), np.array([r[2] for r in rows], dtype=np.int64)

    def class_scores(self, run_key: str) -> ClassScores | None:
        """The run's (n_examples, n_labels) class-score matrix, rows in example-id order (as predictions()
        returns them), or None for a run stored without scores (older stores, failed runs)."""
        if "class_scores" not in self.db.table_names():  # an old store opened read-only
            return None
        row = self.db.execute(
            "SELECT kind, n_examples, n_labels, scores FROM class_scores WHERE run_key = ?", [run_key]
        ).fetchone()
        if row is None:
            return None
        kind, n, k, blob = row
        values = np.frombuffer(blob, dtype=SCORE_DTYPE)
        if kind not in SCORE_KINDS or values.size != n * k:
            raise HarnessError(
                f"{self.path}: class scores of run {run_key} are damaged (kind {kind!r}, {values.size} values "
                f"for {n} x {k}); delete the run and re-run it."
            )
        return ClassScores(kind, values.reshape(n, k))

    def timing(self, run_key: str) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM timings WHERE run_key = ?", [run_key]))
        return rows[0] if rows else None

    def results_table(self, task: str | None = None) -> list[dict[str, Any]]:
        """One row per stored run with its timing and `metrics` (id -> value and CI, every single-number
        metric stored for it) and `metric_notes` (id -> why a declared metric does not apply)."""
        sql = """
        SELECT r.key, r.suite, r.label, r.model, r.task, r.task_version, r.data_fingerprint, r.protocol, r.seed,
               r.status, r.error, r.finished_at, r.hardware, r.selected_json, r.config_json, r.model_weights,
               t.p50_ms, t.p95_ms, t.p99_ms, t.items_per_s, t.peak_mem_mb, t.batch_size, t.device,
               t.n_timed, t.p50_rel_ci, t.contended, t.run_wait_frac, t.others_cpu_frac, t.weights_mb, t.load_s,
               m.params, m.family
        FROM runs r
        LEFT JOIN timings t ON t.run_key = r.key
        LEFT JOIN models m ON m.name = r.model
        WHERE (:task IS NULL OR r.task = :task)
        ORDER BY r.task, r.protocol, r.model
        """
        rows = list(self.db.query(sql, {"task": task}))
        metrics: dict[str, dict[str, dict[str, float | None]]] = {}
        metric_sql = """SELECT x.run_key, x.name, x.value, x.ci_low, x.ci_high FROM metrics x JOIN runs r ON r.key = x.run_key
                        WHERE instr(x.name, '/') = 0 AND (:task IS NULL OR r.task = :task)"""
        for key, name, value, lo, hi in self.db.execute(metric_sql, {"task": task}).fetchall():
            metrics.setdefault(key, {})[name] = {"value": value, "ci_low": lo, "ci_high": hi}
        for row in rows:
            row["metrics"] = metrics.get(row["key"], {})
            try:
                notes = json.loads(row["selected_json"] or "{}").get("metrics_not_applicable") or {}
            except (ValueError, AttributeError):
                notes = {}
            row["metric_notes"] = notes if isinstance(notes, dict) else {}
        return rows

    def task_specs(self) -> dict[str, dict[str, Any]]:
        """Task name -> its stored spec (tasks.spec_json: declared metrics, main metric) of its newest version."""
        rows = self.db.execute(
            "SELECT t.name, t.spec_json FROM tasks t JOIN runs r ON r.task = t.name AND r.task_version = t.version "
            "GROUP BY t.name, t.version ORDER BY max(r.finished_at)"
        ).fetchall()
        out: dict[str, dict[str, Any]] = {}
        for name, raw in rows:
            try:
                spec = json.loads(raw) if raw else {}
            except ValueError:
                spec = {}
            out[name] = spec if isinstance(spec, dict) else {}
        return out


def _has_sqlite_header(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(len(SQLITE_HEADER)) == SQLITE_HEADER


def score_blob(example_ids: Sequence[str], class_scores: np.ndarray) -> bytes:
    """Little-endian float32, row-major, rows sorted by example id (the order predictions() reads)."""
    order = sorted(range(len(example_ids)), key=example_ids.__getitem__)
    return np.ascontiguousarray(np.asarray(class_scores)[order], dtype=SCORE_DTYPE).tobytes()


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return repr(obj)
