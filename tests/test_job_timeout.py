"""`harness run --job-timeout`: a job that runs too long is stopped, recorded as failed with where it was, and the
run goes on to the next job; bad limits are refused before anything runs.

Real runs: a TF-IDF linear probe on two small CSV tasks, one of which has a plugin metric that sleeps."""

from __future__ import annotations

import csv
import random
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.config import load_suite
from harness.deadline import JobTimedOut, job_deadline
from harness.runner import RunControl, run_suite
from harness.store import Store

SLOW_METRIC = """
import time

from harness.metrics import MetricDef, MetricData


def point(data: MetricData) -> float:
    time.sleep(120)
    return 0.0


SLOW = MetricDef(name="slow_metric", label="Slow metric", point=point)
"""

TASK = """
name: {name}
version: "1"
modality: text
labels: [negative, positive]
source: {{type: csv, path: data.csv}}
text_column: text
label_column: label
split: {{validation_size: 0.2, test_size: 0.2, seed: 0}}
metrics: {metrics}
main_metric: accuracy
"""

SUITE = """
name: timeouts
plugins: [slow.py, slow.yaml, fast.yaml]
tasks: [slow-task, fast-task]
models:
  - {name: tfidf, family: tfidf}
protocols: [linear_probe]
timing: {enabled: false}
bootstrap: {n_boot: 50, seed: 0}
"""


def write_timeout_suite(folder: Path) -> Path:
    """Two small CSV tasks for a TF-IDF probe, one with a plugin metric that sleeps; returns the suite file (also
    used by the Ray executor's test)."""
    rng = random.Random(0)
    with (folder / "data.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["text", "label"])
        for i in range(80):
            label = rng.choice(["negative", "positive"])
            out.writerow([f"{'great' if label == 'positive' else 'awful'} film {i}", label])
    (folder / "slow.py").write_text(SLOW_METRIC)
    (folder / "slow.yaml").write_text(TASK.format(name="slow-task", metrics="[accuracy, slow_metric]"))
    (folder / "fast.yaml").write_text(TASK.format(name="fast-task", metrics="[accuracy]"))
    (folder / "suite.yaml").write_text(SUITE)
    return folder / "suite.yaml"


def assert_timed_out(db: Path, seconds: str) -> None:
    """The slow task's job failed at its limit, naming where it was; the other job is done."""
    with closing(sqlite3.connect(db)) as con:
        rows = dict(con.execute("SELECT task, status || ': ' || coalesce(error, '') FROM runs").fetchall())
    assert rows["fast-task"] == "done: "
    assert rows["slow-task"].startswith(f"failed: The job ran past its time limit of {seconds} s (--job-timeout)")
    assert "stopped in point (slow.py:8)" in rows["slow-task"]


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    write_timeout_suite(tmp_path)
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("_harness_plugin_")]:
        del sys.modules[name]


def test_a_job_past_its_limit_is_stopped_recorded_as_failed_and_the_run_goes_on(folder: Path) -> None:
    with closing(Store(folder / "r.db")) as store:
        summary = run_suite(load_suite(folder / "suite.yaml"), store, control=RunControl(job_timeout_s=2))
    assert (summary.done, summary.failed) == (1, 1)
    assert_timed_out(folder / "r.db", "2")


def test_a_job_within_its_limit_is_not_touched_and_no_timer_is_left_running(folder: Path) -> None:
    (folder / "suite.yaml").write_text(SUITE.replace("tasks: [slow-task, fast-task]", "tasks: [fast-task]"))
    with closing(Store(folder / "r.db")) as store:
        summary = run_suite(load_suite(folder / "suite.yaml"), store, control=RunControl(job_timeout_s=600))
    assert (summary.done, summary.failed) == (1, 0)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_the_deadline_raises_through_a_plugins_except_exception() -> None:
    with pytest.raises(JobTimedOut), job_deadline(0.2):
        try:  # noqa: SIM105 - what a careless plugin writes
            time.sleep(30)
        except Exception:  # noqa: BLE001
            pass


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--job-timeout", "0"], "--job-timeout must be a positive number of seconds (e.g. 600), got 0.0."),
        (["--job-timeout", "-5"], "--job-timeout must be a positive number of seconds"),
        (["--job-timeout", "nan"], "--job-timeout must be a positive number of seconds (e.g. 600), got nan."),
        (["--job-timeout", "inf"], "--job-timeout must be a positive number of seconds (e.g. 600), got inf."),
    ],
)
def test_a_bad_limit_is_refused_before_anything_runs(folder: Path, args: list[str], expected: str) -> None:
    result = CliRunner().invoke(app, ["run", str(folder / "suite.yaml"), "--db", str(folder / "r.db"), *args])
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split())
    assert not (folder / "r.db").exists()
