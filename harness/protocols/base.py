"""What every protocol returns, and the registry of protocol names -> (config class, run function)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.features import FeatureCache
from harness.models.base import ModelAdapter
from harness.records import MetricValue, ScoreKind
from harness.tasks import Split


@dataclass(frozen=True, eq=False)
class ProtocolOutput:
    preds: np.ndarray  # (N_test,) predicted label indices
    scores: np.ndarray  # (N_test,) confidence of the predicted label
    predict: Callable[[Sequence[Any]], np.ndarray]  # raw inputs -> label indices: the timed inference path
    selected: Mapping[str, Any] = field(default_factory=dict)  # hyper-parameters chosen on validation
    extra_metrics: tuple[MetricValue, ...] = ()
    class_scores: np.ndarray | None = None  # (N_test, n_labels) scores of every label, kind in score_kind
    score_kind: ScoreKind | None = None


@dataclass
class ProtocolContext:
    features: FeatureCache
    seed: int
    model_identity: str = ""  # ModelIdentity.token: features of changed weights are never served from cache

    def encode(self, adapter: ModelAdapter, split: Split) -> Any:
        return self.cached(adapter, split, lambda: adapter.encode(split.inputs))

    def cached(self, adapter: ModelAdapter, split: Split, compute: Callable[[], Any], variant: str = "") -> Any:
        """`compute()` for `split` through the feature cache, keyed by the adapter, its weights and `variant`
        (what else the result depends on, e.g. an LM's prompt and label tokens)."""
        cache_id = adapter.feature_cache_id
        if cache_id is not None and self.model_identity:
            cache_id = f"{cache_id}-{self.model_identity}"
        if cache_id is not None and variant:
            cache_id = f"{cache_id}-{variant}"
        return self.features.get(cache_id, split, compute)


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a (N, n_labels) score matrix (numerically stable)."""
    z = np.asarray(scores, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def confidence(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(argmax predictions, softmax probability of the argmax) for a score matrix."""
    preds = scores.argmax(axis=1)
    return preds, softmax(scores)[np.arange(len(preds)), preds]
