"""Result stores from real models on real data, for compare / pick / site tests.

scikit-learn models are trained on scikit-learn's load_digits (1,797 real 8x8 images, a fixed
stratified split: 1,257 train / 540 test), and their real test predictions are written through
Store.write_run with harness.records types, exactly as the runner writes them, class scores included
(predict_proba: probability; decision_function: logit). Metrics come from harness.metrics.evaluate with
the task's metrics (default set unless a test declares others).

Timings are either measured for real (measured_timing, harness.timing.measure) or given as fixed
numbers (fixed_timing) where a test must assert on latency logic without depending on wall-clock noise.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin, clone
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from harness.metrics import BootstrapConfig, MetricData, MetricRegistry, TaskMetrics, evaluate
from harness.models.base import ModelInfo, ModelSpec
from harness.records import JobIdentity, Predictions, RunRecord, ScoreKind, TaskRecord, TimingRecord
from harness.store import Store
from harness.tasks import Split

TASK = "digits-fixture"
LABELS = tuple(str(d) for d in range(10))
HW_A = "hw-a-0123456789"
HW_B = "hw-b-9876543210"


def task_metrics(metrics: tuple[Any, ...] = (), main: str = "") -> TaskMetrics:
    return MetricRegistry().resolve(metrics, main, len(LABELS), where="fixture task")


DEFAULT_METRICS = task_metrics()


@dataclass(frozen=True, eq=False)
class Digits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_ids: tuple[str, ...]
    fingerprint: str


@functools.cache
def digits() -> Digits:
    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float64) / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)
    ids = np.array([f"digits-{i:04d}" for i in range(len(y))])
    x_tr, x_te, y_tr, y_te, _, id_te = train_test_split(x, y, ids, test_size=0.3, stratify=y, random_state=0)
    test = Split("test", tuple(str(i) for i in id_te), x_te, y_te)
    train = Split("train", tuple(f"train-{i}" for i in range(len(y_tr))), x_tr, y_tr)
    fingerprint = hashlib.sha256(f"{train.fingerprint}:{test.fingerprint}".encode()).hexdigest()[:16]
    return Digits(x_tr, y_tr, x_te, y_te, test.ids, fingerprint)


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """A fitted model's real test predictions plus what a run record needs to describe it."""

    name: str
    preds: np.ndarray
    scores: np.ndarray
    params: int
    predict: Callable[[np.ndarray], np.ndarray]
    protocol_config: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    class_scores: np.ndarray | None = None
    score_kind: ScoreKind | None = None


def _param_count(model: Any) -> int:
    est = model.steps[-1][1] if hasattr(model, "steps") else model
    total = 0
    for attr in (
        "coef_",
        "intercept_",
        "components_",
        "theta_",
        "var_",
        "support_vectors_",
        "dual_coef_",
        "_fit_X",
    ):
        value = getattr(est, attr, None)
        if isinstance(value, np.ndarray):
            total += int(value.size)
    if hasattr(est, "tree_"):
        total += int(est.tree_.node_count) * 3
    if hasattr(model, "steps"):
        for _, step in model.steps[:-1]:
            total += sum(
                int(getattr(step, a).size) for a in ("components_", "mean_", "scale_") if hasattr(step, a)
            )
    return total


