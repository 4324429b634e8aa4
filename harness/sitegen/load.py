"""Read the results store for the site: a handful of bulk queries, read-only, into typed rows.

The site never writes the database (it may sit on a read-only mount or be in use by a running sweep),
so it opens SQLite read-only rather than through Store, which creates tables and switches to WAL.

Per-run records (Metric, Timing, RunRow) are NamedTuples: a store of 150,000 runs makes about a
million of them, and frozen dataclasses are several times slower to construct.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from harness.data.hygiene import leak_summary
from harness.data.task_options import limited_run_note
from harness.errors import HarnessError
from harness.metrics import MetricInfo
from harness.metrics.registry import stored_task_metrics
from harness.store import SCORE_DTYPE, SCORE_KINDS, connect_readonly


class Metric(NamedTuple):
    value: float
    ci_low: float | None
    ci_high: float | None


class Timing(NamedTuple):
    hardware: str
    device: str
    batch_size: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    items_per_s: float
    peak_mem_mb: float | None
    params: int | None
    n_timed: int
    contended: int | None  # 1 / 0; None in stores from before the contention guard
    run_wait_frac: float | None
    others_cpu_frac: float | None
    weights_mb: float | None
    load_s: float | None


# Timing columns added after the first release (store.ADDED_COLUMNS): read as NULL from older stores.
_LATER_TIMING_COLUMNS = ("contended", "run_wait_frac", "others_cpu_frac", "weights_mb", "load_s")


class RunRow(NamedTuple):
    """One stored run with its headline metrics and timing (absent unless status is 'done')."""

    key: str
    suite: str
    suite_path: str | None  # runs.config_json["suite_path"] when the runner recorded it
    model: str
    task: str
    task_version: str
    data_fingerprint: str
    protocol: str
    seed: int
    status: str
    error: str | None
    started_at: str
    finished_at: str
    duration_s: float
    harness_version: str
    git_hash: str | None
    metrics: Mapping[str, Metric]
    timing: Timing | None
    metric_notes: Mapping[str, str] = {}  # metric id -> why it is not applicable to this run

    def metric(self, name: str) -> Metric | None:
        return self.metrics.get(name)


@dataclass(frozen=True, slots=True)
class ModelMeta:
    name: str
    family: str
    modality: str
    source: str
    revision: str | None
    params: int | None
    license: str
    description: str
    feature_dim: int | None


@dataclass(frozen=True, slots=True)
class TaskMeta:
    name: str
    version: str
    modality: str
    labels: tuple[str, ...]
    n_train: int | None
    n_validation: int | None
    n_test: int | None
    fingerprint: str
    source: str
    license: str
    citation: str
    description: str
    homepage: str
    main_metric: str
    leak_warning: str | None = None  # from the stored data-hygiene report; None when the splits are clean
    metrics: tuple[MetricInfo, ...] = ()  # declared metrics (stored labels and directions), in order
    metric_specs: tuple[Mapping[str, Any], ...] = ()  # their stored descriptions (name, params, ...)

    def metric_info(self, metric_id: str) -> MetricInfo:
        return next((m for m in self.metrics if m.id == metric_id), MetricInfo(metric_id, metric_id))

    @property
    def scalar_metrics(self) -> tuple[MetricInfo, ...]:
        return tuple(m for m in self.metrics if m.scalar)

    @property
    def limited(self) -> str | None:
        """How the test split was capped (harness run --limit), or None for a full run."""
        return limited_run_note(self.version)


@dataclass(frozen=True, slots=True)
class HardwareMeta:
    fingerprint: str
    cpu: str
    gpu: str | None
    torch: str | None
    cuda: str | None
    threads: int | None
    platform: str

    @property
    def summary(self) -> str:
        parts = [self.gpu or self.cpu or "unknown device"]
        if self.gpu and self.cpu:
            parts.append(f"host {self.cpu}")
        if self.threads:
            parts.append(f"{self.threads} threads")
        if self.torch:
            parts.append(f"torch {self.torch}" + (f" CUDA {self.cuda}" if self.cuda else ""))
        return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class EnvGroup:
    """Runs sharing one recorded environment (harness version, git hash, package versions)."""

    env: Mapping[str, Any]
    harness_version: str
    git_hash: str | None
    n_runs: int
    first_started: str
    last_finished: str


@dataclass(frozen=True)
class StoreSnapshot:
    runs: tuple[RunRow, ...]
    models: Mapping[str, ModelMeta]
    tasks: Mapping[tuple[str, str, str], TaskMeta]  # (name, version, data fingerprint)
    hardware: Mapping[str, HardwareMeta]
    environments: tuple[EnvGroup, ...]
    task_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # declared by suites
    protocol_configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # protocol -> config


@dataclass(frozen=True, slots=True)
class ClassDetail:
    """Per-class F1 and confusion matrix of one run (loaded only for the runs a page shows them for)."""

    per_class_f1: Mapping[str, float]
    confusion: list[list[int]] | None


@dataclass(frozen=True, slots=True)
class PredictionVector:
    example_ids: tuple[str, ...]
    labels: np.ndarray
    preds: np.ndarray
    scores: np.ndarray | None = None  # (N, n_labels) class scores in example-id order, when stored
    score_kind: str | None = None


class StoreReader:
    """Read-only access to a results database; use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.conn = connect_readonly(self.path)
        try:
            self.conn.execute("SELECT key, status, config_json FROM runs LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            raise HarnessError(
                f"{self.path} is not a harness results database ({exc}); pass --db with the file `harness run` wrote."
            ) from exc

    def __enter__(self) -> StoreReader:
        # One read transaction for every query: a sweep writing meanwhile cannot make them disagree.
        self.conn.execute("BEGIN")
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()

    def snapshot(self) -> StoreSnapshot:
        return StoreSnapshot(
            runs=tuple(self._runs()),
            models={m.name: m for m in self._models()},
            tasks={(t.name, t.version, t.fingerprint): t for t in self._tasks()},
            hardware={h.fingerprint: h for h in self._hardware()},
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

    # ---- bulk queries --------------------------------------------------------------------------------

    def _runs(self) -> Iterator[RunRow]:
        # Three sequential scans joined in Python: several LEFT JOINs into `metrics` cost one random
        # index lookup per run and metric, which dominates on a large store.
        metrics: dict[str, dict[str, Metric]] = {}
        # Every single-number metric (per-class values, "<id>/<label>", are loaded per page).
        sql = "SELECT run_key, name, value, ci_low, ci_high FROM metrics WHERE instr(name, '/') = 0"
        for key, name, value, lo, hi in self.conn.execute(sql):
            if value is not None:
                metrics.setdefault(key, {})[name] = Metric(float(value), lo, hi)
        have = {r[1] for r in self.conn.execute("PRAGMA table_info(timings)")}
        later = ", ".join(c if c in have else f"NULL AS {c}" for c in _LATER_TIMING_COLUMNS)
        timings = {
            row[0]: Timing(*row[1:])
            for row in self.conn.execute(
                f"""SELECT run_key, hardware, device, batch_size, p50_ms, p95_ms, p99_ms, items_per_s, peak_mem_mb,
                          params, n_timed, {later} FROM timings"""
            )
        }
        sql = """
        SELECT key, suite, CASE WHEN json_valid(config_json) THEN json_extract(config_json, '$.suite_path') END,
               model, task, task_version, data_fingerprint, protocol, seed, status, error,
               started_at, finished_at, duration_s, harness_version, git_hash,
               CASE WHEN json_valid(selected_json) THEN json_extract(selected_json, '$.metrics_not_applicable') END
        FROM runs ORDER BY task, protocol, model, seed, finished_at
        """
        no_metrics: dict[str, Metric] = {}
        no_notes: dict[str, str] = {}
        for row in self.conn.execute(sql):
            notes = _json_object(row[16]) if row[16] else no_notes
            key, suite_path = row[0], row[2]
            yield RunRow(
                key=key,
                suite=row[1],
                suite_path=str(suite_path)
                if isinstance(suite_path, (str, int, float)) and str(suite_path)
                else None,
                model=row[3],
                task=row[4],
                task_version=row[5],
                data_fingerprint=row[6],
                protocol=row[7],
                seed=int(row[8]),
                status=row[9],
                error=row[10],
                started_at=row[11],
                finished_at=row[12],
                duration_s=float(row[13]),
                harness_version=row[14],
                git_hash=row[15],
                metrics=metrics.get(key, no_metrics),
                timing=timings.get(key),
                metric_notes={str(k): str(v) for k, v in notes.items()} if notes else no_notes,
            )

    def _models(self) -> Iterator[ModelMeta]:
        sql = "SELECT name, family, modality, source, revision, params, license, description, feature_dim FROM models"
        for r in self.conn.execute(sql):
            yield ModelMeta(
                r[0], r[1] or "", r[2] or "", r[3] or "", r[4], r[5], r[6] or "", r[7] or "", r[8]
            )

    def _tasks(self) -> Iterator[TaskMeta]:
        columns = {row[1] for row in self.conn.execute("PRAGMA table_info(tasks)")}
        hygiene = "hygiene_json" if "hygiene_json" in columns else "NULL"  # stores from before the column
        sql = f"""SELECT name, version, modality, labels_json, n_train, n_validation, n_test, fingerprint,
                        source, license, citation, spec_json, {hygiene} FROM tasks ORDER BY rowid"""
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
            sql = f"SELECT m.run_key, m.name, m.value FROM metrics m JOIN {table} k ON k.key = m.run_key WHERE m.name LIKE 'f1/%'"
            for key, name, value in self.conn.execute(sql):
                f1[key][name[3:]] = float(value)
            confusion: dict[str, list[list[int]] | None] = {}
            for key, raw in self.conn.execute(
                f"SELECT r.key, r.confusion_json FROM runs r JOIN {table} k ON k.key = r.key"
            ):
                cm = _json_list(raw)
                confusion[key] = cm if cm and all(isinstance(row, list) for row in cm) else None
        return {
            key: ClassDetail({lab: f1[key].get(lab, float("nan")) for lab in labels}, confusion.get(key))
            for key, labels in labels_by_key.items()
        }

    def predictions(self, keys: Iterable[str], with_scores: bool = True) -> dict[str, PredictionVector]:
        """Per-example predictions (and class scores) of the given runs, ordered by example id, for paired
        tests."""
        wanted = dict.fromkeys(keys)
        if not wanted:
            return {}
        rows: dict[str, tuple[list[str], list[int], list[int]]] = {k: ([], [], []) for k in wanted}
        with self._keys_table(wanted) as table:
            sql = f"""SELECT p.run_key, p.example_id, p.label, p.pred FROM predictions p JOIN {table} k
                      ON k.key = p.run_key ORDER BY p.run_key, p.example_id"""
            for key, eid, label, pred in self.conn.execute(sql):
                ids, ys, ps = rows[key]
                ids.append(eid)
                ys.append(label)
                ps.append(pred)
            scores = self._class_scores(table) if with_scores else {}
        out = {}
        for key, (ids, ys, ps) in rows.items():
            if not ids:
                continue
            matrix, kind = scores.get(key, (None, None))
            if matrix is not None and matrix.shape[0] != len(ids):
                matrix, kind = None, None
            out[key] = PredictionVector(
                tuple(ids), np.asarray(ys, dtype=np.int64), np.asarray(ps, dtype=np.int64), matrix, kind
            )
        return out

    def _class_scores(self, table: str) -> dict[str, tuple[np.ndarray, str]]:
        has = self.conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='class_scores'").fetchone()
        if not has:
            return {}
        out = {}
        sql = f"SELECT c.run_key, c.kind, c.n_examples, c.n_labels, c.scores FROM class_scores c JOIN {table} k ON k.key = c.run_key"
        for key, kind, n, k, blob in self.conn.execute(sql):
            values = np.frombuffer(blob, dtype=SCORE_DTYPE)
            if kind in SCORE_KINDS and values.size == n * k:
                out[key] = (values.reshape(n, k), kind)
        return out

    @contextmanager
    def _keys_table(self, keys: Iterable[str]) -> Iterator[str]:
        # A temp table joins faster than a long IN (...) and has no bound-parameter limit; temp tables
        # live in the connection's temp database, so they work on a read-only file.
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
