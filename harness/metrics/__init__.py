"""Metrics and statistics: one registry of metric definitions, one resampling kernel, paired tests and
tie groups for any metric.

- core: MetricDef (a metric, defined once), MetricData (a run's labels, predictions, class scores),
  TaskMetric (a metric as a task uses it), MetricInfo (what readers of the store know of it)
- builtin: the built-in metrics, the only place their names live
- registry: name -> definition; resolving a task's `metrics:` / `main_metric:`
- resample: the one bootstrap kernel (indices shared across models: paired by construction)
- evaluate: a run's metrics with CIs
- stats: McNemar (accuracy), paired bootstrap (any metric), tie groups with an optional Holm correction

A plugin metric is a MetricDef in a --plugin .py file or behind the `harness.metrics` entry point group;
see docs/adding-a-metric.md.
"""

from harness.metrics.core import REQUIRED, MetricData, MetricDef, MetricInfo, TaskMetric
from harness.metrics.evaluate import BootstrapConfig, Evaluation, evaluate
from harness.metrics.registry import MetricRegistry, TaskMetrics

__all__ = [
    "REQUIRED",
    "BootstrapConfig",
    "Evaluation",
    "MetricData",
    "MetricDef",
    "MetricInfo",
    "MetricRegistry",
    "TaskMetric",
    "TaskMetrics",
    "evaluate",
]
