"""Metric name -> definition, and resolving what a task declares (`metrics:`, `main_metric:`).

Discovery (built-ins, the `harness.metrics` entry-point group, --plugin .py files) lives in
harness.registry beside task discovery; this module only knows definitions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError, close_match
from harness.metrics.builtin import ALWAYS, BUILTIN_METRICS, DEFAULT_MAIN_METRIC, DEFAULT_METRICS
from harness.metrics.core import REQUIRED, MetricDef, MetricInfo, TaskMetric
from harness.tasks import MetricRef

_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.@")


@dataclass(frozen=True, eq=False)
class TaskMetrics:
    """A task's resolved metrics (declaration order) and the id of its main metric."""

    metrics: tuple[TaskMetric, ...]
    main: str

    def scalar(self) -> tuple[TaskMetric, ...]:
        return tuple(m for m in self.metrics if m.scalar)

    def get(self, metric_id: str) -> TaskMetric:
        for m in self.metrics:
            if m.id == metric_id:
                return m
        raise KeyError(metric_id)

    @property
    def main_metric(self) -> TaskMetric:
        return self.get(self.main)

    def describe(self) -> dict[str, Any]:
        """Stored in tasks.spec_json: readers of the store get ids, labels and directions without plugins."""
        return {"metrics": [m.describe() for m in self.metrics], "main_metric": self.main}

    def infos(self) -> tuple[MetricInfo, ...]:
        return tuple(MetricInfo.of(m) for m in self.metrics)

    def key(self) -> list[str]:
        return [m.key() for m in self.metrics] + [f"main={self.main}"]


class MetricRegistry:
    def __init__(self, defs: Iterable[tuple[MetricDef, str]] = ()) -> None:
        self._defs: dict[str, MetricDef] = {}
        self._origins: dict[str, str] = {}
        for d in BUILTIN_METRICS:
            self.add(d, "built-in")
        for d, origin in defs:
            self.add(d, origin)

    def add(self, metric: MetricDef, origin: str) -> None:
        if not isinstance(metric, MetricDef):
            raise ConfigError(f"{origin}: expected a harness.metrics.MetricDef, got {type(metric).__name__}.")
        if metric.name in self._defs:
            raise ConfigError(
                f'Two metrics are named "{metric.name}": one from {self._origins[metric.name]}, one from {origin}. '
                "Rename the plugin's metric (metric names must be unique)."
            )
        if metric.shape == "matrix" and origin != "built-in":  # it replaced the run's stored confusion matrix
            raise ConfigError(
                f'{origin}: metric "{metric.name}" has shape "matrix": the confusion matrix is the only matrix a run '
                'stores. Give a single number ("scalar") or one per label ("per_class").'
            )
        if not metric.name or not set(metric.name) <= _ID_CHARS:
            raise ConfigError(f"{origin}: metric name {metric.name!r} must use letters, digits, '_', '-', '.'.")
        self._defs[metric.name] = metric
        self._origins[metric.name] = origin

    def names(self) -> list[str]:
        return sorted(self._defs)

    def get(self, name: str) -> MetricDef:
        return self._defs[name]

    def __contains__(self, name: object) -> bool:
        return name in self._defs

    def origin(self, name: str) -> str:
        return self._origins[name]

    def resolve(
        self, declared: Sequence[str | MetricRef], main_metric: str, n_labels: int, *, where: str
    ) -> TaskMetrics:
        """A task's declaration -> TaskMetrics, or ConfigError naming `where` (the file), the key and a
        close match. No declaration: the default set; no main metric: macro-F1 when declared, else the
        first scalar metric declared."""
        refs = [MetricRef(d) if isinstance(d, str) else d for d in (declared or DEFAULT_METRICS)]
        resolved: list[TaskMetric] = []
        for i, ref in enumerate(refs):
            resolved.append(self._resolve_one(ref, n_labels, f"{where}: key 'metrics[{i}]'"))
        for name in ALWAYS:
            if name not in [m.metric.name for m in resolved]:
                resolved.append(TaskMetric(name, self._defs[name]))
        ids = [m.id for m in resolved]  # always-on metrics included: stored ids must be unique
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ConfigError(
                f"{where}: key 'metrics' lists {', '.join(dupes)} twice; give each use of a metric its own "
                "'id' (e.g. {name: top_k_accuracy, params: {k: 3}, id: top3})."
            )
        scalar_ids = [m.id for m in resolved if m.scalar]
        if not scalar_ids:
            raise ConfigError(f"{where}: key 'metrics' declares no single-number metric to rank models by.")
        if main_metric:
            if main_metric not in scalar_ids:
                why = (
                    "is not a single-number metric"
                    if main_metric in ids
                    else "is not among the task's metrics"
                )
                raise ConfigError(
                    f"{where}: key 'main_metric': \"{main_metric}\" {why}.{close_match(main_metric, scalar_ids)} "
                    f"The task's metrics: {', '.join(scalar_ids)}."
                    + (" Add it to 'metrics' too." if main_metric in self._defs and main_metric not in ids else "")
                )
            main = main_metric
        else:
            main = DEFAULT_MAIN_METRIC if DEFAULT_MAIN_METRIC in scalar_ids else scalar_ids[0]
        return TaskMetrics(tuple(resolved), main)

    def _resolve_one(self, ref: MetricRef, n_labels: int, where: str) -> TaskMetric:
        if ref.name not in self._defs:
            raise ConfigError(
                f'{where}: unknown metric "{ref.name}".{close_match(ref.name, self._defs)} '
                f"Available: {', '.join(self.names())} (plugins add more: --plugin, a suite's plugins:, or the "
                "harness.metrics entry point group)."
            )
        metric = self._defs[ref.name]
        params: dict[str, Any] = {}
        for key, value in dict(ref.params).items():
            if key not in metric.params:
                allowed = ", ".join(metric.params) or "none"
                raise ConfigError(
                    f'{where}.params: metric "{metric.name}" has no parameter "{key}".'
                    f"{close_match(str(key), metric.params)} Its parameters: {allowed}."
                )
            if isinstance(value, float) and not math.isfinite(value):  # stored as JSON, which has no inf or nan
                raise ConfigError(f'{where}.params.{key}: metric "{metric.name}" needs a finite number, got {value}.')
            params[key] = value
        for key, default in metric.params.items():
            if key not in params:
                if default is REQUIRED:
                    raise ConfigError(f'{where}.params: metric "{metric.name}" needs parameter "{key}".')
                params[key] = default
        if metric.check_params is not None:
            try:
                problem = metric.check_params(params, n_labels)
            except Exception as exc:  # a plugin's check: one paragraph naming it, not a traceback
                raise ConfigError(
                    f'{where}: metric "{metric.name}" ({self._origins[metric.name]}): its check_params raised '
                    f"{type(exc).__name__}: {exc}."
                ) from None
            if problem is not None and not isinstance(problem, str):
                raise ConfigError(
                    f'{where}: metric "{metric.name}" ({self._origins[metric.name]}): its check_params returned '
                    f"{type(problem).__name__} {problem!r}; expected None (the parameters are valid) or an error text."
                )
            if problem:
                raise ConfigError(f'{where}: metric "{metric.name}": {problem}.')
        metric_id = ref.id or ref.name
        if not set(metric_id) <= _ID_CHARS or "/" in metric_id:
            raise ConfigError(f"{where}.id: {metric_id!r} must use letters, digits, '_', '-', '.', '@'.")
        resolved = TaskMetric(metric_id, metric, params)
        # The id is what the store, site, pick and compare know a metric by: an id naming a different
        # metric would be shown (and recomputed) as that metric.
        if metric_id != metric.name and metric_id in self._defs:
            raise ConfigError(
                f'{where}.id: "{metric_id}" is the name of another metric, so this {metric.name} would be '
                f"stored and shown as {metric_id}. Give it an id that names no metric (e.g. "
                f"{_suggest_id(resolved)})."
            )
        return resolved


