"""What every protocol returns, and the registry of protocol names -> (config class, run function)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.errors import DataError
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
    # The job's Inference as "cuda-bf16" ("" for a CPU-only family): features a GPU computed in bf16 are not
    # served to a run on the CPU from a shared cache, nor the reverse.
    inference: str = ""

    def encode(self, adapter: ModelAdapter, split: Split) -> Any:
        return self.cached(adapter, split, lambda: adapter.encode(split.inputs))

    def cached(self, adapter: ModelAdapter, split: Split, compute: Callable[[], Any], variant: str = "") -> Any:
        """`compute()` for `split` through the feature cache, keyed by the adapter, its weights and `variant`
        (what else the result depends on, e.g. an LM's prompt and label tokens)."""
        cache_id = adapter.feature_cache_id
        if cache_id is not None and self.model_identity:
            cache_id = f"{cache_id}-{self.model_identity}"
        if cache_id is not None and self.inference:
            cache_id = f"{cache_id}-{self.inference}"
        if cache_id is not None and variant:
            cache_id = f"{cache_id}-{variant}"
        return self.features.get(cache_id, split, compute)


def require_two_labels(labels: np.ndarray, names: Sequence[str], protocol: str) -> None:
    """A DataError unless the training examples hold at least two labels: a classifier trained on one learns
    only to say it, and its test numbers measure nothing."""
    present = np.unique(np.asarray(labels))
    if len(present) < 2:
        only = f"all {len(labels)} are labelled {names[int(present[0])]!r}" if len(present) else "there are none"
        raise DataError(
            f"{protocol} needs training examples of at least two labels, but {only}. Add train examples of the "
            "other labels (or a larger few-shot budget)."
        )


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a (N, n_labels) score matrix (numerically stable)."""
    z = np.asarray(scores, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def confidence(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(argmax predictions, softmax probability of the argmax) for a score matrix."""
    preds = scores.argmax(axis=1)
    return preds, softmax(scores)[np.arange(len(preds)), preds]


def macro_f1(y: np.ndarray, pred: np.ndarray, n_labels: int) -> float:
    """Macro-F1 over all n_labels labels (a label never predicted nor present counts as 0)."""
    # sklearn is imported here: planning a run imports the protocols for their config classes, and a
    # re-run of a finished suite should not pay ~1.5 s for it.
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, labels=list(range(n_labels)), average="macro", zero_division=0))


def repeat_metrics(y: np.ndarray, preds: Sequence[np.ndarray], n_labels: int) -> tuple[MetricValue, ...]:
    """The spread of macro-F1 and accuracy over repeated fits (or prompt draws) of one run: mean with
    min-max, and the sample standard deviation."""
    from sklearn.metrics import accuracy_score

    f1s = np.array([macro_f1(y, p, n_labels) for p in preds])
    accs = np.array([accuracy_score(y, p) for p in preds])
    return (
        MetricValue("macro_f1_repeats_mean", float(f1s.mean()), float(f1s.min()), float(f1s.max())),
        MetricValue("macro_f1_repeats_std", float(f1s.std(ddof=1))),
        MetricValue("accuracy_repeats_mean", float(accs.mean()), float(accs.min()), float(accs.max())),
        MetricValue("accuracy_repeats_std", float(accs.std(ddof=1))),
    )
