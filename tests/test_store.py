from __future__ import annotations

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
