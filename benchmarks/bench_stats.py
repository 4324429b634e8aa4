"""Statistics: the metrics with 95% bootstrap CIs of one run, and a paired comparison of two."""

from __future__ import annotations

from typing import Any

import numpy as np
from result_fixtures import LABELS, digits, zoo_model

from harness.metrics import BootstrapConfig, classification_metrics
from harness.stats import ConfusionMetric, paired_bootstrap


def test_metrics_with_bootstrap_ci(benchmark: Any) -> None:
    y, pred = digits().y_test, zoo_model("logreg").preds
    benchmark(classification_metrics, y, pred, LABELS, BootstrapConfig(n_boot=1000, seed=0))


def test_paired_bootstrap_macro_f1(benchmark: Any) -> None:
    y = digits().y_test
    a, b = zoo_model("logreg").preds, zoo_model("knn-3").preds
    result = benchmark(paired_bootstrap, y, a, b, ConfusionMetric("macro_f1", 10), n_boot=1000, seed=0)
    assert np.isfinite(result.p_value)
