"""The store's writer: `harness run`'s driver process is the only one that writes (workers return records).

One job = one transaction: a run row with its metrics, predictions and timing appear together or not at
all. The rows are built here from the records a job produced (RunRecord, the adapter's ModelInfo, the
TaskRecord of the data it used, the hardware description), so no other module knows a column name.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness import RESULT_SCHEMA_VERSION
from harness.errors import HarnessError
from harness.outfile import is_symlink_loop
from harness.records import JobIdentity, RunRecord, TaskRecord
from harness.store.reader import StoreReader, store_error
from harness.store.schema import (
    DEFAULT_DB,
    FINISHED,
    SCORE_DTYPE,
    check_writable_store,
    has_sqlite_header,
    migrate,
)

if TYPE_CHECKING:
    import sqlite_utils

    from harness.models.base import ModelInfo


# How long a write waits for the store's write lock (seconds): briefly, unless another harness run shares the store.
BUSY_ALONE_S = 2.0
BUSY_SHARED_S = 30.0


class Store:
    """A results database opened for writing: created when missing, migrated to the current schema.
    `reader` reads it through the same connection (planning a sweep: which jobs are finished)."""

    def __init__(self, path: str | Path = DEFAULT_DB) -> None:
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise HarnessError(f"--db {self.path} is a directory; give a file path such as {self.path}/harness.db.")
        if is_symlink_loop(self.path):  # SQLite would say only "unable to open database file"
            raise HarnessError(
                f"--db {self.path}: it is a symbolic link that leads back to itself (a loop). Give the results file itself."
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HarnessError(
                f"--db {self.path}: its folder {self.path.parent} cannot be created ({exc.strerror or exc})."
            ) from None
        if self.path.exists() and self.path.stat().st_size > 0 and not has_sqlite_header(self.path):
            raise HarnessError(f"{self.path} is not an SQLite database; pass --db with a harness results file or a new path.")
        for target in (self.path, self.path.parent) if self.path.exists() else (self.path.parent,):
            if not os.access(target, os.W_OK):  # checked before any job runs: its compute would be lost
                raise HarnessError(
                    f"Results database {self.path} is read-only ({target} is not writable; SQLite also writes "
                    "a journal next to it), and `harness run` records its results there. Make it writable, or "
                    "pass --db with a writable path (show, site, compare and pick read it as it is)."
                )
        if self.path.exists() and self.path.stat().st_size > 0:
            check_writable_store(self.path)
        self._users = _StoreUsers(self.path)
        conn: sqlite3.Connection | None = None
        try:
            import sqlite_utils  # here, not at the top: it imports pandas (~0.3 s of every command that only reads)

            conn = sqlite3.connect(str(self.path), timeout=BUSY_ALONE_S, isolation_level=None)
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.enable_wal()
            migrate(self.db, self.path)
        except BaseException as exc:  # not opened: let go of the store file (the lock's descriptor stayed open)
            if conn is not None:
                conn.close()
            self._users.close()
            if not isinstance(exc, sqlite3.DatabaseError):
                raise
            if "readonly" in str(exc):
                raise HarnessError(
                    f"Results database {self.path} is read-only ({exc}); make it (and its folder) writable, or "
                    "pass --db with a writable path."
                ) from None
            raise HarnessError(f"{self.path} is not a harness results database ({exc}).") from None
        self.reader = StoreReader.over(conn, self.path)

    def close(self) -> None:
        self.db.close()
        self._users.close()

    def used_by_another_process(self) -> bool:
        """Whether another harness process has this store open for writing now (a run on the same --db)."""
        return self._users.others()

    def still_at_its_path(self) -> bool:
        """Whether the file at `path` is still the one opened (not deleted, moved or replaced meanwhile)."""
        return self._users.same_file(self.path)

    def begin_immediate(self) -> None:
        """BEGIN IMMEDIATE (the write lock), waiting BUSY_ALONE_S for it, or BUSY_SHARED_S while another harness
        run has the store open (its transactions are short, and job claims keep the runs apart): a lock some
        other program holds is refused within seconds, not after a 30 s wait at each write of the run."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF != sqlite3.SQLITE_BUSY or not self.used_by_another_process():
                raise
            self.db.execute(f"PRAGMA busy_timeout = {int(BUSY_SHARED_S * 1000)}")
            try:
                self.db.execute("BEGIN IMMEDIATE")
            finally:
                self.db.execute(f"PRAGMA busy_timeout = {int(BUSY_ALONE_S * 1000)}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """One transaction; SQLite failing in it (a damaged store, a lock held too long) is one HarnessError,
        nothing written."""
        try:
            self.begin_immediate()
            try:
                yield self.db
            except BaseException:
                if self.db.conn.in_transaction:  # a RAISE(ROLLBACK) trigger may have ended it already
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise store_error(self.path, exc, "written") from None

    def record_task_groups(self, suite: str, groups: Mapping[str, Iterable[str]]) -> None:
        """The named task groups a suite declares (the site ranks each group on its own); replaces the
        suite's earlier declaration."""
        rows = [(suite, name, task) for name, tasks in groups.items() for task in tasks]
        try:
            current = {tuple(r) for r in self.db.execute("SELECT suite, name, task FROM task_groups WHERE suite = ?", [suite])}
        except sqlite3.DatabaseError as exc:
            raise store_error(self.path, exc, "read") from None
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
        model: ModelInfo | None = None,
        task: TaskRecord | None = None,
        hardware: Mapping[str, Any] | None = None,
        replace: bool = False,
    ) -> bool:
        """Write everything a job produced in one transaction, replacing an earlier failed attempt, and
        release the job's claim. model / task / hardware (timing.hardware_info()) upsert the metadata rows
        the run refers to. False (nothing written) when the job is already finished in the store: another
        process recorded it first, and its result stays. replace (harness run --force): replace a finished
        run too, rows and all, in the same transaction."""
        job = record.job
        with self.transaction() as db:
            db.execute("DELETE FROM claims WHERE key = ?", [job.key])
            existing = db.execute("SELECT status FROM runs WHERE key = ?", [job.key]).fetchone()
            if existing and existing[0] in FINISHED and not replace:
                return False
            db.execute("DELETE FROM runs WHERE key = ?", [job.key])
            if model is not None:
                db.table("models").upsert(model_row(model, job), pk="name")
            if task is not None:
                db.table("tasks").upsert(task_row(task), pk=("name", "version", "fingerprint"))
            if hardware:
                db.table("hardware").upsert(hardware_row(hardware), pk="fingerprint")
            db.table("runs").insert(run_row(record, label))
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
                db.table("timings").insert({"run_key": job.key, **record.timing.__dict__})
        return True


