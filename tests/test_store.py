from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from harness.records import JobIdentity, MetricValue, Predictions, RunRecord
from harness.store import Store


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
    assert store.finished_keys() == set()
    store.write_run(_record("k1"))
    assert store.finished_keys() == {"k1"}
    assert store.db.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    ids, labels, preds = store.predictions("k1")
    assert ids == [f"e{i}" for i in range(5)] and preds.tolist() == [1] * 5
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
    assert store.metrics("k0")["accuracy"]["value"] == 0.4


def test_class_scores_round_trip_in_example_id_order_as_float32(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    ids = ("e2", "e0", "e1")
    scores = np.array([[0.1, 0.9], [0.7, 0.3], [0.55, 0.45]])
    preds = Predictions(ids, np.array([1, 0, 0]), np.array([1, 0, 0]), scores.max(axis=1), scores, "probability")
    store.write_run(RunRecord(**{**_record("k1").__dict__, "predictions": preds}))
    stored = store.class_scores("k1")
    assert stored is not None and stored.kind == "probability" and stored.values.dtype == np.float32
    np.testing.assert_array_equal(stored.values, scores[[1, 2, 0]].astype(np.float32))
    assert store.predictions("k1")[0] == ["e0", "e1", "e2"]
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
    read_only = Store.open_readonly(tmp_path / "old.db")  # nothing is added to a store opened for reading
    assert read_only.class_scores("k1") is None and "class_scores" not in read_only.db.table_names()
    read_only.close()
    reopened = Store(tmp_path / "old.db")
    assert reopened.class_scores("k1") is None
    assert reopened.metrics("k1")["accuracy"]["value"] == 0.4
