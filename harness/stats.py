"""Paired significance tests on per-example predictions, and ranks with tie groups.

Two models evaluated on the same test examples are compared *paired*: McNemar's test on per-example
correctness for accuracy, a paired bootstrap (both models resampled with the same example indices)
for macro-F1 and the other confusion-matrix metrics. A leaderboard rank is a tie group: the leader
and every model not significantly worse than it share a rank.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom, chi2
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from harness.errors import DataError, unknown_name
from harness.metrics import metrics_from_confusions

# Below this many discordant pairs the chi-square approximation is poor; use the exact binomial test.
EXACT_BELOW = 25
CONFUSION_METRICS = ("accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall")


@dataclass(frozen=True)
class McNemarResult:
    """n01: examples A got wrong and B got right; n10: A right, B wrong (the discordant pairs)."""

    n01: int
    n10: int
    statistic: float  # exact: min(n01, n10); chi2: continuity-corrected chi-square with 1 dof
    p_value: float
    exact: bool


@dataclass(frozen=True)
class PairedBootstrapResult:
    diff: float  # metric(B) - metric(A) on the full test set
    ci_low: float  # percentile 95% interval of the resampled differences
    ci_high: float
    p_value: float  # two-sided, H0: no difference
    n_boot: int


@dataclass(frozen=True)
class RankedEntry:
    name: str
    value: float
    rank: int  # competition ranking: 1 + number of models placed in earlier (better) tie groups
    tied_with: str | None  # leader of this entry's tie group; None for the leader itself
    p_value: float | None  # paired test against that leader; None for the leader itself


@dataclass(frozen=True)
class ConfusionMetric:
    """A headline metric over a fixed label set, matching harness.metrics.point_metrics exactly.

    Callable like any metric; `from_confusions` evaluates a stack of confusion matrices at once, which
    lets the paired bootstrap run 1,000 resamples with two bincounts instead of 2,000 sklearn calls.
    """

    name: str
    n_labels: int

    def __post_init__(self) -> None:
        if self.name not in CONFUSION_METRICS:
            raise unknown_name("metric", self.name, CONFUSION_METRICS)

    def __call__(self, y: np.ndarray, pred: np.ndarray) -> float:
        labels = list(range(self.n_labels))
        if self.name == "accuracy":
            return float(accuracy_score(y, pred))
        if self.name == "macro_precision":
            return float(precision_score(y, pred, labels=labels, average="macro", zero_division=0))
        if self.name == "macro_recall":
            return float(recall_score(y, pred, labels=labels, average="macro", zero_division=0))
        average = "macro" if self.name == "macro_f1" else "weighted"
        return float(f1_score(y, pred, labels=labels, average=average, zero_division=0))

    def from_confusions(self, cms: np.ndarray) -> np.ndarray:
        """(B, L, L) confusion matrices (rows = true label) -> (B,) metric values."""
        return metrics_from_confusions(cms)[self.name]


def macro_f1(n_labels: int) -> ConfusionMetric:
    return ConfusionMetric("macro_f1", n_labels)


def accuracy(n_labels: int) -> ConfusionMetric:
    return ConfusionMetric("accuracy", n_labels)


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemarResult:
    """McNemar's test on paired correctness: exact binomial when n01 + n10 < 25, else chi-square with
    continuity correction (the same numbers as statsmodels' mcnemar(exact=..., correction=True))."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    _check_paired(len(a), len(b))
    n01 = int(np.sum(~a & b))
    n10 = int(np.sum(a & ~b))
    n = n01 + n10
    if n < EXACT_BELOW:
        k = min(n01, n10)
        p = 1.0 if n == 0 else min(1.0, 2.0 * float(binom.cdf(k, n, 0.5)))
        return McNemarResult(n01, n10, float(k), p, exact=True)
    stat = (abs(n01 - n10) - 1.0) ** 2 / n
    return McNemarResult(n01, n10, float(stat), float(chi2.sf(stat, 1)), exact=False)


def paired_bootstrap(
    y: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float],
    n_boot: int = 1000,
    seed: int = 0,
) -> PairedBootstrapResult:
    """Resample test examples with replacement (the same indices for both models) and look at
    metric(B) - metric(A). CI: 2.5/97.5 percentiles. p: share of resampled differences at least as
    far from the observed one as the observed one is from 0 (the bootstrap distribution shifted to
    H0), with the +1 correction so p is never 0."""
    y = np.asarray(y)
    pred_a = np.asarray(pred_a)
    pred_b = np.asarray(pred_b)
    _check_paired(len(y), len(pred_a), len(pred_b))
    if len(y) == 0:
        raise DataError("paired_bootstrap: no examples to compare.")
    if n_boot < 1:
        raise ValueError("n_boot must be >= 1")
    diff = float(metric(y, pred_b) - metric(y, pred_a))
    if isinstance(metric, ConfusionMetric):
        boot = _vectorised_diffs(y, [pred_a], [pred_b], metric, n_boot, seed)
    else:
        rng = np.random.default_rng(seed)
        boot = np.empty(n_boot)
        for i in range(n_boot):
            idx = rng.integers(0, len(y), size=len(y))
            boot[i] = metric(y[idx], pred_b[idx]) - metric(y[idx], pred_a[idx])
    return _bootstrap_result(diff, boot, n_boot)