# ---- rows from records ---------------------------------------------------------------------------------


def run_row(record: RunRecord, label: str) -> dict[str, Any]:
    job = record.job
    return {
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


def model_row(info: ModelInfo, job: JobIdentity) -> dict[str, Any]:
    """The models-table row: what the adapter reports, with the spec and identity of the job that loaded
    it (the newest identity seen for the name; each run keeps its own in config_json)."""
    spec, identity = job.config.get("model"), job.config.get("model_identity")
    return {
        "name": info.name,
        "family": info.family,
        "modality": info.modality,
        "source": info.source,
        "revision": info.revision,
        "params": info.params,
        "license": info.license,
        "description": info.description,
        "feature_dim": info.feature_dim,
        "spec_json": json.dumps(spec, sort_keys=True, default=str) if spec is not None else None,
        "weights": job.model_weights or None,
        "identity_json": json.dumps(identity, sort_keys=True) if identity is not None else None,
    }


def task_row(task: TaskRecord) -> dict[str, Any]:
    return {
        "name": task.name,
        "version": task.version,
        "modality": task.modality,
        "labels_json": json.dumps(list(task.labels)),
        "n_train": task.n_train,
        "n_validation": task.n_validation,
        "n_test": task.n_test,
        "fingerprint": task.fingerprint,
        "source_signature": task.source_signature,
        "source": task.source,
        "license": task.license,
        "citation": task.citation,
        # The resolved metrics (ids, labels, directions): readers of the store need no plugin code.
        "spec_json": json.dumps(dict(task.spec), sort_keys=True, default=str),
        "hygiene_json": task.hygiene_json,
    }


def hardware_row(info: Mapping[str, Any]) -> dict[str, Any]:
    """The hardware-table row of a timing.hardware_info() description (all of it in details_json)."""
    return {
        "fingerprint": info["fingerprint"],
        **{key: info.get(key) for key in ("cpu", "gpu", "torch", "cuda", "threads", "platform")},
        "details_json": json.dumps(dict(info), sort_keys=True),
    }


def score_blob(example_ids: Sequence[str], class_scores: np.ndarray) -> bytes:
    """Little-endian float32, row-major, rows sorted by example id (the order the reader reads)."""
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


class _StoreUsers:
    """A shared flock(2) on the store file, held while it is open for writing, so that a process about to
    delete a store it created (a run that failed before recording anything) can tell whether another run
    opened it meanwhile. SQLite locks with fcntl(2) record locks, which flock does not touch on Linux."""

    def __init__(self, path: Path) -> None:
        self.fd: int | None = None
        self.identity: tuple[int, int] | None = None
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # SQLite takes an empty file as a new store
            st = os.fstat(self.fd)
            self.identity = (st.st_dev, st.st_ino)
            fcntl.flock(self.fd, fcntl.LOCK_SH)
        except OSError:  # a file system without flock: nothing is known about other users
            self.close()

    def same_file(self, path: Path) -> bool:
        try:
            st = path.stat()
        except OSError:
            return False
        return self.identity is None or (st.st_dev, st.st_ino) == self.identity

    def others(self) -> bool:
        if self.fd is None:
            return True  # unknown: keep the store
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a refused conversion has dropped the shared lock (flock(2)): take it back
            fcntl.flock(self.fd, fcntl.LOCK_SH)
            return True
        fcntl.flock(self.fd, fcntl.LOCK_SH)
        return False

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
