"""Typed records a finished job produces; the store persists them in one transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np

RunStatus = Literal["done", "failed", "not_applicable"]
# What a class-score matrix holds: only "probability" rows are calibrated distributions over the labels.
ScoreKind = Literal["probability", "logit", "similarity", "log_likelihood", "lexicon"]


class MetricValue(NamedTuple):
    """One metric value of one run and its 95% CI (None: no CI, e.g. per-class values): what a job
    produces and what every reader of the store returns (keyed by `name` in the mappings that hold it).
    A NamedTuple: the site reads about a million of them from a large store."""

    name: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None


# A percentile is reported only when at least one timed sample lies above it: the q-th percentile of
# fewer than 1 / (1 - q) samples is just the largest sample. p95 needs 20 samples, p99 needs 100.
PERCENTILE_MIN_SAMPLES = {"p50": 1, "p95": 20, "p99": 100}


@dataclass(frozen=True)
class TimingRecord:
    """One timing row. The fields after `params` were added later: rows from older stores leave them None.

    p95_ms / p99_ms hold the empirical percentiles of the n_timed batch-1 samples; `reported` withholds
    them when n_timed is too small to support them (PERCENTILE_MIN_SAMPLES). `contended` marks a timing
    taken while other work competed for the CPU or GPU (see timing.contention_verdict for the rule).
    """

    hardware: str  # fingerprint id, see timing.hardware_info
    device: str
    batch_size: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    n_timed: int
    items_per_s: float
    peak_mem_mb: float | None
    params: int | None
    # adaptive sampling
    p50_rel_ci: float | None = None  # half-width of the distribution-free 95% CI of p50, relative to p50
    stop_reason: str | None = None  # "precision" | "budget" | "max_samples" | "fixed"
    # memory and load
    weights_mb: float | None = None  # parameter + buffer bytes by their actual dtype (ONNX: initialisers)
    rss_peak_mb: float | None = None  # the process's peak resident memory during the timed region (psutil)
    load_s: float | None = None  # model load time, measured once per worker when the model was loaded
    threads: int | None = None  # torch intra-op threads during the timing
    # contention guard, measured around the timed regions
    cpu_wall_ratio: float | None = None  # process CPU seconds / wall seconds
    run_wait_frac: float | None = None  # share of runnable time our threads waited for a CPU (Linux schedstat)
    others_cpu_frac: float | None = None  # CPU capacity (our CPUs) used by other processes, 0..1
    steal_frac: float | None = None  # CPU time the hypervisor gave to other machines, 0..1
    load_avg: float | None = None  # 1-minute load average per usable CPU at the end of the timing
    gpu_other_procs: int | None = None  # other processes computing on our GPU (CUDA, when observable)
    contended: bool | None = None  # None: measured before the contention guard existed
    attempts: int = 1  # 2 when the first measurement was contended and the timing was re-measured

    def at(self, percentile: str) -> float:
        """Batch-1 latency at "p50", "p95" or "p99", in ms, whether or not n supports it."""
        return float(getattr(self, f"{percentile}_ms"))

    def reported(self, percentile: str) -> float | None:
        """The percentile in ms, or None when n_timed is too small to support it."""
        return None if self.withheld_reason(percentile) else self.at(percentile)

    def withheld_reason(self, percentile: str) -> str | None:
        need = PERCENTILE_MIN_SAMPLES[percentile]
        if self.n_timed >= need:
            return None
        return f"{percentile} needs >= {need} samples, this timing has {self.n_timed}"

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> TimingRecord:
        """From a timings-table row or a baseline JSON object; fields it lacks keep their defaults."""
        names = set(cls.__dataclass_fields__)
        values = {k: row[k] for k in row.keys() if k in names}  # noqa: SIM118 (sqlite3.Row has no __iter__ of keys)
        if values.get("contended") is not None:
            values["contended"] = bool(values["contended"])
        if values.get("attempts") is None:  # a row from before the column existed
            values.pop("attempts", None)
        return cls(**values)


@dataclass(frozen=True, eq=False)
class ClassScores:
    """A stored (n_examples, n_labels) class-score matrix and what its numbers are."""

    kind: ScoreKind
    values: np.ndarray


@dataclass(frozen=True, eq=False)
class Predictions:
    example_ids: tuple[str, ...]
    labels: np.ndarray
    preds: np.ndarray
    scores: np.ndarray  # confidence of the predicted label
    class_scores: np.ndarray | None = None  # (N, n_labels) scores of every label, float32, see score_kind
    score_kind: ScoreKind | None = None


@dataclass(frozen=True)
class JobIdentity:
    """What a job is; its key is a hash of all of it (see runner.job_key)."""

    key: str
    suite: str
    model: str
    task: str
    task_version: str
    data_fingerprint: str
    protocol: str
    seed: int
    config: Mapping[str, Any]  # model spec + identity, protocol config, task options: everything that shaped the run
    model_weights: str = ""  # what pins the weights, e.g. "sha256:0a1b2c3d4e5f" (models.identity.describe_weights)


@dataclass(frozen=True)
class TaskRecord:
    """What the store keeps about the data a run used (its tasks row), built by the worker from the task,
    its loaded data and its resolved metrics (jobs.task_record): the data itself never travels back."""

    name: str
    version: str
    modality: str
    labels: tuple[str, ...]
    fingerprint: str  # of the split contents
    n_train: int | None = None
    n_validation: int | None = None
    n_test: int | None = None
    source_signature: str | None = None  # lets a re-run reuse the fingerprint without loading the data
    source: str | None = None
    license: str | None = None
    citation: str | None = None
    spec: Mapping[str, Any] = field(default_factory=dict)  # TaskSpec.as_dict() + the resolved metrics
    hygiene_json: str | None = None  # data.hygiene report


@dataclass(frozen=True, eq=False)
class RunRecord:
    job: JobIdentity
    status: RunStatus
    started_at: str
    finished_at: str
    duration_s: float
    error: str | None = None
    selected: Mapping[str, Any] = field(default_factory=dict)  # hyper-parameters the protocol chose
    metrics: tuple[MetricValue, ...] = ()
    confusion: list[list[int]] | None = None
    predictions: Predictions | None = None
    timing: TimingRecord | None = None
    env: Mapping[str, Any] = field(default_factory=dict)
