"""The built-in metrics: the one place their names, labels, directions and arithmetic are defined.

Point values come from scikit-learn (labels=range(n_labels) so a class absent from a test set still
counts, zero_division=0; careful: f1_score defaults to binary). Confusion-matrix metrics also have a
vectorised form over per-class counts (and, derived from it, over a stack of confusion matrices), score
metrics a vectorised form over resample indices; tests/test_metrics.py checks them against sklearn.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np

from harness.metrics.core import ClassCounts, MetricData, MetricDef
from harness.records import ScoreKind


@cache
def _sk() -> Any:
    """sklearn.metrics, imported on first use: importing it (with scipy and pandas) takes ~1.7 s, which
    every command that only reads stored results (show, site, pick, --help) would pay at start-up."""
    import sklearn.metrics

    return sklearn.metrics


# The range every value of a metric (and each end of its CI) lies in, by its definition: a stored value
# outside it was not computed by this harness (see MetricDef.bounds).
UNIT = (0.0, 1.0)  # shares, F1, precision, recall, AUC, calibration error
CORRELATION = (-1.0, 1.0)  # MCC, Cohen's kappa


# ---- confusion-matrix metrics --------------------------------------------------------------------


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), 0.0)


def _f1_per_class(c: ClassCounts) -> np.ndarray:
    return _safe_div(2 * c.tp, c.support + c.predicted)


def _accuracy_counts(c: ClassCounts) -> np.ndarray:
    return c.tp.sum(axis=1) / c.total


def _balanced_accuracy_counts(c: ClassCounts) -> np.ndarray:
    present = c.support > 0
    return (_safe_div(c.tp, c.support) * present).sum(axis=1) / present.sum(axis=1)


def _weighted_f1_counts(c: ClassCounts) -> np.ndarray:
    return (_f1_per_class(c) * (c.support / c.total[:, None])).sum(axis=1)


def _mcc_counts(c: ClassCounts) -> np.ndarray:
    tp, t, p, s = c
    correct = tp.sum(axis=1)
    cov_ytyp = correct * s - (t * p).sum(axis=1)
    cov_ypyp = s**2 - (p * p).sum(axis=1)
    cov_ytyt = s**2 - (t * t).sum(axis=1)
    denom = np.sqrt(cov_ytyt * cov_ypyp)
    # One true class: a correlation with a constant is undefined (sklearn's 0 scored a perfect model as
    # chance). A constant prediction of varied truth keeps sklearn's 0 (no information, as Cohen's kappa).
    return np.where(cov_ytyt > 0, _safe_div(cov_ytyp, denom), np.nan)


def _mcc(d: MetricData) -> float:
    if len(np.unique(d.y)) < 2:
        return math.nan
    return float(_sk().matthews_corrcoef(d.y, d.pred))


def _kappa_counts(c: ClassCounts) -> np.ndarray:
    tp, t, p, s = c
    observed_disagreement = s - tp.sum(axis=1)
    expected_disagreement = s - (t * p).sum(axis=1) / s
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - observed_disagreement / expected_disagreement


def _labels_metric(
    name: str,
    label: str,
    point: Any,
    counts: Any,
    description: str,
    mcnemar: bool = False,
    bounds: tuple[float, float] = UNIT,
) -> MetricDef:
    """A metric of the predicted labels: sklearn's point value, the vectorised form over per-class counts
    (and over confusion matrices, derived from it)."""

    def from_confusions(cms: np.ndarray) -> np.ndarray:
        return np.asarray(counts(ClassCounts.of_confusions(cms)))

    return MetricDef(
        name=name, label=label, point=point, from_confusions=from_confusions, from_counts=counts,
        description=description, mcnemar=mcnemar, bounds=bounds,
    )  # fmt: skip


def _f1(average: str) -> Any:
    def point(d: MetricData) -> float:
        return float(_sk().f1_score(d.y, d.pred, labels=d.labels, average=average, zero_division=0))

    return point


ACCURACY = _labels_metric(
    "accuracy", "Accuracy", lambda d: float(_sk().accuracy_score(d.y, d.pred)), _accuracy_counts,
    "Share of test examples whose predicted label is the true one.", mcnemar=True,
)  # fmt: skip


def _balanced_accuracy(d: MetricData) -> float:
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true": expected, they are ignored
        warnings.simplefilter("ignore", UserWarning)
        return float(_sk().balanced_accuracy_score(d.y, d.pred))


BALANCED_ACCURACY = _labels_metric(
    "balanced_accuracy", "Balanced accuracy", _balanced_accuracy,
    _balanced_accuracy_counts, "Mean recall over the classes present in the test set.",
)  # fmt: skip
MACRO_F1 = _labels_metric(
    "macro_f1", "Macro-F1", _f1("macro"), lambda c: _f1_per_class(c).mean(axis=1),
    "Unweighted mean of per-class F1 over all declared labels (an absent class counts as 0).",
)  # fmt: skip
WEIGHTED_F1 = _labels_metric(
    "weighted_f1", "Weighted F1", _f1("weighted"),
    _weighted_f1_counts, "Per-class F1 weighted by class support.",
)  # fmt: skip
MICRO_F1 = _labels_metric(
    "micro_f1", "Micro-F1", _f1("micro"), _accuracy_counts,
    "F1 of pooled counts; equals accuracy for single-label classification over all labels.",
)  # fmt: skip
MACRO_PRECISION = _labels_metric(
    "macro_precision", "Macro precision",
    lambda d: float(_sk().precision_score(d.y, d.pred, labels=d.labels, average="macro", zero_division=0)),
    lambda c: _safe_div(c.tp, c.predicted).mean(axis=1), "Unweighted mean of per-class precision.",
)  # fmt: skip
MACRO_RECALL = _labels_metric(
    "macro_recall", "Macro recall",
    lambda d: float(_sk().recall_score(d.y, d.pred, labels=d.labels, average="macro", zero_division=0)),
    lambda c: _safe_div(c.tp, c.support).mean(axis=1), "Unweighted mean of per-class recall over all declared labels.",
)  # fmt: skip
MCC = _labels_metric(
    "mcc", "MCC", _mcc, _mcc_counts,
    "Matthews correlation coefficient (multiclass R_K); 0 for a constant prediction, undefined (not stored) "
    "when the test set holds one class.", bounds=CORRELATION,
)  # fmt: skip
def _kappa(d: MetricData) -> float:
    with warnings.catch_warnings():  # "undefined ... set to nan": the run's n/a note says it once, in words
        warnings.simplefilter("ignore", UserWarning)
        return float(_sk().cohen_kappa_score(d.y, d.pred, labels=d.labels))


COHEN_KAPPA = _labels_metric(
    "cohen_kappa", "Cohen's kappa", _kappa, _kappa_counts,
    "Agreement between predicted and true labels corrected for chance.", bounds=CORRELATION,
)  # fmt: skip
PER_CLASS_F1 = MetricDef(
    name="f1",
    label="F1 per class",
    point=lambda d: _sk().f1_score(d.y, d.pred, labels=d.labels, average=None, zero_division=0).astype(float),
    shape="per_class",
    description="F1 of each label, stored as f1/<label> (no CI).",
    bounds=UNIT,
)
CONFUSION_MATRIX = MetricDef(
    name="confusion_matrix",
    label="Confusion matrix",
    point=lambda d: _sk().confusion_matrix(d.y, d.pred, labels=d.labels),
    shape="matrix",
    description="Counts, rows = true label, columns = predicted label (runs.confusion_json).",
)

# ---- score metrics -------------------------------------------------------------------------------

ANY_SCORE: tuple[ScoreKind, ...] = ()  # rank-based: any score kind orders the labels
PROBABILITY: tuple[ScoreKind, ...] = ("probability",)


def _probabilities(d: MetricData) -> np.ndarray:
    """Rows renormalised in float64 (stored float32 rows sum to 1 only within ~1e-7)."""
    assert d.scores is not None
    p = np.clip(d.scores, 0.0, None)
    return p / p.sum(axis=1, keepdims=True)


def _mean_form(per_example: Any) -> Any:
    def resampled(d: MetricData, idx: np.ndarray, **params: Any) -> np.ndarray:
        return np.asarray(per_example(d, **params))[idx].mean(axis=1)

    return resampled


def _top_k_hits(d: MetricData, k: int = 2) -> np.ndarray:
    assert d.scores is not None
    ranked = np.argsort(d.scores, axis=1, kind="mergesort")[:, ::-1][:, :k]  # sklearn's tie order
    return (ranked == d.y[:, None]).any(axis=1).astype(np.float64)


def _top_k_point(d: MetricData, k: int = 2) -> float:
    assert d.scores is not None
    return float(_sk().top_k_accuracy_score(d.y, d.scores, k=k, labels=d.labels))


def _check_k(params: Mapping[str, Any], n_labels: int) -> str | None:
    k = params.get("k")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k < n_labels:
        return f"params.k must be an integer from 1 to {n_labels - 1} (the task has {n_labels} labels), got {k!r}"
    if n_labels < 3:
        return "top_k_accuracy needs at least 3 labels (with 2, top-2 is always right)"
    return None


def _ranking_columns(d: MetricData) -> list[tuple[np.ndarray, np.ndarray]]:
    """(is_positive, score) per one-vs-rest problem: binary tasks rank by s1 - s0, others per class."""
    assert d.scores is not None
    if d.n_labels == 2:
        return [(d.y == 1, d.scores[:, 1] - d.scores[:, 0])]
    return [(d.y == c, d.scores[:, c]) for c in range(d.n_labels)]


def _ovr_point(score_fn_name: str) -> Any:
    def point(d: MetricData) -> float:
        score_fn = getattr(_sk(), score_fn_name)
        values = [float(score_fn(pos, s)) for pos, s in _ranking_columns(d) if 0 < pos.sum() < len(pos)]
        return float(np.mean(values)) if values else float("nan")

    return point


def _weighted_counts(pos: np.ndarray, score: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per resample (rows of idx) and per distinct score value (ascending): weight of positives and negatives."""
    values, inverse = np.unique(score, return_inverse=True)
    u, m = len(values), len(idx)
    codes = (inverse[idx] + np.arange(m)[:, None] * u).ravel()
    total = np.bincount(codes, minlength=m * u).reshape(m, u).astype(np.float64)
    positive = np.bincount(codes, weights=pos[idx].ravel().astype(np.float64), minlength=m * u).reshape(m, u)
    return positive, total - positive