def train(
    name: str,
    estimator: ClassifierMixin | Any,
    *,
    per_class: int | None = None,
    bootstrap_seed: int | None = None,
    seed: int = 0,
    protocol_config: Mapping[str, Any] | None = None,
) -> TrainedModel:
    """Fit on the digits train split (optionally only `per_class` examples per class, or a bootstrap
    resample of it: a different seed of the same configuration) and predict the test split."""
    d = digits()
    x, y = d.x_train, d.y_train
    if per_class is not None:
        rng = np.random.default_rng(seed)
        idx = np.concatenate(
            [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(10)]
        )
        x, y = x[idx], y[idx]
    if bootstrap_seed is not None:
        idx = np.random.default_rng(bootstrap_seed).integers(0, len(y), size=len(y))
        x, y = x[idx], y[idx]
    model = clone(estimator).fit(x, y)
    preds = np.asarray(model.predict(d.x_test), dtype=np.int64)
    kind: ScoreKind | None = None
    class_scores = None
    if hasattr(model, "predict_proba"):
        class_scores, kind = model.predict_proba(d.x_test), "probability"
    elif hasattr(model, "decision_function"):
        class_scores, kind = model.decision_function(d.x_test), "logit"
    if class_scores is not None:
        class_scores = np.asarray(class_scores, dtype=np.float32)
    scores = class_scores.max(axis=1) if class_scores is not None else np.ones(len(preds))
    config = dict(protocol_config or {"per_class": per_class, "estimator": type(estimator).__name__})
    return TrainedModel(
        name, preds, np.asarray(scores), _param_count(model), model.predict, config, seed, class_scores, kind
    )


def logreg(C: float = 1.0) -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000))


ZOO: dict[str, Callable[[], Any]] = {
    "logreg": logreg,
    "pca16-logreg": lambda: make_pipeline(PCA(16, random_state=0), LogisticRegression(max_iter=3000)),
    "svm-rbf": lambda: SVC(gamma="scale", C=10.0),
    "knn-3": lambda: KNeighborsClassifier(3),
    "gaussian-nb": GaussianNB,
    "tree-depth4": lambda: DecisionTreeClassifier(max_depth=4, random_state=0),
}


@functools.cache
def zoo_model(name: str) -> TrainedModel:
    return train(name, ZOO[name](), protocol_config={"estimator": name})


def fixed_timing(
    p50_ms: float,
    *,
    hardware: str = HW_A,
    spread: float = 0.05,
    params: int | None = None,
    n_timed: int = 30,
    contended: bool | None = False,
) -> TimingRecord:
    """A timing record with given numbers (std and p95 - p50 are `spread` x p50)."""
    return TimingRecord(
        hardware=hardware,
        device="cpu",
        batch_size=32,
        p50_ms=p50_ms,
        p95_ms=p50_ms * (1 + spread),
        p99_ms=p50_ms * (1 + 2 * spread),
        mean_ms=p50_ms,
        std_ms=p50_ms * spread,
        n_timed=n_timed,
        items_per_s=1000.0 / p50_ms,
        peak_mem_mb=1.0 + (params or 0) * 4 / 2**20,
        params=params,
        contended=contended,
        run_wait_frac=0.4 if contended else 0.01,
    )


def measured_timing(model: TrainedModel) -> TimingRecord:
    """Real latency of model.predict on real test inputs (harness.timing.measure)."""
    from harness.timing import TimingConfig, measure

    cfg = TimingConfig(warmup=1, batch1_iters=10, throughput_batches=2)
    return measure(
        lambda batch: model.predict(np.asarray(batch)),
        list(digits().x_test),
        batch_size=32,
        device="cpu",
        params=model.params,
        cfg=cfg,
    )