def paired_bootstrap_seeds(
    y: np.ndarray,
    preds_a: Sequence[np.ndarray],
    preds_b: Sequence[np.ndarray],
    metric: ConfusionMetric,
    n_boot: int = 1000,
    seed: int = 0,
) -> PairedBootstrapResult:
    """paired_bootstrap where each side is the mean of several runs (seeds) on the same examples: every
    resample draws one set of example indices and scores all runs of both sides on it. With one run per
    side it gives exactly paired_bootstrap's result."""
    y = np.asarray(y)
    if not preds_a or not preds_b:
        raise ValueError("paired_bootstrap_seeds needs at least one prediction array per side")
    _check_paired(len(y), *(len(p) for p in [*preds_a, *preds_b]))
    if len(y) == 0:
        raise DataError("paired_bootstrap: no examples to compare.")
    if n_boot < 1:
        raise ValueError("n_boot must be >= 1")
    diff = float(np.mean([metric(y, p) for p in preds_b]) - np.mean([metric(y, p) for p in preds_a]))
    return _bootstrap_result(diff, _vectorised_diffs(y, preds_a, preds_b, metric, n_boot, seed), n_boot)


def _bootstrap_result(diff: float, boot: np.ndarray, n_boot: int) -> PairedBootstrapResult:
    extreme = int(np.sum(np.abs(boot - diff) >= abs(diff) - 1e-12))
    return PairedBootstrapResult(
        diff=diff,
        ci_low=float(np.quantile(boot, 0.025)),
        ci_high=float(np.quantile(boot, 0.975)),
        p_value=min(1.0, (extreme + 1) / (n_boot + 1)),
        n_boot=n_boot,
    )


def _vectorised_diffs(
    y: np.ndarray,
    preds_a: Sequence[np.ndarray],
    preds_b: Sequence[np.ndarray],
    metric: ConfusionMetric,
    n_boot: int,
    seed: int,
) -> np.ndarray:
    """Resampled mean(metric over preds_b) - mean(metric over preds_a), from bincounted confusions."""
    n, k = len(y), metric.n_labels
    y64 = np.asarray(y, dtype=np.int64)
    all_preds = [np.asarray(p, dtype=np.int64) for p in [*preds_a, *preds_b]]
    lo = min(int(y64.min()), *(int(p.min()) for p in all_preds))
    hi = max(int(y64.max()), *(int(p.max()) for p in all_preds))
    if lo < 0 or hi >= k:
        raise DataError(f"{metric.name}: a label or prediction is outside the {k} label indices 0..{k - 1}.")
    codes = [y64 * k + p for p in all_preds]
    sign = np.array([-1.0 / len(preds_a)] * len(preds_a) + [1.0 / len(preds_b)] * len(preds_b))
    cells = k * k
    rng = np.random.default_rng(seed)
    out = np.zeros(n_boot)
    chunk = max(1, 4_000_000 // n)  # bound the (chunk, n) index matrix
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(m, n))
        offset = np.arange(m)[:, None] * cells
        for w, c in zip(sign, codes, strict=True):
            cms = np.bincount((c[idx] + offset).ravel(), minlength=m * cells).reshape(m, k, k)
            out[start : start + m] += w * metric.from_confusions(cms)
    return out


def paired_p_value(
    metric: ConfusionMetric, y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, n_boot: int, seed: int
) -> float:
    """The project's paired test for a metric: McNemar for accuracy, paired bootstrap otherwise."""
    if metric.name == "accuracy":
        return mcnemar(pred_a == y, pred_b == y).p_value
    return paired_bootstrap(y, pred_a, pred_b, metric, n_boot=n_boot, seed=seed).p_value


def rank_with_ties(
    entries: Sequence[tuple[str, np.ndarray, np.ndarray]],
    metric: str = "macro_f1",
    alpha: float = 0.05,
    n_boot: int = 1000,
    seed: int = 0,
    *,
    n_labels: int | None = None,
) -> list[RankedEntry]:
    """Rank models evaluated on the same examples in the same order, best first.

    The leader and every model not significantly worse than it (paired test at `alpha`: McNemar for
    accuracy, paired bootstrap otherwise) share rank 1; the best model left starts the next group the
    same way. Pass n_labels (the task's label count) so macro metrics match the stored values exactly;
    by default the label set is every index seen in the labels or predictions.
    """
    if not entries:
        return []
    y0 = np.asarray(entries[0][1])
    for name, y, pred in entries:
        _check_paired(len(y0), len(np.asarray(y)), len(np.asarray(pred)), what=name)
        if not np.array_equal(np.asarray(y), y0):
            raise DataError(
                f"rank_with_ties: {name!r} was scored on different labels than {entries[0][0]!r}; "
                "ranks need every model on the same examples in the same order."
            )
    if n_labels is None:
        n_labels = 1 + int(max(max(int(np.max(y)), int(np.max(p))) for _, y, p in entries)) if len(y0) else 1
    score = ConfusionMetric(metric, n_labels)
    scored = sorted(
        ((name, score(y0, np.asarray(pred)), np.asarray(pred)) for name, _, pred in entries),
        key=lambda e: (-e[1], e[0]),
    )
    ranked: list[RankedEntry] = []
    remaining = scored
    while remaining:
        leader_name, leader_value, leader_pred = remaining[0]
        rank = len(ranked) + 1
        ranked.append(RankedEntry(leader_name, leader_value, rank, None, None))
        rest = []
        for name, value, pred in remaining[1:]:
            p = paired_p_value(score, y0, leader_pred, pred, n_boot, seed)
            if p >= alpha:
                ranked.append(RankedEntry(name, value, rank, leader_name, p))
            else:
                rest.append((name, value, pred))
        remaining = rest
    return ranked


def _check_paired(*lengths: int, what: str = "") -> None:
    if len(set(lengths)) > 1:
        where = f" ({what})" if what else ""
        raise DataError(
            f"Paired comparison needs the same examples on both sides{where}; got lengths {list(lengths)}."
        )
