"""The one resampling kernel: bootstrap example indices drawn once per (n, n_boot, seed) and shared by
every model and every metric evaluated on them, so comparisons are paired by construction.

Per chunk of resamples, a metric is evaluated in the cheapest form it has: from a stack of confusion
matrices (one bincount per model), from its vectorised resampled form, or by calling its point function
on each resample (plugin metrics without a vectorised form; correct, just slower).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from harness.metrics.core import MetricData, TaskMetric

# Cells of one (chunk, n) index matrix: bounds memory (32 MB of int64) whatever n is.
CHUNK_CELLS = 4_000_000


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


def resampled_values(
    metrics: Sequence[TaskMetric], datas: Sequence[MetricData], n_boot: int, seed: int
) -> dict[str, np.ndarray]:
    """metric id -> (len(datas), n_boot) values; every data (model) sees the same resampled examples.

    All datas must hold the same examples in the same order (checked by the callers)."""
    n = len(datas[0])
    out = {m.id: np.empty((len(datas), n_boot)) for m in metrics}
    pos = 0
    for idx in resample_indices(n, n_boot, seed):
        rows = slice(pos, pos + len(idx))
        for j, data in enumerate(datas):
            cms: np.ndarray | None = None
            for metric in metrics:
                fn = metric.metric
                if fn.from_confusions is not None:
                    cms = confusions(data, idx) if cms is None else cms
                    out[metric.id][j, rows] = fn.from_confusions(cms, **metric.params)
                elif fn.resampled is not None:
                    out[metric.id][j, rows] = fn.resampled(data, idx, **metric.params)
                else:
                    out[metric.id][j, rows] = [metric.point(data.take(row)) for row in idx]
        pos += len(idx)
    return out


def percentile_ci(values: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    """Percentile interval of resampled values (NaN resamples, e.g. a class missing from one, ignored)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None, None
    alpha = (1 - confidence) / 2
    return float(np.quantile(finite, alpha)), float(np.quantile(finite, 1 - alpha))
