"""Statistics: the metrics with 95% bootstrap CIs of one run, and a paired comparison of two."""

from __future__ import annotations

from typing import Any

import numpy as np
from result_fixtures import DEFAULT_METRICS, LABELS, digits, zoo_model

from harness.metrics import BootstrapConfig, MetricData, evaluate
from harness.metrics.stats import paired_bootstrap


def _data(name: str) -> MetricData:
    model = zoo_model(name)
    return MetricData.of(digits().y_test, model.preds, len(LABELS), model.class_scores, model.score_kind)


def test_metrics_with_bootstrap_ci(benchmark: Any) -> None:
    data = _data("logreg")
    benchmark(evaluate, DEFAULT_METRICS, data, LABELS, BootstrapConfig(n_boot=1000, seed=0))


def test_paired_bootstrap_main_metric(benchmark: Any) -> None:
    metric = DEFAULT_METRICS.get(DEFAULT_METRICS.main)
    a, b = _data("logreg"), _data("knn-3")
    result = benchmark(paired_bootstrap, metric, [a], [b], n_boot=1000, seed=0)
    assert np.isfinite(result.p_value)
