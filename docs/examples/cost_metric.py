"""A plugin metric: cost-weighted error, with the cost matrix given in the task YAML.

    metrics:
      - mcc
      - {name: cost_weighted_error, params: {cost: [[0, 1], [10, 0]]}}   # rows: true, columns: predicted

Load it with `--plugin docs/examples/cost_metric.py`, a suite's `plugins:` list, or the `harness.metrics`
entry point group of an installed package (`cost_weighted_error = cost_metric:COST_WEIGHTED_ERROR`).
Bootstrap CIs, paired tests, tie groups, the site and the compare gate then work for it unchanged.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix

from harness.metrics import REQUIRED, MetricData, MetricDef


def cost_weighted_error(data: MetricData, cost: list[list[float]]) -> float:
    cm = confusion_matrix(data.y, data.pred, labels=data.labels)
    return float((cm * np.asarray(cost)).sum() / cm.sum())


def from_confusions(cms: np.ndarray, cost: list[list[float]]) -> np.ndarray:  # optional: 1,000 resamples at once
    return (cms * np.asarray(cost)).sum(axis=(1, 2)) / cms.sum(axis=(1, 2))


def check(params: Mapping[str, Any], n_labels: int) -> str | None:
    cost = np.asarray(params["cost"], dtype=float) if isinstance(params["cost"], list) else None
    if cost is None or cost.shape != (n_labels, n_labels) or (cost < 0).any():
        return f"params.cost must be a {n_labels} x {n_labels} list of non-negative numbers (rows: true label)"
    return None


COST_WEIGHTED_ERROR = MetricDef(
    name="cost_weighted_error",
    label="Cost-weighted error",
    point=cost_weighted_error,
    higher_is_better=False,
    params={"cost": REQUIRED},
    from_confusions=from_confusions,
    check_params=check,
    description="Mean misclassification cost per example, from a cost matrix (rows: true, columns: predicted).",
)