def make_record(
    model: TrainedModel,
    *,
    suite: str = "fixture",
    label: str = "",
    protocol: str = "linear_probe",
    task_version: str = "1",
    data_fingerprint: str | None = None,
    revision: str | None = None,
    timing: TimingRecord | None = None,
    with_predictions: bool = True,
    finished_at: str = "2025-01-01T00:00:00+00:00",
    git_hash: str | None = None,
    metrics: TaskMetrics = DEFAULT_METRICS,
) -> RunRecord:
    d = digits()
    data = MetricData.of(d.y_test, model.preds, len(LABELS), model.class_scores, model.score_kind)
    evaluation = evaluate(metrics, data, LABELS, BootstrapConfig(n_boot=200, seed=0))
    fingerprint = data_fingerprint or d.fingerprint
    config = {
        "model": ModelSpec(name=model.name, family="sklearn", revision=revision).as_dict(),
        "task": {"name": TASK, "version": task_version, "fingerprint": fingerprint, "options": {}},
        "protocol": {"name": protocol, "protocol": protocol, "config": dict(model.protocol_config)},
        "seed": model.seed,
    }
    # The label is part of the fixture key so one database can hold both sides of a comparison.
    key = hashlib.sha256(json.dumps([config, suite, label], sort_keys=True).encode()).hexdigest()[:24]
    job = JobIdentity(key, suite, model.name, TASK, task_version, fingerprint, protocol, model.seed, config)
    preds = (
        Predictions(d.test_ids, d.y_test, model.preds, model.scores, model.class_scores, model.score_kind)
        if with_predictions
        else None
    )
    env = {"harness_version": "test", "git_hash": git_hash, "hardware": timing.hardware if timing else HW_A}
    return RunRecord(
        job=job,
        status="done",
        started_at=finished_at,
        finished_at=finished_at,
        duration_s=0.1,
        metrics=evaluation.values,
        confusion=evaluation.confusion,
        selected={"metrics_not_applicable": dict(evaluation.not_applicable)} if evaluation.not_applicable else {},
        predictions=preds,
        timing=timing,
        env=env,
    )


def one_class_record(record: RunRecord, metrics: TaskMetrics = DEFAULT_METRICS) -> RunRecord:
    """`record` on the test examples of label 0 only, its metrics evaluated again (MCC, kappa, ROC-AUC: n/a)."""
    p = record.predictions
    assert p is not None
    keep = np.flatnonzero(p.labels == 0)
    one = Predictions(tuple(p.example_ids[i] for i in keep), p.labels[keep], p.preds[keep], p.scores[keep])
    evaluation = evaluate(metrics, MetricData.of(one.labels, one.preds, len(LABELS)), LABELS, BootstrapConfig(n_boot=200))
    notes = {"metrics_not_applicable": dict(evaluation.not_applicable)} if evaluation.not_applicable else {}
    return dataclasses.replace(record, metrics=evaluation.values, confusion=evaluation.confusion, predictions=one, selected=notes)


def failed_record(
    name: str, error: str, *, seed: int = 0, protocol: str = "linear_probe", suite: str = "fixture"
) -> RunRecord:
    d = digits()
    config = {
        "model": ModelSpec(name=name, family="sklearn").as_dict(),
        "seed": seed,
        "protocol": {"name": protocol},
    }
    key = hashlib.sha256(json.dumps([config, suite, "failed"], sort_keys=True).encode()).hexdigest()[:24]
    job = JobIdentity(key, suite, name, TASK, "1", d.fingerprint, protocol, seed, config)
    t = "2025-01-02T00:00:00+00:00"
    return RunRecord(job=job, status="failed", started_at=t, finished_at=t, duration_s=0.1, error=error)


def write_store(
    path: Path, records: Iterable[RunRecord | tuple[RunRecord, str]], metrics: TaskMetrics = DEFAULT_METRICS
) -> Path:
    """Write records (optionally with a runs.label) through Store.write_run, with model/task/hardware records;
    the task row declares `metrics` as the runner's does."""
    store = Store(path)
    try:
        for item in records:
            record, label = item if isinstance(item, tuple) else (item, "")
            params = record.timing.params if record.timing else None
            store.write_run(
                record,
                label=label,
                # source None: the fixture's models have no recorded source (its golden files show null)
                model=ModelInfo(record.job.model, "sklearn", "image", None, None, params),  # type: ignore[arg-type]
                task=TaskRecord(
                    TASK,
                    record.job.task_version,
                    "image",
                    LABELS,
                    record.job.data_fingerprint,
                    n_test=len(digits().y_test),
                    spec={"name": TASK, **metrics.describe()},
                ),
                hardware={"fingerprint": record.timing.hardware} if record.timing else None,
            )
    finally:
        store.close()
    return path
