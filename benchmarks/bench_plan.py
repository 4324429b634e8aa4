"""Cached re-run planning: `harness run` of a suite whose every job is already done decides that
without loading a model or a dataset (plan the jobs, look their keys up in the store)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.config import load_suite
from harness.jobs import task_record
from harness.records import RunRecord
from harness.runner import TaskLoader, plan_suite
from harness.store import Store

ROOT = Path(__file__).resolve().parents[1]


def test_plan_a_finished_suite(benchmark: Any, tmp_path: Path) -> None:
    suite = load_suite(ROOT / "suites" / "demo.yaml")
    store = Store(tmp_path / "plan.db")
    loader = TaskLoader()
    plan = plan_suite(suite, store.reader, loader)  # the first plan loads the data to fingerprint it
    tasks = {name: task_record(task, loader.data(task), plan.metrics[name]) for name, task in plan.tasks.items()}
    for job in plan.jobs:  # every job finished, as a completed sweep leaves them
        record = RunRecord(job=job.identity, status="not_applicable", started_at="t", finished_at="t",
                           duration_s=0.0, error="benchmark")  # fmt: skip
        store.write_run(record, task=tasks[job.identity.task])

    def replan() -> int:
        planned = plan_suite(suite, store.reader, TaskLoader())
        return len(planned.jobs) - len(store.reader.finished_keys([j.key for j in planned.jobs]))

    assert plan.jobs and benchmark(replan) == 0
    store.close()
