"""A run's metrics: the task's declared metrics on the test set, with seeded percentile bootstrap CIs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.metrics.builtin import BUILTIN_METRICS
from harness.metrics.core import MetricCodeError, MetricData, TaskMetric, bounds_text, within_bounds
from harness.metrics.registry import TaskMetrics
from harness.metrics.resample import percentile_ci, resampled_values, values_at
from harness.metrics.stats import can_reach
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
            values = dict(zip(label_names, _per_class(metric, data, len(label_names)).tolist(), strict=True))
            out.extend(MetricValue(f"{metric.id}/{label}", v) for label, v in values.items() if math.isfinite(v))
            undefined = [label for label, v in values.items() if not math.isfinite(v)]
            if undefined:
                notes[metric.id] = f"{metric.id} is not a finite number on this test set for {', '.join(undefined)}: not stored."
        else:
            value = metric.point(data)
            if math.isnan(value):
                notes[metric.id] = f"{metric.id} is undefined on this test set (e.g. a single class present)."
            elif math.isinf(value):  # not a score a table can rank or a JSON file hold
                notes[metric.id] = f"{metric.id} came out {value} on this test set (not a finite number): not stored."
            else:
                points[metric.id] = value
    scalar = [m for m in metrics.scalar() if m.id in points]
    if scalar and len(data):
        check_reproducible(scalar, data, points)
    # No interval where the examples cannot support one (one example: every resample is that example, and
    # the "95% CI" had width 0): the value is stored without a CI, as for a metric that has none.
    intervals = scalar and can_reach(1 - cfg.confidence, len(data))
    boot = resampled_values(scalar, [data], cfg.n_boot, cfg.seed) if intervals else {}
    for metric in scalar:
        low, high = percentile_ci(boot[metric.id][0], cfg.confidence) if boot else (None, None)
        out.append(MetricValue(metric.id, points[metric.id], low, high))
    _check_bounds(metrics, out)
    order = {m.id: i for i, m in enumerate(metrics.metrics)}
    out.sort(key=lambda v: order.get(v.name.split("/")[0], len(order)))
    return Evaluation(tuple(out), notes, confusion)



def _per_class(metric: TaskMetric, data: MetricData, n_labels: int) -> np.ndarray:
    """A per-class metric's values, one number per label (NaN: undefined for that label, not stored)."""
    values = metric.values(data)
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.asarray(None)
    if array.shape != (n_labels,) or isinstance(values, str):
        raise MetricCodeError(
            f'metric "{metric.id}" (shape "per_class") returned {type(values).__name__} {repr(values)[:60]}; expected '
            f"one number per label, {n_labels} in all."
        )
    return array


def _form(metric: TaskMetric) -> str:
    fn = metric.metric
    return next(
        (name for name in ("from_counts", "from_confusions", "resampled") if getattr(fn, name) is not None), "point"
    )


def check_plugin_reproducible(metric: TaskMetric, data: MetricData) -> None:
    """check_reproducible for a plugin metric recomputed by compare or pick (another --plugin file than the run's
    may be given); built-in ones are tested."""
    if not any(metric.metric is builtin for builtin in BUILTIN_METRICS):
        check_reproducible([metric], data, {metric.id: metric.point(data)})


def check_reproducible(scalar: Sequence[TaskMetric], data: MetricData, points: Mapping[str, float]) -> None:
    """Each metric again on the whole test set, in the form its bootstrap uses: a metric that is random, or whose
    vectorised form disagrees with its point function, had a stored value its CI did not describe."""
    again = values_at(scalar, [data], np.arange(len(data))[None, :])
    for metric in scalar:
        first, second = points[metric.id], float(again[metric.id][0, 0])
        if not np.isclose(first, second, rtol=1e-6, atol=1e-9):
            how = "point()" if _form(metric) == "point" else f"its vectorised form {_form(metric)}()"
            raise MetricCodeError(
                f'metric "{metric.id}" is not reproducible: point() gave {first!r} on the test set and {how} gave '
                f"{second!r} on the same examples. A metric must be a deterministic function of the predictions "
                "(seed any randomness), with vectorised forms that agree with point(); otherwise its bootstrap CI "
                "does not describe the value stored."
            )


def _check_bounds(metrics: TaskMetrics, values: Sequence[MetricValue]) -> None:
    """A value outside its metric's declared range is a fault of the metric's code (or bounds): stored, it made
    every reader of the store refuse the store."""
    for v in values:
        metric = metrics.get(v.name.split("/", 1)[0])
        bounds = metric.metric.bounds
        for what, x in (("value", v.value), ("CI low end", v.ci_low), ("CI high end", v.ci_high)):
            if bounds is not None and x is not None and math.isfinite(x) and not within_bounds(x, bounds):
                raise MetricCodeError(
                    f'metric "{v.name}" gave {x!r} ({what}) on this test set, outside the range its definition '
                    f"declares ({bounds_text(bounds)}, MetricDef.bounds): fix the metric or its bounds. Not stored."
                )
