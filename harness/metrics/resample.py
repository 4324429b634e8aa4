"""The one resampling kernel: bootstrap example indices drawn once per (n, n_boot, seed) and shared by
every model and every metric evaluated on them, so comparisons are paired by construction.

Per chunk of resamples, a metric is evaluated in the cheapest form it has: from per-class counts (one
matrix product of how often each resample draws each example with every model's one-hot labels,
predictions and hits), from a stack of confusion matrices (one bincount per model), from its vectorised
resampled form, or by calling its point function on each resample (plugin metrics without a vectorised
form; correct, just slower).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from harness.metrics.core import ClassCounts, MetricCodeError, MetricData, TaskMetric

# Cells of one (chunk, n) index matrix: bounds memory (32 MB of int64) whatever n is.
CHUNK_CELLS = 4_000_000
# Up to this many labels, per-class counts come from one-hot matrices (n, 3 L) times the resample counts
# (BLAS, cost ~ 3 L per drawn example); with more, from confusion matrices (a bincount, ~ constant cost).
ONE_HOT_MAX_LABELS = 16


def resample_indices(n: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """(m, n) index matrices, m <= CHUNK_CELLS // n, n_boot rows in all; the same seed gives the same rows."""
    if n_boot < 1:
        raise ValueError("n_boot must be >= 1")
    rng = np.random.default_rng(seed)
    chunk = max(1, CHUNK_CELLS // max(n, 1))
    for start in range(0, n_boot, chunk):
        yield rng.integers(0, n, size=(min(chunk, n_boot - start), n))


def confusions(data: MetricData, idx: np.ndarray) -> np.ndarray:
    """(m, L, L) confusion matrices (rows = true label) of the resamples in idx, one bincount."""
    k, m = data.n_labels, len(idx)
    codes = data.y * k + data.pred
    flat = (codes[idx] + np.arange(m)[:, None] * (k * k)).ravel()
    return np.bincount(flat, minlength=m * k * k).reshape(m, k, k)


def resample_counts(idx: np.ndarray, n: int) -> np.ndarray:
    """(m, n) float64: how many times each resample (row of idx) draws each of the n examples."""
    m = len(idx)
    flat = (idx + np.arange(m)[:, None] * n).ravel()
    return np.bincount(flat, minlength=m * n).reshape(m, n).astype(np.float64)


def class_counts(datas: Sequence[MetricData], idx: np.ndarray) -> list[tuple[list[int], ClassCounts]]:
    """Per-class counts of the datas on the resamples in idx, for batches of datas with the same label
    count: (their indices, their counts stacked: row r * len(batch) + i is resample r of data batch[i]).
    Exact: sums of small integers in float64, the numbers ClassCounts.of_confusions(confusions(data,
    idx)) gives."""
    m, n = len(idx), len(datas[0])
    by_labels: dict[int, list[int]] = {}
    for j, d in enumerate(datas):
        by_labels.setdefault(d.n_labels, []).append(j)
    out = []
    drawn: np.ndarray | None = None
    for k, members in by_labels.items():
        if k > ONE_HOT_MAX_LABELS:
            for j in members:
                out.append(([j], ClassCounts.of_confusions(confusions(datas[j], idx))))
            continue
        drawn = resample_counts(idx, n) if drawn is None else drawn
        per_product = max(1, CHUNK_CELLS // (max(n, m) * k))  # datas per product: bounds memory
        for start in range(0, len(members), per_product):
            batch = members[start : start + per_product]
            y = np.stack([datas[j].y for j in batch])  # (b, n)
            pred = np.stack([datas[j].pred for j in batch])
            hit = y == pred
            support = _label_counts(drawn, y, k)
            tp = _label_counts(drawn, np.where(hit, y, 0), k, hit)
            out.append((batch, ClassCounts(tp, support, _label_counts(drawn, pred, k), support.sum(axis=1))))
    return out


def _label_counts(
    drawn: np.ndarray, labels: np.ndarray, k: int, weight: np.ndarray | float = 1.0
) -> np.ndarray:
    """(m * b, k): per resample (row of drawn, (m, n)) and data (row of labels, (b, n)), the weighted
    count of drawn examples with each label; row r * b + i is resample r of data i."""
    (m, n), b = drawn.shape, len(labels)
    onehot = np.zeros((n, b, k))  # example -> data, label
    onehot[np.arange(n)[None, :], np.arange(b)[:, None], labels] = weight
    return (drawn @ onehot.reshape(n, b * k)).reshape(m * b, k)


def resampled_values(
    metrics: Sequence[TaskMetric], datas: Sequence[MetricData], n_boot: int, seed: int
) -> dict[str, np.ndarray]:
    """metric id -> (len(datas), n_boot) values; every data (model) sees the same resampled examples.

    All datas must hold the same examples in the same order (checked by the callers)."""
    out = {m.id: np.empty((len(datas), n_boot)) for m in metrics}
    pos = 0
    for idx in resample_indices(len(datas[0]), n_boot, seed):
        for metric_id, values in values_at(metrics, datas, idx).items():
            out[metric_id][:, pos : pos + len(idx)] = values
        pos += len(idx)
    return out


def values_at(metrics: Sequence[TaskMetric], datas: Sequence[MetricData], idx: np.ndarray) -> dict[str, np.ndarray]:
    """metric id -> (len(datas), m) values on the m resamples (rows of idx), each metric in its cheapest form."""
    out = {m.id: np.empty((len(datas), len(idx))) for m in metrics}
    by_counts = [m for m in metrics if m.metric.from_counts is not None]
    for batch, counts in class_counts(datas, idx) if by_counts else ():
        for metric in by_counts:
            assert metric.metric.from_counts is not None
            values = _shaped(metric, "from_counts", metric.call("from_counts", metric.metric.from_counts, counts), len(idx) * len(batch))
            out[metric.id][batch] = values.reshape(len(idx), len(batch)).T
    for j, data in enumerate(datas):
        cms: np.ndarray | None = None
        for metric in metrics:
            fn = metric.metric
            if fn.from_counts is not None:
                continue
            if fn.from_confusions is not None:
                cms = confusions(data, idx) if cms is None else cms
                out[metric.id][j] = _shaped(metric, "from_confusions", metric.call("from_confusions", fn.from_confusions, cms), len(idx))
            elif fn.resampled is not None:
                out[metric.id][j] = _shaped(metric, "resampled", metric.call("resampled", fn.resampled, data, idx), len(idx))
            else:
                out[metric.id][j] = [metric.point(data.take(row)) for row in idx]
    return out


def _shaped(metric: TaskMetric, form: str, values: object, m: int) -> np.ndarray:
    """A vectorised form's values: one number per resample (a single number was spread over all of them, a
    CI of width 0 around whatever it was)."""
    try:
        out = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        out = np.asarray(None)
    if out.shape != (m,):
        raise MetricCodeError(
            f'metric "{metric.id}": its {form}() returned {type(values).__name__} of shape {np.shape(out)}; expected '
            f"one number per resample, shape ({m},)."
        )
    return out


def percentile_ci(values: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    """Percentile interval of resampled values (NaN resamples, e.g. a class missing from one, ignored)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None, None
    alpha = (1 - confidence) / 2
    return float(np.quantile(finite, alpha)), float(np.quantile(finite, 1 - alpha))