def _suggest_id(metric: TaskMetric) -> str:
    """An id for `metric` built from its name and parameters, e.g. top_k_accuracy_k2."""
    suffix = "_".join(f"{k}{v}" for k, v in sorted(metric.params.items()) if isinstance(v, (int, str)))
    candidate = f"{metric.metric.name}_{suffix}" if suffix else f"my_{metric.metric.name}"
    return candidate if set(candidate) <= _ID_CHARS else f"my_{metric.metric.name}"


def stored_task_metrics(spec: Mapping[str, Any] | None) -> tuple[tuple[dict[str, Any], ...], str]:
    """(metric descriptions, main metric id) a stored task spec (tasks.spec_json) declares. Stores written
    before tasks declared metrics: the built-in default set, with the old main metric when it is in it."""
    spec = spec or {}
    declared = spec.get("metrics")
    if isinstance(declared, list) and declared and all(isinstance(d, Mapping) and "id" in d for d in declared):
        descriptions = tuple(dict(d) for d in declared)
        scalar = [str(d["id"]) for d in descriptions if d.get("shape", "scalar") == "scalar"]
        main = str(spec.get("main_metric") or "")
        return descriptions, main if main in scalar else (scalar[0] if scalar else DEFAULT_MAIN_METRIC)
    defaults = MetricRegistry().resolve((), "", 2, where="stored task")
    old_main = str(spec.get("main_metric") or "")
    scalar = [m.id for m in defaults.scalar()]
    return tuple(m.describe() for m in defaults.metrics), old_main if old_main in scalar else defaults.main


def stored_metric_infos(spec: Mapping[str, Any] | None) -> tuple[tuple[MetricInfo, ...], str]:
    """MetricInfos (ids, labels, directions) and the main metric id of a stored task spec."""
    descriptions, main = stored_task_metrics(spec)
    return tuple(MetricInfo.from_description(d) for d in descriptions), main


def metric_from_description(
    description: Mapping[str, Any], registry: MetricRegistry | None = None
) -> TaskMetric | None:
    """The computable TaskMetric a stored description names, or None when its definition is not loaded
    (a plugin metric read without the plugin)."""
    registry = registry or MetricRegistry()
    name = str(description.get("name", ""))
    if name not in registry:
        return None
    return TaskMetric(str(description["id"]), registry.get(name), dict(description.get("params") or {}))


def builtin_info(metric_id: str) -> MetricInfo | None:
    """Label and direction of a built-in metric with default parameters (e.g. for --metric)."""
    for d in BUILTIN_METRICS:
        if d.name == metric_id:
            return MetricInfo.of(TaskMetric(d.name, d, dict(d.params)))
    return None
