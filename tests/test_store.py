from __future__ import annotations

import os
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.models.base import ModelInfo
from harness.records import JobIdentity, MetricValue, Predictions, RunRecord, TaskRecord
from harness.store import SCHEMA_VERSION, Store, StoreReader
from harness.store.schema import ADDED_COLUMNS


def _record(key: str, status: str = "done", n: int = 5) -> RunRecord:
    job = JobIdentity(key, "suite", "model", "task", "1", "fp", "linear_probe", 0, {"x": 1})
    preds = Predictions(tuple(f"e{i}" for i in range(n)), np.arange(n) % 2, np.ones(n, dtype=int), np.full(n, 0.9))
    return RunRecord(
        job=job, status=status, started_at="2026-01-01T00:00:00", finished_at="2026-01-01T00:00:01",  # type: ignore[arg-type]
        duration_s=1.0, metrics=(MetricValue("accuracy", 0.4, 0.1, 0.8),), predictions=preds,
    )  # fmt: skip


def test_write_is_one_transaction_and_replaces_failed_attempt(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    store.write_run(_record("k1", status="failed"))
    assert store.reader.finished_keys() == set()
    store.write_run(_record("k1"))
    assert store.reader.finished_keys() == {"k1"}
    assert store.db.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    example = store.reader.example_predictions("k1")
    assert example is not None and example.ids == tuple(f"e{i}" for i in range(5))
    assert example.preds.tolist() == [1] * 5
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_crash_inside_the_write_leaves_nothing_half_written(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    store.write_run(_record("k0"))
    bad = _record("k2")
    # Duplicate example ids violate the predictions primary key after the run row was inserted.
    broken = Predictions(("a", "a"), np.array([0, 1]), np.array([0, 1]), np.array([0.5, 0.5]))
    bad = RunRecord(**{**bad.__dict__, "predictions": broken})
    with pytest.raises(Exception, match="UNIQUE"):
        store.write_run(bad)
    assert store.db.execute("SELECT key FROM runs").fetchall() == [("k0",)]
    assert store.db.execute("SELECT count(*) FROM metrics WHERE run_key='k2'").fetchone()[0] == 0
    assert store.reader.metrics("k0")["accuracy"].value == 0.4


def test_a_full_disk_is_named_as_such_and_the_write_leaves_nothing(tmp_path: Path) -> None:
    """SQLITE_FULL (emulated by capping the file at its current size) is not "the file is damaged": the
    message says the disk is full, and the run's transaction is rolled back."""
    store = Store(tmp_path / "r.db")
    store.write_run(_record("k0"))
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(HarnessError) as caught:
        store.write_run(_record("k1", n=20_000))
    message = str(caught.value)
    assert "r.db cannot be written (SQLite: database or disk is full): the disk holding it is full" in message
    assert "Nothing of the failed write was stored" in message and "damaged" not in message
    assert store.db.execute("SELECT key FROM runs").fetchall() == [("k0",)]
    assert store.db.execute("SELECT count(*) FROM predictions WHERE run_key = 'k1'").fetchone()[0] == 0


def test_class_scores_round_trip_in_example_id_order_as_float32(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    ids = ("e2", "e0", "e1")
    scores = np.array([[0.1, 0.9], [0.7, 0.3], [0.55, 0.45]])
    preds = Predictions(ids, np.array([1, 0, 0]), np.array([1, 0, 0]), scores.max(axis=1), scores, "probability")
    store.write_run(RunRecord(**{**_record("k1").__dict__, "predictions": preds}))
    stored = store.reader.class_scores("k1")
    assert stored is not None and stored.kind == "probability" and stored.values.dtype == np.float32
    np.testing.assert_array_equal(stored.values, scores[[1, 2, 0]].astype(np.float32))
    example = store.reader.example_predictions("k1")
    assert example is not None and example.ids == ("e0", "e1", "e2") and example.score_kind == "probability"
    np.testing.assert_array_equal(example.scores, stored.values)
    blob_bytes = store.db.execute("SELECT length(scores) FROM class_scores").fetchone()[0]
    assert blob_bytes == 3 * 2 * 4
    store.db.execute("DELETE FROM runs WHERE key = 'k1'")  # scores go with their run
    assert store.db.execute("SELECT count(*) FROM class_scores").fetchone()[0] == 0


def test_a_store_written_before_class_scores_existed_opens_and_reads_none(tmp_path: Path) -> None:
    store = Store(tmp_path / "old.db")
    store.write_run(_record("k1"))
    store.close()
    con = sqlite3.connect(tmp_path / "old.db")
    con.execute("DROP TABLE class_scores")  # the schema before scores were stored
    con.commit()
    con.close()
    read_only = StoreReader(tmp_path / "old.db")  # nothing is added to a store opened for reading
    assert read_only.class_scores("k1") is None
    assert read_only.conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'class_scores'").fetchone()[0] == 0
    read_only.close()
    reopened = Store(tmp_path / "old.db")
    assert reopened.reader.class_scores("k1") is None
    assert reopened.reader.metrics("k1")["accuracy"].value == 0.4


def test_the_writer_builds_model_task_and_hardware_rows_from_records(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    record = _record("k1")
    job = JobIdentity(**{**record.job.__dict__, "config": {"model": {"name": "model"}, "model_identity": {"w": "x"}},
                         "model_weights": "sha256:0a1b"})  # fmt: skip
    info = ModelInfo("model", "sklearn", "text", "pkg://m", None, 1234, license="MIT", feature_dim=8)
    task = TaskRecord("task", "1", "text", ("neg", "pos"), "fp", n_test=5, spec={"main_metric": "accuracy"})
    hardware = {"fingerprint": "hw1", "cpu": "cpu x", "gpu": None, "torch": "2", "cuda": None, "threads": 2,
                "platform": "Linux", "python": "3.11"}  # fmt: skip
    store.write_run(RunRecord(**{**record.__dict__, "job": job}), model=info, task=task, hardware=hardware)
    model = store.reader.models()["model"]
    assert (model.family, model.params, model.license, model.feature_dim) == ("sklearn", 1234, "MIT", 8)
    row = store.db.execute("SELECT spec_json, weights, identity_json FROM models").fetchone()
    assert row == ('{"name": "model"}', "sha256:0a1b", '{"w": "x"}')
    assert store.db.execute("SELECT labels_json, n_test, spec_json FROM tasks").fetchone() == (
        '["neg", "pos"]', 5, '{"main_metric": "accuracy"}'
    )
    assert store.db.execute("SELECT cpu, threads, details_json LIKE '%python%' FROM hardware").fetchone() == ("cpu x", 2, 1)


# ---- schema versions: PRAGMA user_version ------------------------------------------------------------------


def _user_version(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute("PRAGMA user_version").fetchone()[0])
    finally:
        con.close()


def _columns(path: Path, table: str) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
    finally:
        con.close()


def _unversioned_store(path: Path) -> None:
    """A store as harness wrote it before schema versions: without the columns added since the first
    release, tasks keyed by (name, version), user_version 0."""
    store = Store(path)
    store.write_run(_record("k1"))
    store.close()
    con = sqlite3.connect(path)
    for table, column, _ in ADDED_COLUMNS:
        con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    con.execute("CREATE TABLE tasks_old AS SELECT * FROM tasks")
    con.execute("DROP TABLE tasks")
    con.execute(
        "CREATE TABLE tasks (name TEXT NOT NULL, version TEXT NOT NULL, modality TEXT NOT NULL, labels_json TEXT "
        "NOT NULL, n_train INTEGER, n_validation INTEGER, n_test INTEGER, fingerprint TEXT NOT NULL, "
        "source_signature TEXT, source TEXT, license TEXT, citation TEXT, spec_json TEXT, PRIMARY KEY (name, version))"
    )
    con.execute("INSERT INTO tasks VALUES ('task', '1', 'text', '[\"a\", \"b\"]', 1, 1, 5, 'fp', 's', '', '', '', '{}')")
    con.execute("DROP TABLE tasks_old")
    con.execute("PRAGMA user_version = 0")
    con.commit()
    con.close()


def test_a_new_store_is_created_at_the_current_schema_version_and_reopens_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    store = Store(path)
    store.write_run(_record("k1"))
    store.close()
    assert _user_version(path) == SCHEMA_VERSION >= 1
    columns = _columns(path, "timings")
    reopened = Store(path)
    assert reopened.reader.finished_keys() == {"k1"} and _columns(path, "timings") == columns
    reader = StoreReader(path)
    assert reader.metrics("k1")["accuracy"].value == 0.4
    assert reader.conn.execute("SELECT count(*) FROM sqlite_temp_master").fetchone()[0] == 0  # nothing shadowed


def test_a_store_from_before_schema_versions_is_read_as_it_is_and_migrated_when_written(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _unversioned_store(path)
    before = path.read_bytes()
    reader = StoreReader(path)  # read-only: the columns it lacks read as NULL, nothing on disk changes
    (row,) = reader.results_table()
    assert row["model_weights"] is None and row["contended"] is None and row["metrics"]["accuracy"]["value"] == 0.4
    assert reader.task_hygiene() == {"task": None}
    reader.close()
    assert path.read_bytes() == before and _user_version(path) == 0

    store = Store(path)  # written: migrated to the current version, its rows kept
    assert _user_version(path) == SCHEMA_VERSION
    for table, column, _ in ADDED_COLUMNS:
        assert column in _columns(path, table)
    pks = [r[1] for r in sorted(store.db.execute("PRAGMA table_info(tasks)").fetchall(), key=lambda r: r[5]) if r[5]]
    assert pks == ["name", "version", "fingerprint"]
    assert store.reader.finished_keys() == {"k1"} and store.reader.metrics("k1")["accuracy"].value == 0.4
    store.write_run(_record("k2"))  # a migrated store takes new runs with every column
    assert store.db.execute("SELECT count(*) FROM runs").fetchone()[0] == 2


def _open_on(path: Path) -> list[str]:
    """This process's file descriptors open on `path` (or its -wal / -shm files)."""
    fds = Path("/proc/self/fd")
    targets = [(fds / fd).resolve() if (fds / fd).is_symlink() else None for fd in os.listdir(fds)]
    return [str(t) for t in targets if t is not None and str(t).startswith(str(path.resolve()))]


def test_a_store_that_fails_to_open_leaves_no_file_descriptor_on_it(tmp_path: Path) -> None:
    """The lock taken on the store file kept its descriptor open (with SQLite's connection) when opening the
    store failed after it: a store from before schema versions whose tasks table is damaged fails to migrate."""
    path = tmp_path / "damaged.db"
    _unversioned_store(path)
    con = sqlite3.connect(path)
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    (root,) = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'tasks'").fetchone()
    con.close()
    with path.open("r+b") as fh:
        fh.seek((root - 1) * page_size)
        fh.write(b"\xff" * page_size)
    assert _open_on(path) == []
    with pytest.raises(HarnessError, match="is not a harness results database .database disk image is malformed"):
        Store(path)
    assert _open_on(path) == []


def test_a_store_from_a_newer_harness_is_read_but_not_written(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    store = Store(path)
    store.write_run(_record("k1"))
    store.close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    assert StoreReader(path).finished_keys() == {"k1"}
    with pytest.raises(HarnessError, match=f"newer harness .store schema version {SCHEMA_VERSION + 1}"):
        Store(path)
    assert _user_version(path) == SCHEMA_VERSION + 1


def test_the_snapshot_reads_malformed_run_json_as_absent(tmp_path: Path) -> None:
    """A run whose config_json / selected_json is not JSON (a hand-edited store) shows no suite path and no
    metric notes; the other runs keep theirs."""
    store = Store(tmp_path / "r.db")
    for key in ("k1", "k2"):
        record = _record(key)
        job = replace(record.job, config={"suite_path": "suites/a.yaml"})
        store.write_run(replace(record, job=job, selected={"metrics_not_applicable": {"roc_auc": "one class"}}))
    store.db.execute(
        "UPDATE runs SET config_json = '{\"suite_path\": ', selected_json = '{\"metrics_not_applicable\"' WHERE key = 'k2'"
    )
    store.close()
    runs = {r.key: r for r in StoreReader(tmp_path / "r.db").snapshot().runs}
    assert (runs["k1"].suite_path, dict(runs["k1"].metric_notes)) == ("suites/a.yaml", {"roc_auc": "one class"})
    assert (runs["k2"].suite_path, dict(runs["k2"].metric_notes)) == (None, {})


def test_a_store_knows_when_another_process_has_it_open(tmp_path: Path) -> None:
    """A run that failed before recording anything deleted the store it created even while another run (same
    --db, started meanwhile) was writing to it; the other run then reported its results in a file that no longer
    existed. The failing run now keeps a store another process holds open."""
    import subprocess
    import sys

    from harness.commands.run_cmd import _remove_if_unused

    db = tmp_path / "new" / "s.db"
    created = [db, db.parent]
    first = Store(db)
    assert not first.used_by_another_process()
    other = subprocess.Popen(
        [sys.executable, "-c", f"import sys, time; from harness.store import Store; s = Store({str(db)!r}); print('open', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert other.stdout is not None and other.stdout.readline().strip() == "open"
    assert first.used_by_another_process()
    _remove_if_unused(first, created)
    assert db.exists()  # kept: the other process has it open
    other.communicate("")  # the other process ends
    again = Store(db)
    _remove_if_unused(again, created)
    assert not db.exists() and not db.parent.exists()