def _auc_resampled_one(pos: np.ndarray, score: np.ndarray, idx: np.ndarray) -> np.ndarray:
    wpos, wneg = _weighted_counts(pos, score, idx)
    below = np.cumsum(wneg, axis=1) - wneg
    n_pos, n_neg = wpos.sum(axis=1), wneg.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (wpos * (below + 0.5 * wneg)).sum(axis=1) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def _ap_resampled_one(pos: np.ndarray, score: np.ndarray, idx: np.ndarray) -> np.ndarray:
    wpos, wneg = _weighted_counts(pos, score, idx)
    wpos, wneg = wpos[:, ::-1], wneg[:, ::-1]  # thresholds from the highest score down
    tp, fp = np.cumsum(wpos, axis=1), np.cumsum(wneg, axis=1)
    n_pos, n_neg = tp[:, -1], fp[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        ap = (wpos * precision).sum(axis=1) / n_pos
    return np.where((n_pos > 0) & (n_neg > 0), ap, np.nan)


def _ovr_resampled(one: Any) -> Any:
    def resampled(d: MetricData, idx: np.ndarray) -> np.ndarray:
        columns = [one(pos, s, idx) for pos, s in _ranking_columns(d) if 0 < pos.sum() < len(pos)]
        if not columns:
            return np.full(len(idx), np.nan)
        stacked = np.stack(columns)
        defined = np.isfinite(stacked)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(defined, stacked, 0.0).sum(axis=0) / defined.sum(axis=0)

    return resampled


def _log_loss_per_example(d: MetricData) -> np.ndarray:
    p = _probabilities(d)
    eps = np.finfo(np.float64).eps
    return -np.log(np.clip(p[np.arange(len(d.y)), d.y], eps, 1 - eps))


def _brier_per_example(d: MetricData) -> np.ndarray:
    p = _probabilities(d)
    onehot = np.eye(d.n_labels)[d.y]
    scale = 0.5 if d.n_labels == 2 else 1.0  # sklearn's binary Brier: (p_positive - y)^2
    return scale * ((p - onehot) ** 2).sum(axis=1)


def _ece_parts(d: MetricData, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(bin of each example, confidence - correctness): equal-width bins (lo, hi] of the top probability."""
    p = _probabilities(d)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == d.y).astype(np.float64)
    bins = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    return bins, conf - correct


def _ece_point(d: MetricData, n_bins: int = 15) -> float:
    bins, gap = _ece_parts(d, n_bins)
    return float(np.abs(np.bincount(bins, weights=gap, minlength=n_bins)).sum() / len(gap))


def _ece_resampled(d: MetricData, idx: np.ndarray, n_bins: int = 15) -> np.ndarray:
    bins, gap = _ece_parts(d, n_bins)
    m = len(idx)
    codes = (bins[idx] + np.arange(m)[:, None] * n_bins).ravel()
    sums = np.bincount(codes, weights=gap[idx].ravel(), minlength=m * n_bins).reshape(m, n_bins)
    return np.abs(sums).sum(axis=1) / idx.shape[1]


MAX_BINS = 1000


def _check_bins(params: Mapping[str, Any], n_labels: int) -> str | None:
    n = params.get("n_bins")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        return f"params.n_bins must be a positive integer, got {n!r}"
    if n > MAX_BINS:  # the resampled form holds n_boot x n_bins arrays: 10**12 bins asked for 7 TiB
        return f"params.n_bins must be at most {MAX_BINS:,} (15 is usual; a bin needs examples to mean anything), got {n:,}"
    return None


TOP_K_ACCURACY = MetricDef(
    name="top_k_accuracy", label="Top-{k} accuracy", point=_top_k_point, needs="scores", score_kinds=ANY_SCORE,
    params={"k": 2}, resampled=_mean_form(_top_k_hits), check_params=_check_k,
    description="Share of examples whose true label is among the k highest-scored labels (any score kind).",
    bounds=UNIT,
)  # fmt: skip
ROC_AUC = MetricDef(
    name="roc_auc", label="ROC-AUC",
    point=_ovr_point("roc_auc_score"), needs="scores", score_kinds=ANY_SCORE,
    resampled=_ovr_resampled(_auc_resampled_one),
    description="Area under the ROC curve: binary (ranked by s1 - s0), else macro one-vs-rest over the classes "
    "present. Rank-based, so any score kind applies.",
    bounds=UNIT,
)  # fmt: skip
AVERAGE_PRECISION = MetricDef(
    name="average_precision", label="Average precision",
    point=_ovr_point("average_precision_score"), needs="scores", score_kinds=ANY_SCORE,
    resampled=_ovr_resampled(_ap_resampled_one),
    description="Area under the precision-recall curve (binary, else macro one-vs-rest). Rank-based.",
    bounds=UNIT,
)  # fmt: skip
LOG_LOSS = MetricDef(
    name="log_loss", label="Log-loss", higher_is_better=False, needs="scores", score_kinds=PROBABILITY,
    point=lambda d: float(_sk().log_loss(d.y, _probabilities(d), labels=d.labels)),
    resampled=_mean_form(_log_loss_per_example),
    description="Mean negative log-probability of the true label (probabilities only).",
    bounds=(0.0, math.inf),
)  # fmt: skip
BRIER = MetricDef(
    name="brier", label="Brier score", higher_is_better=False, needs="scores", score_kinds=PROBABILITY,
    point=lambda d: float(_sk().brier_score_loss(d.y, _probabilities(d), labels=d.labels)),
    resampled=_mean_form(_brier_per_example),
    description="Mean squared error of the probabilities (sklearn's definition; binary: (p1 - y)^2).",
    bounds=(0.0, 2.0),  # multiclass: the sum over labels of (p - y)^2
)  # fmt: skip
ECE = MetricDef(
    name="ece", label="ECE ({n_bins} bins)", higher_is_better=False, needs="scores", score_kinds=PROBABILITY,
    params={"n_bins": 15}, point=_ece_point, resampled=_ece_resampled, check_params=_check_bins,
    description="Expected calibration error: |confidence - accuracy| per equal-width confidence bin, "
    "weighted by the bin's share of examples.",
    bounds=UNIT,
)  # fmt: skip

BUILTIN_METRICS: tuple[MetricDef, ...] = (
    ACCURACY, BALANCED_ACCURACY, MACRO_F1, WEIGHTED_F1, MICRO_F1, MACRO_PRECISION, MACRO_RECALL, MCC,
    COHEN_KAPPA, PER_CLASS_F1, CONFUSION_MATRIX, TOP_K_ACCURACY, ROC_AUC, AVERAGE_PRECISION, LOG_LOSS,
    BRIER, ECE,
)  # fmt: skip
# What a task gets when it declares no metrics, and its main metric when it names none.
DEFAULT_METRICS: tuple[str, ...] = (
    "accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall", "f1", "confusion_matrix",
)  # fmt: skip
DEFAULT_MAIN_METRIC = "macro_f1"
# Computed for every run whatever the task declares (the site's confusion matrices need it).
ALWAYS: tuple[str, ...] = ("confusion_matrix",)
