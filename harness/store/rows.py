"""The typed rows the store's reader returns (harness.store.reader.StoreReader).

Per-run records the site reads in bulk (records.MetricValue, Timing, RunRow) are NamedTuples: a store of 150,000 runs
makes about a million of them, and frozen dataclasses are several times slower to construct.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from harness.records import MetricValue, ScoreKind, TimingRecord

if TYPE_CHECKING:  # the metrics core loads sklearn: only where a row is interpreted
    from harness.metrics import MetricInfo


class RunState(NamedTuple):
    """A stored run's outcome, as the planner and the job claims read it."""

    status: str
    error: str | None
    finished_at: str


class Timing(NamedTuple):
    """The timing columns the site shows (a subset of records.TimingRecord, which compare and pick read)."""

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
    metrics: Mapping[str, MetricValue]
    timing: Timing | None
    metric_notes: Mapping[str, str] = {}  # metric id -> why it is not applicable to this run
    warnings: tuple[str, ...] = ()  # what the protocol recorded about the result's reliability (selected.warnings)

    def metric(self, name: str) -> MetricValue | None:
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
        for m in self.metrics:  # called per table cell on large sites: no fallback built unless needed
            if m.id == metric_id:
                return m
        from harness.metrics import MetricInfo

        return MetricInfo(metric_id, metric_id)

    @property
    def scalar_metrics(self) -> tuple[MetricInfo, ...]:
        return tuple(m for m in self.metrics if m.scalar)

    @property
    def limited(self) -> str | None:
        """How the test split was capped (harness run --limit), or None for a full run."""
        from harness.data.task_options import limited_run_note

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


@dataclass(frozen=True, eq=False)
class ExamplePredictions:
    """Per-example test predictions of one run (and its class scores, when stored), sorted by example id:
    what paired tests (McNemar, paired bootstrap) and metrics recomputed from the store read."""

    ids: tuple[str, ...]
    labels: np.ndarray
    preds: np.ndarray
    scores: np.ndarray | None = None  # (N, n_labels) class scores, rows in ids order; None: not stored
    score_kind: ScoreKind | None = None


@dataclass(frozen=True, eq=False)
class RunResult:
    """One stored run in full, as compare and pick read it: its config, every metric, its predictions
    and timing record. (The site's RunRow is the light form of 150k runs: headline columns only.)"""

    key: str
    suite: str
    label: str
    model: str
    task: str
    task_version: str
    data_fingerprint: str
    protocol: str
    seed: int
    status: str
    error: str | None
    config: Mapping[str, Any]
    git_hash: str | None
    finished_at: str
    metrics: Mapping[str, MetricValue] = field(default_factory=dict)
    predictions: ExamplePredictions | None = None
    timing: TimingRecord | None = None
    n_labels: int | None = None  # the task's declared label count (macro metrics average over all of them)
    params: int | None = None
    # The task's declared metrics as stored (harness.metrics.TaskMetric.describe()) and its main metric id.
    task_metrics: tuple[Mapping[str, Any], ...] = ()
    main_metric: str = ""

    @classmethod
    def of(cls, row: Mapping[str, Any], config: Mapping[str, Any], **details: Any) -> RunResult:
        """From the identity columns a runs-table row and a baseline JSON entry share, plus the rest."""
        return cls(
            key=row["key"],
            suite=row["suite"],
            label=row.get("label") or "",
            model=row["model"],
            task=row["task"],
            task_version=row["task_version"],
            data_fingerprint=row["data_fingerprint"],
            protocol=row["protocol"],
            seed=int(row["seed"]),
            status=row["status"],
            error=row.get("error"),
            config=config,
            git_hash=row.get("git_hash"),
            finished_at=row.get("finished_at") or "",
            **details,
        )

    def metric_infos(self) -> tuple[MetricInfo, ...]:
        from harness.metrics import MetricInfo

        return tuple(MetricInfo.from_description(d) for d in self.task_metrics)

    @property
    def pair_key(self) -> tuple[str, str, str]:
        return (self.model, self.task, self.protocol)


class PredictionRow(NamedTuple):
    """One stored per-example prediction, as exported."""

    example_id: str
    label: int
    pred: int
    score: float | None


class RunColumns(NamedTuple):
    """Every stored column of one run, with its model's and task's rows, metrics by name, timing row and
    (when asked) predictions: what `harness export` writes (each column as stored, none interpreted)."""

    run: Mapping[str, Any]
    model: Mapping[str, Any]  # {} when the models table has no row for it
    task: Mapping[str, Any]  # the (name, version) row; {} when absent
    metrics: tuple[MetricValue, ...]  # sorted by name
    timing: Mapping[str, Any] | None
    predictions: tuple[PredictionRow, ...] | None
