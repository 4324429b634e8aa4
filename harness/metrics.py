"""Classification metrics (sklearn for the point estimates) with seeded bootstrap 95% CIs.

The main score is macro-F1 over ALL declared labels (a class absent from the test split counts as 0,
as sklearn does with labels=... and zero_division=0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score

from harness.records import MetricValue

HEADLINE = ("accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall")


@dataclass(frozen=True)
class BootstrapConfig:
    n_boot: int = 1000
    seed: int = 0
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.n_boot < 1:
            raise ValueError(f"n_boot must be >= 1 (bootstrap resamples; 1000 is usual), got {self.n_boot}.")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}.")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be between 0 and 1 (exclusive), e.g. 0.95, got {self.confidence}.")


def point_metrics(y: np.ndarray, pred: np.ndarray, n_labels: int) -> dict[str, float]:
    labels = list(range(n_labels))
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y, pred, labels=labels, average="weighted", zero_division=0)),
        "macro_precision": float(precision_score(y, pred, labels=labels, average="macro", zero_division=0)),
        "macro_recall": float(recall_score(y, pred, labels=labels, average="macro", zero_division=0)),
    }


def metrics_from_confusions(cms: np.ndarray) -> dict[str, np.ndarray]:
    """Vectorised headline metrics for a stack of confusion matrices (B, L, L), rows = true labels."""
    tp = np.diagonal(cms, axis1=1, axis2=2).astype(np.float64)
    support = cms.sum(axis=2).astype(np.float64)
    predicted = cms.sum(axis=1).astype(np.float64)
    total = support.sum(axis=1)
    fp, fn = predicted - tp, support - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        weights = support / total[:, None]
    return {
        "accuracy": tp.sum(axis=1) / total,
        "macro_f1": f1.mean(axis=1),
        "weighted_f1": (f1 * weights).sum(axis=1),
        "macro_precision": precision.mean(axis=1),
        "macro_recall": recall.mean(axis=1),
    }


def bootstrap_confusions(y: np.ndarray, pred: np.ndarray, n_labels: int, cfg: BootstrapConfig) -> np.ndarray:
    """(n_boot, L, L) confusion matrices of resampled test sets, seeded, computed with one bincount."""
    n = len(y)
    rng = np.random.default_rng(cfg.seed)
    codes = np.asarray(y, dtype=np.int64) * n_labels + np.asarray(pred, dtype=np.int64)
    cells = n_labels * n_labels
    out = np.empty((cfg.n_boot, n_labels, n_labels), dtype=np.int64)
    chunk = max(1, 4_000_000 // max(n, 1))  # bound memory of the (chunk, n) index matrix
    for start in range(0, cfg.n_boot, chunk):
        b = min(chunk, cfg.n_boot - start)
        idx = rng.integers(0, n, size=(b, n))
        flat = (codes[idx] + (np.arange(b)[:, None] * cells)).ravel()
        out[start : start + b] = np.bincount(flat, minlength=b * cells).reshape(b, n_labels, n_labels)
    return out


def classification_metrics(
    y: np.ndarray,
    pred: np.ndarray,
    label_names: Sequence[str],
    cfg: BootstrapConfig | None = None,
) -> tuple[list[MetricValue], list[list[int]]]:
    """Headline metrics with bootstrap CIs, per-class F1 (no CI) and the confusion matrix."""
    cfg = cfg or BootstrapConfig()
    n_labels = len(label_names)
    y = np.asarray(y, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    point = point_metrics(y, pred, n_labels)
    boot = metrics_from_confusions(bootstrap_confusions(y, pred, n_labels, cfg))
    alpha = (1 - cfg.confidence) / 2
    out = [
        MetricValue(
            name,
            point[name],
            float(np.quantile(boot[name], alpha)),
            float(np.quantile(boot[name], 1 - alpha)),
        )
        for name in HEADLINE
    ]
    per_class = f1_score(y, pred, labels=list(range(n_labels)), average=None, zero_division=0)
    out.extend(MetricValue(f"f1/{label}", float(v)) for label, v in zip(label_names, per_class, strict=True))
    cm = confusion_matrix(y, pred, labels=list(range(n_labels)))
    return out, cm.tolist()
