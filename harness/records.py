"""Typed records a finished job produces; the store persists them in one transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

RunStatus = Literal["done", "failed", "not_applicable"]
# What a class-score matrix holds: only "probability" rows are calibrated distributions over the labels.
ScoreKind = Literal["probability", "logit", "similarity", "log_likelihood", "lexicon"]


@dataclass(frozen=True)
class MetricValue:
    name: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None


@dataclass(frozen=True)
class TimingRecord:
    hardware: str  # fingerprint id, see timing.hardware_fingerprint
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

    def at(self, percentile: str) -> float:
        """Batch-1 latency at "p50", "p95" or "p99", in ms."""
        return float(getattr(self, f"{percentile}_ms"))


@dataclass(frozen=True, eq=False)
class Predictions:
    example_ids: tuple[str, ...]
    labels: np.ndarray
    preds: np.ndarray
    scores: np.ndarray  # confidence of the predicted label
    class_scores: np.ndarray | None = None  # (N, n_labels) float scores of every label, see score_kind
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
