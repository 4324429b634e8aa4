"""A run's metrics: the task's declared metrics on the test set, with seeded percentile bootstrap CIs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.metrics.core import MetricData
from harness.metrics.registry import TaskMetrics
from harness.metrics.resample import percentile_ci, resampled_values
from harness.records import MetricValue
from harness.seeding import check_seed

MIN_N_BOOT = 50  # fewer: each tail of a 95% percentile interval rests on one resample or none
MAX_N_BOOT = 100_000  # resamples: more changes no reported digit, and memory grows with it (runs and compare)


@dataclass(frozen=True)
class BootstrapConfig:
    n_boot: int = 1000
    seed: int = 0
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.n_boot < MIN_N_BOOT:  # with 1 or 2 resamples a 95% interval can miss the value it brackets
            raise ValueError(f"n_boot must be >= {MIN_N_BOOT} (bootstrap resamples; 1000 is usual), got {self.n_boot}.")
        if self.n_boot > MAX_N_BOOT:
            raise ValueError(f"n_boot must be at most {MAX_N_BOOT:,} resamples (1000 is usual), got {self.n_boot}.")
        check_seed(self.seed)
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be between 0 and 1 (exclusive), e.g. 0.95, got {self.confidence}.")


@dataclass(frozen=True, eq=False)
class Evaluation:
    values: tuple[MetricValue, ...]
    not_applicable: Mapping[str, str] = field(default_factory=dict)  # metric id -> reason
    confusion: list[list[int]] | None = None


def evaluate(
    metrics: TaskMetrics, data: MetricData, label_names: Sequence[str], cfg: BootstrapConfig | None = None
) -> Evaluation:
    """Point values (sklearn) and CIs (one shared set of resamples for every scalar metric)."""
    cfg = cfg or BootstrapConfig()
    notes: dict[str, str] = {}
    points: dict[str, float] = {}
    out: list[MetricValue] = []
    confusion: list[list[int]] | None = None
    for metric in metrics.metrics:
        reason = metric.metric.not_applicable(data)
        if reason:
            notes[metric.id] = reason
        elif metric.metric.shape == "matrix":
            confusion = np.asarray(metric.values(data)).astype(int).tolist()
        elif metric.metric.shape == "per_class":
            values = np.asarray(metric.values(data), dtype=np.float64)
            out.extend(
                MetricValue(f"{metric.id}/{label}", float(v)) for label, v in zip(label_names, values, strict=True)
            )
        else:
            value = metric.point(data)
            if math.isnan(value):
                notes[metric.id] = f"{metric.id} is undefined on this test set (e.g. a single class present)."
            elif math.isinf(value):  # not a score a table can rank or a JSON file hold
                notes[metric.id] = f"{metric.id} came out {value} on this test set (not a finite number): not stored."
            else:
                points[metric.id] = value
    scalar = [m for m in metrics.scalar() if m.id in points]
    boot = resampled_values(scalar, [data], cfg.n_boot, cfg.seed) if scalar and len(data) else {}
    for metric in scalar:
        low, high = percentile_ci(boot[metric.id][0], cfg.confidence) if boot else (None, None)
        out.append(MetricValue(metric.id, points[metric.id], low, high))
    order = {m.id: i for i, m in enumerate(metrics.metrics)}
    out.sort(key=lambda v: order.get(v.name.split("/")[0], len(order)))
    return Evaluation(tuple(out), notes, confusion)

