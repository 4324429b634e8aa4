"""The one reader of a results database: read-only, a handful of query shapes, typed rows (store.rows).

The site reads in bulk (snapshot: one scan of the runs with their timing rows joined in, one scan of the
metrics joined in Python, column subsets, no per-example rows); pages that need per-example predictions or
per-class values ask for the few runs they show (class_details, predictions). show, compare, pick, export
and run's planner read through the same class. Nothing here writes: a store may sit on a read-only mount
or be in use by a running sweep.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from types import FunctionType
from typing import Any

import numpy as np

from harness.errors import HarnessError, close_match
from harness.metrics.core import BOUNDS_SLACK, bounds_text, within_bounds
from harness.records import ClassScores, MetricValue, ScoreKind, TimingRecord
from harness.store.rows import (
    ClassDetail,
    EnvGroup,
    ExamplePredictions,
    HardwareMeta,
    ModelMeta,
    PredictionRow,
    RunColumns,
    RunResult,
    RunRow,
    RunState,
    StoreSnapshot,
    TaskMeta,
    Timing,
)
from harness.store.run_cache import RunCache
from harness.store.schema import (
    FINISHED,
    SCHEMA,
    SCORE_DTYPE,
    SCORE_KINDS,
    column_info,
    connect_readonly,
    numeric_columns,
    required_columns,
)

# The metrics core (it loads sklearn) and the data package are imported in the methods that interpret
# rows, so that importing the store stays light (every CLI command imports it).


# The order of StoreSnapshot.runs: task, protocol, model, seed, finished_at, key (RunRow fields). The key
# settles the rare full tie, so that a snapshot read in full and one merged from a RunCache agree.
_RUN_ORDER = itemgetter(4, 7, 3, 8, 12, 0)


# The tables whose values the checks name, each with the column and words that name one of its rows.
_ROW_NAMES = (
    ("runs", "key", "run {}"),
    ("metrics", "run_key", "run {}"),
    ("timings", "run_key", "run {}"),
    ("models", "name", "model {!r}"),
    ("predictions", "run_key", "run {}"),
    ("class_scores", "run_key", "run {}"),
)

_ONLY_KEYS = " {column} IN (SELECT value FROM json_each(?))"  # WHERE/AND clause: keys as one JSON array


@dataclass(frozen=True)
class RunFilter:
    """Which stored runs show and export read: those of these tasks, models and protocols (empty: all)."""

    tasks: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    protocols: tuple[str, ...] = ()


def _reads_cleanly(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method` with SQLite's errors (a page damaged after the checks at open, a table gone) turned into
    one HarnessError naming the file."""

    @functools.wraps(method)
    def read(self: StoreReader, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise store_error(self.path, exc, "read") from None
        except StoredValueError as exc:
            raise self.value_error(exc) from None
        except (TypeError, ValueError) as exc:  # text where a number belongs: SQLite columns are not typed
            found = self._stored_value_problem()  # which value, which column, which run
            if found is not None:
                raise self.value_error(found) from None
            raise HarnessError(
                f"{self.path} holds a value this harness cannot read ({type(exc).__name__}: {exc}); was it edited "
                "by hand or written by another program? Re-run the affected suite into a new --db."
            ) from None

    return read


# SQLite failures that say nothing about the file itself: what to do instead of checking it for damage.
_NOT_THE_FILE = {
    sqlite3.SQLITE_FULL: "the disk holding it is full. Make room, or pass --db with a file on another disk",
    sqlite3.SQLITE_READONLY: "it is read-only (the file's or its folder's permissions, or a read-only disk). "
    "Make it writable, or pass --db with another file",
    sqlite3.SQLITE_BUSY: "another process kept it locked (another harness command writing to it?). Run again once "
    "that one has finished",
    sqlite3.SQLITE_IOERR: "the disk reported an I/O error. Check the disk, or pass --db with a file on another one",
}


def store_error(path: Path, exc: sqlite3.DatabaseError, doing: str) -> HarnessError:
    """SQLite failing on a store past the checks at open (a damaged page, a table gone; a full disk, a lock held
    too long), as one paragraph. A failed write rolled its transaction back: nothing of it was stored."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF  # extended codes (SQLITE_IOERR_WRITE...) share the low byte
    if primary in _NOT_THE_FILE:
        rolled_back = " Nothing of the failed write was stored." if doing == "written" else ""
        return HarnessError(f"{path} cannot be {doing} (SQLite: {exc}): {_NOT_THE_FILE[primary]}.{rolled_back}")
    return HarnessError(
        f"{path} cannot be {doing} (SQLite: {exc}): the file is damaged or is not a harness results database "
        f"(`sqlite3 {path} 'PRAGMA integrity_check'` checks it). Pass --db with another file, or re-run the "
        "suite into a new one."
    )


def _queries_read_cleanly(cls: type[StoreReader]) -> type[StoreReader]:
    """Every public query method of the reader (and __enter__, which starts the read) reads cleanly; close
    and the classmethods aside."""
    for name, method in list(vars(cls).items()):
        if isinstance(method, FunctionType) and (not name.startswith("_") or name == "__enter__") and name != "close":
            setattr(cls, name, _reads_cleanly(method))
    return cls


@_queries_read_cleanly
class StoreReader:
    """The one way to read a results database, read-only (see schema.connect_readonly); use as a context
    manager to read every query in one transaction. `Store.reader` reads a store being written the same
    way, through the writer's connection."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.conn = connect_readonly(self.path)
        try:
            self.conn.execute("SELECT key, status, config_json FROM runs LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise HarnessError(
                f"{self.path} is not a harness results database ({exc}); pass --db with the file `harness run` wrote."
            ) from exc
        try:
            if (found := self._null_text()) is not None:
                raise self.value_error(found)
        except BaseException:
            self.conn.close()
            raise

    @classmethod
    def over(cls, conn: sqlite3.Connection, path: Path) -> StoreReader:
        """A reader over an open connection (the writer's): nothing is checked, nothing closed."""
        reader = cls.__new__(cls)
        reader.path, reader.conn = Path(path), conn
        return reader

    @classmethod
    def open_or_empty(cls, path: str | Path) -> StoreReader:
        """A reader of `path`, or of an empty in-memory store when no file exists there yet (harness run
        --dry-run on a fresh checkout): nothing is created either way."""
        if Path(path).exists():
            return cls(path)
        conn = sqlite3.connect(":memory:", isolation_level=None)
        conn.executescript(SCHEMA)
        return cls.over(conn, Path(path))

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> StoreReader:
        # One read transaction for every query: a sweep writing meanwhile cannot make them disagree.
        self.conn.execute("BEGIN")
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()

    def snapshot(self, cache: RunCache | None = None) -> StoreSnapshot:
        """Everything the site shows but per-example rows; `cache`: read the runs through it (see run_cache)."""
        runs = self._runs() if cache is None else cache.runs(self._run_states(), self._runs, _RUN_ORDER)
        return StoreSnapshot(
            runs=tuple(runs),
            models={m.name: m for m in self._models()},
            tasks={(t.name, t.version, t.fingerprint): t for t in self._tasks()},
            hardware=self.hardware_meta(),
            environments=tuple(self._environments()),
            task_groups=self._task_groups(),
            protocol_configs=self._protocol_configs(),
        )

    def signature(self) -> str:
        """A digest of everything the site shows: every run's identity and state (a run's metrics,
        predictions and timing are written with it in one transaction, and a re-run changes its
        finished_at), and the small metadata tables in full. One scan, no per-run Python work."""
        h = hashlib.sha256()
        row = self.conn.execute(
            "SELECT COUNT(*), group_concat(key || '|' || status || '|' || finished_at, ',') FROM runs"
        ).fetchone()
        h.update(repr(row).encode())
        for table in ("models", "tasks", "hardware", "task_groups"):
            if self._has_table(table):
                for r in self.conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2"):
                    h.update(repr(r).encode())
        return h.hexdigest()

    # ---- the site: bulk queries --------------------------------------------------------------------------------

    def _run_states(self) -> list[tuple[str, str, str]]:
        return self.conn.execute("SELECT key, status, finished_at FROM runs").fetchall()

    def _runs(self, keys: list[str] | None = None) -> list[RunRow]:
        # Each run's timing row is joined in (one index lookup per run, in the order both were written);
        # its metrics come from one sequential scan joined here (several LEFT JOINs into `metrics` cost one
        # random index lookup per run and metric, which dominates on a large store). Rows are built as plain
        # tuples of the row type (tuple.__new__): a NamedTuple's keyword constructor costs more than the read.
        # They are sorted here, not by SQL: SQLite's sorter copies every selected column (0.4 s more than this
        # sort at 150k runs). Text sorts the same (SQLite's BINARY collation compares UTF-8 bytes, which
        # order as Python compares code points). keys: only the runs with these keys (None: all).
        metrics = self._headline_metrics(keys)
        try:
            return self._run_rows(metrics, checked=False, keys=keys)
        except sqlite3.OperationalError as exc:
            if "malformed JSON" not in str(exc):
                raise
            return self._run_rows(metrics, checked=True, keys=keys)

    def check_stored_numbers(self) -> None:
        """A StoredValueError (as a HarnessError naming the file) naming the table, column, row and value when a
        numeric column of the store holds text or a blob (a hand-edited store), or a class-score blob does not
        hold its n_examples x n_labels scores. The bulk reads trust most column types; this scan of every table
        costs seconds on a large store, so it runs only to explain a read or a site build that failed."""
        found = self._stored_value_problem()
        if found is not None:
            raise found

    def value_error(self, exc: StoredValueError) -> HarnessError:
        """`exc` as the user reads it: the file, the value, what to do."""
        return HarnessError(
            f"{self.path} holds a value this harness cannot read: {exc}. Was it edited by hand or written by "
            "another program? Re-run the affected suite into a new --db."
        )

    @_reads_cleanly
    def _null_text(self) -> StoredValueError | None:
        """A NULL run key, or a NULL in a NOT NULL text column of a table rebuilt without the constraint (by
        hand: SQLite enforces it otherwise), which every command took as a name (a TypeError deep in the site,
        compare or pick; show and export printed None). Only such tables are scanned: a store this harness
        wrote costs one index lookup. (NULL numbers are named where they are read.)"""
        for (rowid,) in self.conn.execute("SELECT rowid FROM runs WHERE key IS NULL LIMIT 1"):
            return StoredValueError("runs", "key", f"row {rowid}", None, "the run's key (text)")
        for table, row_key, describe in _ROW_NAMES:
            texts = {name for name, sql_type, _ in column_info(table) if sql_type == "TEXT"} & required_columns(table)
            loose = [row[1] for row in self.conn.execute(f"PRAGMA table_info({table})") if row[1] in texts and not row[3]]
            if not loose:
                continue
            test = " OR ".join(f"{c} IS NULL" for c in loose)
            for row in self.conn.execute(f"SELECT {row_key}, {', '.join(loose)} FROM {table} WHERE {test} LIMIT 1"):
                column = next(c for c, v in zip(loose, row[1:], strict=True) if v is None)
                return StoredValueError(table, column, describe.format(row[0]), None, "text (the column is NOT NULL)")
        return None

    def _stored_value_problem(self) -> StoredValueError | None:
        try:
            for table, row_key, describe in _ROW_NAMES:
                present = {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}
                columns = [c for c in numeric_columns(table) if c in present]
                if not columns:
                    continue
                test = " OR ".join(f"typeof({c}) NOT IN ('integer', 'real', 'null')" for c in columns)
                extra = ", name" if table == "metrics" else ", example_id" if table == "predictions" else ""
                sql = f"SELECT {row_key}{extra}, {', '.join(columns)} FROM {table} WHERE {test} LIMIT 1"
                for row in self.conn.execute(sql):
                    where = describe.format(row[0])
                    if extra:
                        where += f" ({'metric' if table == 'metrics' else 'example'} {row[1]!r})"
                    values = row[2:] if extra else row[1:]
                    column, value = next(
                        (c, v) for c, v in zip(columns, values, strict=True) if v is not None and not _is_number(v)
                    )
                    return StoredValueError(table, column, where, value, "a number")
            if self._has_table("class_scores"):
                sql = f"""SELECT run_key, kind, n_examples, n_labels, scores FROM class_scores
                          WHERE typeof(scores) != 'blob' OR length(scores) != {SCORE_DTYPE.itemsize} * n_examples * n_labels
                          OR kind NOT IN ({', '.join(f"'{k}'" for k in SCORE_KINDS)}) LIMIT 1"""
                for row in self.conn.execute(sql):
                    try:
                        _score_matrix(*row)
                    except StoredValueError as exc:
                        return exc
        except sqlite3.DatabaseError:
            return None
        return None

    def _run_rows(
        self, metrics: Mapping[str, Mapping[str, MetricValue]], checked: bool, keys: list[str] | None = None
    ) -> list[RunRow]:
        """The runs, read as _runs says. Unless `checked`, config_json and selected_json are parsed once, by
        json_extract alone, which fails on malformed JSON (a store this harness wrote has none: 0.4 s less at
        150k runs of real configs); `checked` parses them with json_valid first, which reads malformed
        JSON as absent."""
        config, selected = "r.config_json", "r.selected_json"
        if checked:
            config = f"CASE WHEN json_valid({config}) THEN {config} END"
            selected = f"CASE WHEN json_valid({selected}) THEN {selected} END"
        # (columns an older store lacks read as NULL: see schema.connect_readonly)
        sql = f"""
        SELECT r.key, r.suite, json_extract({config}, '$.suite_path'),
               r.model, r.task, r.task_version, r.data_fingerprint, r.protocol, r.seed, r.status, r.error,
               r.started_at, r.finished_at, r.duration_s, r.harness_version, r.git_hash,
               CASE WHEN instr(r.selected_json, 'metrics_not_applicable')
                    THEN json_extract({selected}, '$.metrics_not_applicable') END,
               CASE WHEN instr(r.selected_json, '"warnings"') THEN json_extract({selected}, '$.warnings') END,
               t.hardware, t.device, t.batch_size, t.p50_ms, t.p95_ms, t.p99_ms, t.items_per_s, t.peak_mem_mb,
               t.params, t.n_timed, t.contended, t.run_wait_frac, t.others_cpu_frac, t.weights_mb, t.load_s
        FROM runs r LEFT JOIN timings t ON t.run_key = r.key
        """ + ("" if keys is None else _ONLY_KEYS.format(column="WHERE r.key"))
        new = tuple.__new__
        no_metrics: dict[str, MetricValue] = {}
        no_notes: dict[str, str] = {}
        out: list[RunRow] = []
        append = out.append
        get_metrics = metrics.get
        shared: dict[Any, Any] = {}
        one = shared.setdefault
        fromisoformat = datetime.fromisoformat
        for row in self.conn.execute(sql, () if keys is None else (json.dumps(keys),)):
            key, suite_path, notes, cautions, hardware = row[0], row[2], row[16], row[17], row[18]
            if suite_path.__class__ is not str or not suite_path:
                suite_path = str(suite_path) if isinstance(suite_path, (int, float)) and str(suite_path) else None
            if notes:
                notes = {str(k): str(v) for k, v in _json_object(notes).items()} or no_notes
            if cautions:
                cautions = tuple(str(w) for w in _json_list(cautions))
            try:  # the few columns that can hold a wrong value the site would show: a quick test of each row
                plausible = (
                    row[8].__class__ is int and row[13].__class__ is float and 0.0 <= row[13] < _INF
                    and row[11][-6:] == row[12][-6:] == "+00:00" and row[11][4] == row[12][4] == "-"
                    and fromisoformat(row[11]).year > 0 and fromisoformat(row[12]).year > 0
                )  # fmt: skip
            except (TypeError, ValueError, IndexError):
                plausible = False
            if not plausible:  # the full check names what is wrong (or passes, e.g. an integer duration)
                _run_numbers(
                    {"key": key, "seed": row[8], "started_at": row[11], "finished_at": row[12], "duration_s": row[13]}
                )
            if hardware is None:
                timing = None
            else:
                t = row[18:]
                if not _plausible_timing(t):
                    _timing_numbers(key, dict(zip(Timing._fields, t, strict=True)))
                timing = new(Timing, (one(hardware, hardware), one(t[1], t[1]), *t[2:]))
            append(
                new(
                    RunRow,
                    (
                        key, one(row[1], row[1]), one(suite_path, suite_path), one(row[3], row[3]), one(row[4], row[4]),
                        one(row[5], row[5]), one(row[6], row[6]), one(row[7], row[7]), int(row[8]), one(row[9], row[9]),
                        row[10], row[11], row[12], float(row[13]), one(row[14], row[14]), one(row[15], row[15]),
                        get_metrics(key, no_metrics),
                        timing,
                        notes or no_notes,
                        cautions or (),
                    ),
                )
            )  # fmt: skip
        out.sort(key=_RUN_ORDER)
        return out

    def _headline_metrics(self, keys: list[str] | None = None) -> dict[str, dict[str, MetricValue]]:
        """run key -> every single-number metric of the run by name (per-class values, "<id>/<label>", are
        loaded per page). A run's metrics are written together, so consecutive rows mostly share a key."""
        metrics: dict[str, dict[str, MetricValue]] = {}
        new = tuple.__new__
        last, current = None, {}
        bounds = self._metric_bounds()
        # A quick test of each value (and CI) against its metric's range; finite ends stand for open ones, so
        # that an infinite value fails it too. A row that fails goes to _numbers, which names what is wrong.
        quick = {name: (max(b[0], -_BIG), min(b[1], _BIG)) for name, b in bounds.items() if b is not None}
        get_quick = quick.get
        sql = "SELECT run_key, name, value, ci_low, ci_high FROM metrics WHERE instr(name, '/') = 0"
        if keys is not None:
            sql += _ONLY_KEYS.format(column="AND run_key")
        for row in self.conn.execute(sql, () if keys is None else (json.dumps(keys),)):
            key, name, value, ci_low, ci_high = row
            if key != last:
                last = key
                current = metrics.get(last) or metrics.setdefault(last, {})
            lo, hi = get_quick(name, _OPEN)
            try:
                plausible = lo <= value <= hi and (lo <= ci_low <= ci_high <= hi if ci_low is not None else ci_high is None)
            except TypeError:  # text, a blob or NULL
                plausible = False
            if not plausible:
                _numbers(key, name, value, ci_low, ci_high, bounds.get(name))
            current[name] = new(MetricValue, row[1:])
        return metrics

    def _metric_bounds(self) -> dict[str, tuple[float, float] | None]:
        """Metric id -> the range its values lie in (MetricDef.bounds), as the stored tasks declare their metrics;
        None for a metric without one. An id two tasks declare with different ranges gets the wider one."""
        from harness.metrics.core import described_bounds
        from harness.metrics.registry import stored_task_metrics

        out: dict[str, tuple[float, float] | None] = {}
        for (spec,) in self.conn.execute("SELECT DISTINCT spec_json FROM tasks"):
            for d in stored_task_metrics(_json_object(spec))[0]:
                metric_id, b = str(d["id"]), described_bounds(d)
                if metric_id in out and out[metric_id] != b:
                    old = out[metric_id]
                    b = None if b is None or old is None else (min(b[0], old[0]), max(b[1], old[1]))
                out[metric_id] = b
        return out

    def _models(self) -> Iterator[ModelMeta]:
        sql = "SELECT name, family, modality, source, revision, params, license, description, feature_dim FROM models"
        for r in self.conn.execute(sql):
            yield ModelMeta(
                r[0], r[1] or "", r[2] or "", r[3] or "", r[4], _model_params(r[0], r[5]), r[6] or "", r[7] or "", r[8]
            )

    def _tasks(self) -> Iterator[TaskMeta]:
        from harness.data.hygiene import leak_summary
        from harness.metrics import MetricInfo
        from harness.metrics.registry import stored_task_metrics

        sql = """SELECT name, version, modality, labels_json, n_train, n_validation, n_test, fingerprint,
                        source, license, citation, spec_json, hygiene_json FROM tasks ORDER BY rowid"""
        for r in self.conn.execute(sql):
            spec = _json_object(r[11])
            specs, main = stored_task_metrics(spec)
            yield TaskMeta(
                name=r[0],
                version=r[1],
                modality=r[2] or "",
                labels=tuple(str(x) for x in _json_list(r[3])),
                n_train=r[4],
                n_validation=r[5],
                n_test=r[6],
                fingerprint=r[7],
                source=r[8] or "",
                license=r[9] or "",
                citation=r[10] or "",
                description=str(spec.get("description") or ""),
                homepage=str(spec.get("homepage") or ""),
                main_metric=main,
                leak_warning=leak_summary(r[12]),
                metrics=tuple(MetricInfo.from_description(d) for d in specs),
                metric_specs=specs,
            )

    def _task_groups(self) -> dict[str, tuple[str, ...]]:
        if not self._has_table("task_groups"):  # stores written before suites could declare groups
            return {}
        out: dict[str, list[str]] = {}
        for name, task in self.conn.execute("SELECT DISTINCT name, task FROM task_groups ORDER BY name, task"):
            out.setdefault(name, []).append(task)
        return {k: tuple(v) for k, v in out.items()}

    def _protocol_configs(self) -> dict[str, dict[str, Any]]:
        """protocol name -> the protocol part of one of its runs' config (a suite gives a protocol name
        one configuration: k_shot of a probe variant, the step budget of a fine-tune)."""
        sql = """SELECT protocol, CASE WHEN json_valid(config_json) THEN json_extract(config_json, '$.protocol') END
                 FROM runs WHERE rowid IN (SELECT MAX(rowid) FROM runs GROUP BY protocol)"""
        out = {}
        for name, raw in self.conn.execute(sql):
            out[name] = _json_object(raw) if isinstance(raw, str) else {}
        return out

    def _has_table(self, name: str) -> bool:
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return self.conn.execute(sql, (name,)).fetchone() is not None

    def _hardware(self) -> Iterator[HardwareMeta]:
        for r in self.conn.execute(
            "SELECT fingerprint, cpu, gpu, torch, cuda, threads, platform FROM hardware"
        ):
            yield HardwareMeta(r[0], r[1] or "", r[2], r[3], r[4], r[5], r[6] or "")

    def _environments(self) -> Iterator[EnvGroup]:
        sql = """SELECT env_json, harness_version, git_hash, COUNT(*), MIN(started_at), MAX(finished_at)
                 FROM runs GROUP BY env_json, harness_version, git_hash ORDER BY MAX(finished_at) DESC"""
        for r in self.conn.execute(sql):
            yield EnvGroup(_json_object(r[0]), r[1] or "", r[2], r[3], r[4], r[5])

    # ---- targeted queries for the few runs pages show in depth ---------------------------------------

    def class_details(self, runs: Iterable[tuple[str, tuple[str, ...]]]) -> dict[str, ClassDetail]:
        """Per-class F1 and confusion for (run key, label names) pairs, in two queries."""
        labels_by_key = dict(runs)
        if not labels_by_key:
            return {}
        with self._keys_table(labels_by_key) as table:
            f1: dict[str, dict[str, float]] = {k: {} for k in labels_by_key}
            sql = f"SELECT run_key, name, value FROM metrics WHERE run_key IN (SELECT key FROM {table}) AND name LIKE 'f1/%'"
            bounds = self._metric_bounds().get("f1")
            for key, name, value in self.conn.execute(sql):
                _numbers(key, name, value, None, None, bounds)
                f1[key][name[3:]] = float(value)
            confusion: dict[str, list[list[int]] | None] = {}
            for key, raw in self.conn.execute(
                f"SELECT key, confusion_json FROM runs WHERE key IN (SELECT key FROM {table})"
            ):
                cm = _json_list(raw)
                confusion[key] = cm if cm and all(isinstance(row, list) for row in cm) else None
        return {
            key: ClassDetail({lab: f1[key].get(lab, float("nan")) for lab in labels}, confusion.get(key))
            for key, labels in labels_by_key.items()
        }

    def predictions(self, keys: Iterable[str], with_scores: bool = True) -> dict[str, ExamplePredictions]:
        """Per-example predictions (and class scores) of the given runs, ordered by example id, for paired
        tests."""
        wanted = dict.fromkeys(keys)
        if not wanted:
            return {}
        rows: dict[str, tuple[list[str], list[int], list[int]]] = {k: ([], [], []) for k in wanted}
        with self._keys_table(wanted) as table:
            sql = f"""SELECT run_key, example_id, label, pred FROM predictions
                      WHERE run_key IN (SELECT key FROM {table}) ORDER BY run_key, example_id"""
            for key, eid, label, pred in self.conn.execute(sql):
                ids, ys, ps = rows[key]
                ids.append(eid)
                ys.append(label)
                ps.append(pred)
            scores = self._class_scores(table) if with_scores else {}
            n_labels = self._run_label_counts(table)
        out = {}
        for key, (ids, ys, ps) in rows.items():
            if not ids:
                continue
            matrix, kind = scores.get(key, (None, None))
            if matrix is not None and matrix.shape[0] != len(ids):
                matrix, kind = None, None
            n = n_labels.get(key)
            out[key] = ExamplePredictions(
                tuple(ids), _class_indices(key, "label", ids, ys, n), _class_indices(key, "pred", ids, ps, n), matrix, kind
            )
        return out

    def _run_label_counts(self, table: str) -> dict[str, int]:
        """Run key -> its task's label count, for the runs whose keys `table` holds (see _task_label_counts)."""
        counts = self._task_label_counts()
        sql = f"SELECT key, task, task_version, data_fingerprint FROM runs WHERE key IN (SELECT key FROM {table})"
        out = {}
        for key, task, version, fingerprint in self.conn.execute(sql):
            n = counts.get((task, version, fingerprint), counts.get((task, version, None)))
            if n is not None:
                out[key] = n
        return out

    def _class_scores(self, table: str) -> dict[str, tuple[np.ndarray, ScoreKind]]:
        if not self._has_table("class_scores"):
            return {}
        out = {}
        sql = f"SELECT run_key, kind, n_examples, n_labels, scores FROM class_scores WHERE run_key IN (SELECT key FROM {table})"
        for key, kind, n, k, blob in self.conn.execute(sql):
            out[key] = (_score_matrix(key, kind, n, k, blob), kind)
        return out

    # ---- planning a sweep (harness run) ----------------------------------------------------------------

    def finished_keys(self, keys: Iterable[str] | None = None) -> set[str]:
        placeholders = ",".join("?" for _ in FINISHED)
        rows = self.conn.execute(f"SELECT key FROM runs WHERE status IN ({placeholders})", list(FINISHED)).fetchall()
        found = {r[0] for r in rows}
        return found if keys is None else found & set(keys)

    def run_states(self, keys: Iterable[str]) -> dict[str, RunState]:
        """key -> (status, error, finished_at) of the stored runs among `keys` (keys with no run are absent)."""
        wanted = list(dict.fromkeys(keys))
        states: dict[str, RunState] = {}
        for start in range(0, len(wanted), 500):  # stay under SQLite's bound-parameter limit
            chunk = wanted[start : start + 500]
            sql = f"SELECT key, status, error, finished_at FROM runs WHERE key IN ({','.join('?' for _ in chunk)})"
            states.update({row[0]: RunState(*row[1:]) for row in self.conn.execute(sql, chunk).fetchall()})
        return states

    def stored_fingerprint(self, task: str, version: str, source_signature: str) -> str | None:
        row = self.conn.execute(
            "SELECT fingerprint FROM tasks WHERE name = ? AND version = ? AND source_signature = ? "
            "ORDER BY rowid DESC LIMIT 1",
            [task, version, source_signature],
        ).fetchone()
        return row[0] if row else None

    # ---- harness show ----------------------------------------------------------------------------------

    def task_hygiene(self) -> dict[str, str | None]:
        """Task name -> stored hygiene report JSON of the data its newest run used."""
        rows = self.conn.execute(
            "SELECT t.name, t.hygiene_json FROM tasks t JOIN runs r ON r.task = t.name AND r.task_version = t.version "
            "AND r.data_fingerprint = t.fingerprint GROUP BY t.name, t.version, t.fingerprint ORDER BY max(r.finished_at)"
        ).fetchall()
        return {name: report for name, report in rows}

    def task_data_versions(self) -> dict[str, list[tuple[str, str, int]]]:
        """Task name -> [(version, data fingerprint, runs)] of its runs, oldest data first: more than one entry
        means runs of that task name were computed on different data."""
        rows = self.conn.execute(
            "SELECT task, task_version, data_fingerprint, count(*) FROM runs "
            "GROUP BY task, task_version, data_fingerprint ORDER BY task, min(finished_at)"
        ).fetchall()
        out: dict[str, list[tuple[str, str, int]]] = {}
        for task, version, fingerprint, n in rows:
            out.setdefault(task, []).append((version, fingerprint, int(n)))
        return out

    def results_table(self, task: str | None = None) -> list[dict[str, Any]]:
        """One row per stored run with its timing and `metrics` (id -> value and CI, every single-number
        metric stored for it), `metric_notes` (id -> why a declared metric does not apply) and `warnings` (what
        the protocol recorded about the result's reliability, e.g. a probe that did not converge)."""
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
        rows = self._dicts(sql, {"task": task})
        timing_columns = [c for c in numeric_columns("timings") if c != "params"]  # (params: the models row's)
        for row in rows:
            _run_numbers({"key": row["key"], "seed": row["seed"], "finished_at": row["finished_at"]})
            _timing_numbers(row["key"], {c: row[c] for c in timing_columns if c in row}, row["device"] is not None)
            _model_params(row["model"], row["params"])
        metrics: dict[str, dict[str, dict[str, float | None]]] = {}
        bounds = self._metric_bounds()
        metric_sql = """SELECT x.run_key, x.name, x.value, x.ci_low, x.ci_high FROM metrics x JOIN runs r ON r.key = x.run_key
                        WHERE instr(x.name, '/') = 0 AND (:task IS NULL OR r.task = :task)"""
        for key, name, value, lo, hi in self.conn.execute(metric_sql, {"task": task}).fetchall():
            _numbers(key, name, value, lo, hi, bounds.get(name))
            metrics.setdefault(key, {})[name] = {"value": value, "ci_low": lo, "ci_high": hi}
        for row in rows:
            row["metrics"] = metrics.get(row["key"], {})
            try:
                selected = json.loads(row["selected_json"] or "{}")
                notes, cautions = selected.get("metrics_not_applicable") or {}, selected.get("warnings") or []
            except (ValueError, AttributeError):
                notes, cautions = {}, []
            row["metric_notes"] = notes if isinstance(notes, dict) else {}
            row["warnings"] = [str(w) for w in cautions] if isinstance(cautions, list) else []
        return rows

    def task_specs(self) -> dict[str, dict[str, Any]]:
        """Task name -> its stored spec (tasks.spec_json: declared metrics, main metric) of its newest version."""
        rows = self.conn.execute(
            "SELECT t.name, t.spec_json FROM tasks t JOIN runs r ON r.task = t.name AND r.task_version = t.version "
            "GROUP BY t.name, t.version ORDER BY max(r.finished_at)"
        ).fetchall()
        return {name: _json_object(raw) for name, raw in rows}

    def models(self) -> dict[str, ModelMeta]:
        """Model name -> its stored metadata (harness models SUITE)."""
        return {m.name: m for m in self._models()}

    def stored_names(self, column: str) -> set[str]:
        """Every task, model or protocol name some stored run has (to check a filter names one)."""
        if column not in ("task", "model", "protocol"):  # a column name, never a user's text, goes into the SQL
            raise ValueError(column)
        return {row[0] for row in self.conn.execute(f"SELECT DISTINCT {column} FROM runs")}

    def check_filter(self, where: RunFilter) -> None:
        """Each name a filter gives is one some stored run has: a misspelt --task is an error with a close match,
        not an empty export (names that all exist but match no run together are an empty export)."""
        for option, names, column in (
            ("--task", where.tasks, "task"),
            ("--model", where.models, "model"),
            ("--protocol", where.protocols, "protocol"),
        ):
            if not names:
                continue
            stored = self.stored_names(column)
            for name in names:
                if name not in stored:
                    hint = close_match(name, sorted(stored))
                    if not hint and len(stored) <= 12:
                        hint = f" Stored: {', '.join(map(repr, sorted(stored))) or 'none'}."
                    raise HarnessError(f"{option} {name!r}: no run in {self.path} has that {column}.{hint}")

    # ---- one run -----------------------------------------------------------------------------------------

    def runs(self, **where: Any) -> list[dict[str, Any]]:
        """Run rows (newest first) filtered by equality on columns, e.g. runs(task='bbc-news', status='done')."""
        clauses = " AND ".join(f"{col} = :{col}" for col in where) or "1"
        return self._dicts(f"SELECT * FROM runs WHERE {clauses} ORDER BY finished_at DESC", where)

    def metrics(
        self, run_key: str, bounds: Mapping[str, tuple[float, float] | None] | None = None
    ) -> dict[str, MetricValue]:
        """Metric id -> value and CI of one run (per-class values included). bounds: metric id -> its range
        (default: as the stored tasks declare them, see _metric_bounds)."""
        if bounds is None:
            bounds = self._metric_bounds()
        sql = "SELECT name, value, ci_low, ci_high FROM metrics WHERE run_key = ?"
        return {
            name: MetricValue(name, value, lo, hi)
            for name, value, lo, hi in self.conn.execute(sql, [run_key])
            if _numbers(run_key, name, value, lo, hi, bounds.get(name.split("/", 1)[0]))
        }

    def example_predictions(self, run_key: str) -> ExamplePredictions | None:
        """One run's predictions sorted by example id, with its class scores (see class_scores)."""
        vector = self.predictions([run_key], with_scores=False).get(run_key)
        if vector is None:
            return None
        scores = self.class_scores(run_key)
        return replace(vector, scores=scores.values, score_kind=scores.kind) if scores else vector

    def class_scores(self, run_key: str) -> ClassScores | None:
        """The run's (n_examples, n_labels) class-score matrix, rows in example-id order (as its
        predictions), or None for a run stored without scores (older stores, failed runs)."""
        if not self._has_table("class_scores"):  # an old store opened read-only
            return None
        row = self.conn.execute(
            "SELECT kind, n_examples, n_labels, scores FROM class_scores WHERE run_key = ?", [run_key]
        ).fetchone()
        if row is None:
            return None
        return ClassScores(row[0], _score_matrix(run_key, *row))

    def timing(self, run_key: str) -> TimingRecord | None:
        rows = self._dicts("SELECT * FROM timings WHERE run_key = ?", [run_key])
        return TimingRecord.from_mapping(_timing_numbers(run_key, rows[0])) if rows else None

    # ---- compare and pick: runs in full ------------------------------------------------------------------

    def hardware_meta(self) -> dict[str, HardwareMeta]:
        """Fingerprint -> the stored description of the machine it identifies."""
        return {h.fingerprint: h for h in self._hardware()}

    def done_task_protocols(self) -> list[tuple[str, str]]:
        """The (task, protocol) pairs with finished runs."""
        sql = "SELECT DISTINCT task, protocol FROM runs WHERE status = 'done'"
        return [(task, protocol) for task, protocol in self.conn.execute(sql)]

    def full_runs(self, select: Callable[[list[dict[str, Any]]], Iterable[Mapping[str, Any]]]) -> list[RunResult]:
        """The runs `select` keeps of every run row (all columns, oldest first), in full: every metric,
        predictions with class scores, timing, the task's label count and declared metrics, the model's
        parameter count."""
        from harness.metrics.registry import stored_task_metrics

        runs = self._dicts("SELECT * FROM runs ORDER BY finished_at")
        for run in runs:  # before `select` keeps the newest of a slot by its finished_at
            _run_numbers(run)
        rows = select(runs)
        n_labels = self._task_label_counts()
        declared = self._task_metrics()
        params = {name: _model_params(name, n) for name, n in self.conn.execute("SELECT name, params FROM models")}
        has_scores = self._has_table("class_scores")
        default = stored_task_metrics(None)  # runs whose task row is gone
        bounds = self._metric_bounds()
        return [self._full_run(row, n_labels, declared, params, has_scores, default, bounds) for row in rows]

    def _task_label_counts(self) -> dict[tuple[str, str, str | None], int]:
        """Label count per (task, version, data fingerprint); (task, version, None): that of the newest data."""
        out: dict[tuple[str, str, str | None], int] = {}
        for name, version, fingerprint, labels in self.conn.execute(
            "SELECT name, version, fingerprint, labels_json FROM tasks ORDER BY rowid"
        ):
            n = len(_json_list(labels))
            if n:
                out[(name, version, fingerprint)] = n
                out[(name, version, None)] = n  # the newest row: runs whose own data row is gone
        return out

    def _task_metrics(self) -> dict[tuple[str, str], tuple[tuple[dict[str, Any], ...], str]]:
        from harness.metrics.registry import stored_task_metrics

        out = {}
        for name, version, spec in self.conn.execute("SELECT name, version, spec_json FROM tasks ORDER BY rowid"):
            out[(name, version)] = stored_task_metrics(_json_object(spec))  # newest data last
        return out

    def _full_run(
        self,
        row: Mapping[str, Any],
        n_labels: Mapping[tuple[str, str, str | None], int],
        declared: Mapping[tuple[str, str], tuple[tuple[dict[str, Any], ...], str]],
        params: Mapping[str, int | None],
        has_scores: bool,
        default_metrics: tuple[tuple[dict[str, Any], ...], str],
        bounds: Mapping[str, tuple[float, float] | None],
    ) -> RunResult:
        key = row["key"]
        label_count = n_labels.get(
            (row["task"], row["task_version"], row["data_fingerprint"]),
            n_labels.get((row["task"], row["task_version"], None)),
        )
        pred_rows = self.conn.execute(
            "SELECT example_id, label, pred FROM predictions WHERE run_key = ? ORDER BY example_id", [key]
        ).fetchall()
        predictions = None
        if pred_rows:
            scores, kind = self._run_scores(key, len(pred_rows)) if has_scores else (None, None)
            ids = tuple(r[0] for r in pred_rows)
            predictions = ExamplePredictions(
                ids=ids,
                labels=_class_indices(key, "label", ids, [r[1] for r in pred_rows], label_count),
                preds=_class_indices(key, "pred", ids, [r[2] for r in pred_rows], label_count),
                scores=scores,
                score_kind=kind,
            )
        timing = self.timing(key)
        model_params = params.get(row["model"])
        task_metrics, main_metric = declared.get((row["task"], row["task_version"])) or default_metrics
        return RunResult.of(
            row,
            _json_object(row["config_json"]),
            metrics=self.metrics(key, bounds),
            predictions=predictions,
            timing=timing,
            n_labels=label_count,
            params=model_params if model_params is not None else (timing.params if timing else None),
            task_metrics=task_metrics,
            main_metric=main_metric,
        )

    def _run_scores(self, key: str, n: int) -> tuple[np.ndarray | None, ScoreKind | None]:
        """A run's class scores when they fit its n predictions; (None, None) when absent."""
        row = self.conn.execute(
            "SELECT kind, n_examples, n_labels, scores FROM class_scores WHERE run_key = ?", [key]
        ).fetchone()
        if row is None:
            return None, None
        matrix = _score_matrix(key, *row)
        return (matrix, row[0]) if matrix.shape[0] == n else (None, None)

    # ---- export ------------------------------------------------------------------------------------------

    def export_rows(
        self,
        tasks: Sequence[str] = (),
        models: Sequence[str] = (),
        protocols: Sequence[str] = (),
        predictions: bool = False,
    ) -> list[RunColumns]:
        """Every column of each selected run (every status) with its model's and task's rows, metrics (by
        name), timing and, when asked, predictions; ordered by task, protocol, model, seed."""
        return list(self._export_rows(tasks, models, protocols, predictions))

    def _export_rows(
        self, tasks: Sequence[str], models: Sequence[str], protocols: Sequence[str], predictions: bool
    ) -> Iterator[RunColumns]:
        model_rows = {r["name"]: r for r in self._dicts("SELECT * FROM models")}
        for name, model in model_rows.items():
            _model_params(name, model["params"])
        task_rows = {(r["name"], r["version"]): r for r in self._dicts("SELECT * FROM tasks")}
        bounds = self._metric_bounds()
        clauses: list[str] = []
        params: list[str] = []
        for column, values in (("task", tasks), ("model", models), ("protocol", protocols)):
            if values:
                clauses.append(f"r.{column} IN ({','.join('?' for _ in values)})")
                params.extend(values)
        where = " AND ".join(clauses) or "1"
        sql = f"SELECT * FROM runs r WHERE {where} ORDER BY r.task, r.protocol, r.model, r.seed, r.finished_at"
        for run in self._dicts(sql, params):
            key = run["key"]
            _run_numbers(run)
            metrics = tuple(
                MetricValue(*m)
                for m in self.conn.execute(
                    "SELECT name, value, ci_low, ci_high FROM metrics WHERE run_key = ? ORDER BY name", [key]
                )
                if _numbers(key, m[0], m[1], m[2], m[3], bounds.get(m[0].split("/", 1)[0]))
            )
            timing = self._dicts("SELECT * FROM timings WHERE run_key = ?", [key])
            if timing:
                _timing_numbers(key, timing[0])
            task = task_rows.get((run["task"], run["task_version"]), {})
            preds = None
            if predictions:
                rows = self.conn.execute(
                    "SELECT example_id, label, pred, score FROM predictions WHERE run_key = ? ORDER BY example_id", [key]
                ).fetchall()
                ids = [r[0] for r in rows]
                n_labels = len(_json_list(task.get("labels_json"))) or None
                _class_indices(key, "label", ids, [r[1] for r in rows], n_labels)
                _class_indices(key, "pred", ids, [r[2] for r in rows], n_labels)
                for eid, *_, score in rows:
                    if score is not None and not _is_number(score):
                        raise StoredValueError("predictions", "score", f"run {key} (example {eid!r})", score, "a number or NULL")
                preds = tuple(PredictionRow(*p) for p in rows)
            yield RunColumns(run, model_rows.get(run["model"], {}), task, metrics, timing[0] if timing else None, preds)

    # ---- helpers -----------------------------------------------------------------------------------------

    def _dicts(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]


    @contextmanager
    def _keys_table(self, keys: Iterable[str]) -> Iterator[str]:
        # A temp table has no bound-parameter limit and lives in the connection's temp database, so it works
        # on a read-only file. Query it as `run_key IN (SELECT key FROM <table>)`: that searches the big
        # table's index once per key, where a JOIN let SQLite's planner scan all 15M predictions of a large
        # store and probe the keys table per row (3.9 s instead of 0.7 s for 5,000 runs).
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS site_keys (key TEXT PRIMARY KEY)")
        self.conn.execute("DELETE FROM site_keys")
        self.conn.executemany("INSERT OR IGNORE INTO site_keys VALUES (?)", ((k,) for k in keys))
        try:
            yield "temp.site_keys"
        finally:
            self.conn.execute("DELETE FROM site_keys")


def _json_object(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _json_list(raw: str | None) -> list[Any]:
    try:
        value = json.loads(raw) if raw else []
    except (TypeError, ValueError):
        return []
    return value if isinstance(value, list) else []


# ---- stored values -----------------------------------------------------------------------------------------
#
# SQLite columns are not typed: a store edited in an SQLite tool or written by another program may hold text
# where a number belongs, NULL in a NOT NULL column (a table rebuilt without it), or a number no run makes (a
# negative latency, an F1 of 7.5). The reader refuses such a value, naming its table, column, row and value
# (StoredValueError, reported with the file's name by every query method), rather than show, rank, recompute
# or export it. Each query checks the rows it reads (the site's bulk read with a cheap test per row that
# calls the full check only for a row it doubts); check_stored_numbers scans for text where a number
# belongs, to name the value behind a failure elsewhere.

_SLACK = BOUNDS_SLACK
_INF = math.inf
_BIG = 1.7976931348623157e308  # the largest finite float
_OPEN = (-_BIG, _BIG)
# Timing columns no measurement makes negative: times, sizes, counts (the others are ratios and flags).
_NON_NEGATIVE_TIMINGS = frozenset(
    ("batch_size", "p50_ms", "p95_ms", "p99_ms", "mean_ms", "std_ms", "n_timed", "items_per_s", "peak_mem_mb",
     "params", "weights_mb", "rss_peak_mb", "load_s")
)  # fmt: skip
_PERCENTILES = ("p50_ms", "p95_ms", "p99_ms")


class StoredValueError(ValueError):
    """A stored value this harness cannot read or that no run makes, naming its table, column, row and value."""

    def __init__(self, table: str, column: str, row: str, value: Any, expected: str) -> None:
        if value is None:
            shown = "NULL"
        elif isinstance(value, bytes):
            shown = f"a blob of {len(value):,} bytes"
        else:
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        super().__init__(f"{table}.{column} of {row} is {shown}; expected {expected}")


def _is_number(v: Any) -> bool:
    """A finite int or float (SQLite hands back no other number; a bool is no number here)."""
    return (v.__class__ is float or (isinstance(v, int) and not isinstance(v, bool))) and -_INF < v < _INF


def _numbers(
    run_key: str, name: str, value: Any, ci_low: Any, ci_high: Any, bounds: tuple[float, float] | None = None
) -> bool:
    """True; a StoredValueError naming the run and metric when the value is not a finite number, a CI end is
    neither that nor NULL, one of them lies outside `bounds` (the metric's range, MetricDef.bounds) or the
    interval's low end lies above its high end."""
    row = f"run {run_key} (metric {name!r})"
    for column, v in (("value", value), ("ci_low", ci_low), ("ci_high", ci_high)):
        if v is None and column != "value":
            continue
        if not _is_number(v):
            raise StoredValueError("metrics", column, row, v, "a finite number" + (" or NULL" if column != "value" else ""))
        if bounds is not None and not within_bounds(v, bounds):
            raise StoredValueError("metrics", column, row, v, f"a number {bounds_text(bounds)} (the metric's range)")
    if ci_low is not None and ci_high is not None and ci_low > ci_high:
        raise StoredValueError(
            "metrics", "ci_low", row, ci_low, f"at most its ci_high, {ci_high!r} (an interval runs from low to high)"
        )
    return True


def _timing_numbers(run_key: str, row: Mapping[str, Any], present: bool = True) -> Mapping[str, Any]:
    """`row`; a StoredValueError naming the run and column when one of the timing columns it has holds
    something but a finite number (NULL where the column is NOT NULL, unless the run has no timing row:
    `present` False), a negative time, size or count, or latency percentiles out of order."""
    where = f"run {run_key}"
    required = required_columns("timings") if present else frozenset()
    for column in numeric_columns("timings"):
        if column not in row:
            continue
        v = row[column]
        if v is None:
            if column in required:
                raise StoredValueError("timings", column, where, v, "a number (the column is NOT NULL)")
        elif not _is_number(v):
            raise StoredValueError("timings", column, where, v, "a finite number")
        elif v < 0 and column in _NON_NEGATIVE_TIMINGS:
            raise StoredValueError("timings", column, where, v, "a number of 0 or more")
    for low, high in zip(_PERCENTILES, _PERCENTILES[1:], strict=False):
        a, b = row.get(low), row.get(high)
        if a is not None and b is not None and a > b * (1 + _SLACK):
            raise StoredValueError(
                "timings", low, where, a, f"at most its {high}, {b!r} (latency percentiles rise: p50 <= p95 <= p99)"
            )
    return row


def _plausible_timing(t: Sequence[Any], inf: float = _INF) -> bool:
    """The site's quick test of a Timing row (rows.Timing order): True when _timing_numbers has nothing to
    say about it; False sends the row to _timing_numbers. (Written out: a generator costs 2 us a row.)"""
    try:
        mem, params, contended, wait, others, weights, load = t[7], t[8], t[10], t[11], t[12], t[13], t[14]
        return bool(
            0.0 <= t[3] <= t[4] <= t[5] < inf
            and 0.0 <= t[6] < inf
            and t[2].__class__ is int and t[2] >= 0 and t[9].__class__ is int and t[9] >= 0
            and (mem is None or 0.0 <= mem < inf) and (params is None or 0 <= params < inf)
            and (weights is None or 0.0 <= weights < inf) and (load is None or 0.0 <= load < inf)
            and (contended is None or contended.__class__ is int)
            and (wait is None or -inf < wait < inf) and (others is None or -inf < others < inf)
        )  # fmt: skip
    except TypeError:  # text (or NULL) where a number belongs
        return False


def _score_matrix(run_key: str, kind: Any, n: Any, k: Any, blob: Any) -> np.ndarray:
    """The (n, k) class-score matrix of a class_scores row; a StoredValueError naming the run when its kind is
    unknown or its blob does not hold n x k float32 scores."""
    where = f"run {run_key}"
    if kind not in SCORE_KINDS:
        raise StoredValueError("class_scores", "kind", where, kind, f"one of {', '.join(SCORE_KINDS)}")
    for column, v in (("n_examples", n), ("n_labels", k)):
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
            raise StoredValueError("class_scores", column, where, v, "a count, 0 or more")
    size = n * k * SCORE_DTYPE.itemsize
    if not isinstance(blob, bytes) or len(blob) != size:
        raise StoredValueError(
            "class_scores", "scores", where, blob, f"a blob of {size:,} bytes ({n} examples x {k} labels, 4 bytes a score)"
        )
    return np.frombuffer(blob, dtype=SCORE_DTYPE).reshape(n, k)


def _class_indices(run_key: str, column: str, ids: Sequence[str], values: list[Any], n_labels: int | None) -> np.ndarray:
    """A run's stored labels or predictions (`column`, in `ids` order) as int64; a StoredValueError naming the
    run and example when one is not a class index of the task's n_labels labels (None: the count is unknown,
    any index of 0 or more)."""
    array = np.asarray(values)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind in "iu" and array.min() >= 0 and (n_labels is None or array.max() < n_labels):
        return array.astype(np.int64, copy=False)
    expected = (
        f"a class index from 0 to {n_labels - 1} (the task has {n_labels} label{'s' if n_labels != 1 else ''})"
        if n_labels is not None
        else "a class index, 0 or more"
    )
    for example, v in zip(ids, values, strict=True):
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= 0 and (n_labels is None or v < n_labels)):
            raise StoredValueError("predictions", column, f"run {run_key} (example {example!r})", v, expected)
    return array.astype(np.int64)  # not reached: some value failed the test above


def _model_params(model: str, params: Any) -> Any:
    """`params` (a model's parameter count, models.params); a StoredValueError unless NULL or a number of 0 or more."""
    if params is not None and not (_is_number(params) and params >= 0):
        raise StoredValueError("models", "params", f"model {model!r}", params, "a number of 0 or more, or NULL")
    return params


def _timestamp(v: Any) -> bool:
    """An ISO 8601 time in UTC (or without an offset), extended format (2025-01-31T12:00:00): runs' times are
    compared as text, which orders only those as time (20250131, a basic-format date, sorts after 2025-12-31;
    a space for the T before every T)."""
    if v.__class__ is not str or len(v) < 10 or v[4] != "-" or v[7] != "-" or (len(v) > 10 and v[10] != "T"):
        return False
    try:
        offset = datetime.fromisoformat(v).utcoffset()
    except ValueError:
        return False
    return not offset


def _run_numbers(row: Mapping[str, Any]) -> Mapping[str, Any]:
    """`row` (a runs row, or the part of one a query read); a StoredValueError naming the run and column when
    the seed is not an integer, the duration not a number of 0 or more, or a start or finish time not an ISO
    8601 timestamp (they are compared as text: 'yesterday' sorts after every date)."""
    where = f"run {row['key']}"
    if "seed" in row and not (isinstance(row["seed"], int) and not isinstance(row["seed"], bool)):
        raise StoredValueError("runs", "seed", where, row["seed"], "an integer")
    if "duration_s" in row and not (_is_number(row["duration_s"]) and row["duration_s"] >= 0):
        raise StoredValueError("runs", "duration_s", where, row["duration_s"], "a number of seconds, 0 or more")
    for column in ("started_at", "finished_at"):
        if column in row and not _timestamp(row[column]):
            raise StoredValueError(
                "runs", column, where, row[column], "an ISO 8601 time in UTC like 2025-01-31T12:00:00+00:00"
            )
    return row
