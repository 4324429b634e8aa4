"""Tie groups for many models at once: stats.rank_with_ties' procedure with shared bootstrap resamples.

rank_with_ties runs one paired bootstrap per (group leader, model) pair, each resampling the test set
again: O(pairs x n_boot x n). Every pair uses the same seed, hence the same resampled indices, so the
metric of each model on each resample can be computed once, O(models x n_boot x n), and a pair's test
reduces to a difference of two vectors. Same indices, same arithmetic (stats.ConfusionMetric), same
p-value rule: the outcome equals rank_with_ties' (tests/test_site.py checks it on real predictions).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.stats import ConfusionMetric, mcnemar

# stats.paired_bootstrap draws its (chunk, n) index matrices in chunks of this many cells; drawing
# them identically keeps the resamples, and so the p-values, identical.
_CHUNK_CELLS = 4_000_000


@dataclass(frozen=True, slots=True)
class Placement:
    rank: int  # competition ranking: 1 + number of models placed in earlier (better) groups
    tied_with: str | None  # leader of the tie group; None for a group leader or an untested model
    p_value: float | None  # paired test against that leader
    tested: bool  # False: placed by value only (outside the models the site tests)


def greedy_groups(
    names: Sequence[str], observed: Sequence[float], p_value: Callable[[int, int], float], alpha: float
) -> dict[str, Placement]:
    """The best remaining model leads a group; every remaining model with p >= alpha against it joins."""
    remaining = sorted(range(len(names)), key=lambda i: (-observed[i], names[i]))
    placed: dict[str, Placement] = {}
    while remaining:
        lead, rest = remaining[0], []
        rank = len(placed) + 1
        placed[names[lead]] = Placement(rank, None, None, True)
        for i in remaining[1:]:
            p = p_value(lead, i)
            if p >= alpha:
                placed[names[i]] = Placement(rank, names[lead], p, True)
            else:
                rest.append(i)
        remaining = rest
    return placed


def bootstrap_metric(
    y: np.ndarray, preds: Sequence[np.ndarray], metric: ConfusionMetric, n_boot: int, seed: int
) -> np.ndarray:
    """(models, n_boot) metric values on resampled test sets; every model sees the same resamples."""
    n, k = len(y), metric.n_labels
    rng = np.random.default_rng(seed)
    codes = [np.asarray(y, dtype=np.int64) * k + np.asarray(p, dtype=np.int64) for p in preds]
    out = np.empty((len(preds), n_boot))
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(m, n))
        offset = np.arange(m)[:, None] * (k * k)
        for j, c in enumerate(codes):
            cms = np.bincount((c[idx] + offset).ravel(), minlength=m * k * k).reshape(m, k, k)
            out[j, start : start + m] = metric.from_confusions(cms)
    return out


def bootstrap_p(boot_lead: np.ndarray, boot_other: np.ndarray, diff: float) -> float:
    """stats.paired_bootstrap's two-sided p: resampled differences at least as far from the observed
    one as the observed one is from 0, with the +1 correction."""
    shifted = np.abs((boot_other - boot_lead) - diff)
    extreme = int(np.sum(shifted >= abs(diff) - 1e-12))
    return min(1.0, (extreme + 1) / (len(boot_lead) + 1))


def task_tie_groups(
    names: Sequence[str],
    y: np.ndarray,
    preds: Sequence[np.ndarray],
    metric: ConfusionMetric,
    *,
    alpha: float,
    n_boot: int,
    seed: int,
    observed: Sequence[float] | None = None,
) -> dict[str, Placement]:
    """Tie groups of models scored on the same examples: McNemar for accuracy, paired bootstrap otherwise.

    `observed`: each model's metric on the full test set when already known (the stored values are
    computed by the same sklearn call as ConfusionMetric's); computed here otherwise.
    """
    if observed is None:
        observed = [metric(y, p) for p in preds]
    if metric.name == "accuracy":
        correct = [np.asarray(p) == y for p in preds]
        return greedy_groups(names, observed, lambda a, b: mcnemar(correct[a], correct[b]).p_value, alpha)
    boot = bootstrap_metric(y, preds, metric, n_boot, seed)
    return greedy_groups(
        names, observed, lambda a, b: bootstrap_p(boot[a], boot[b], observed[b] - observed[a]), alpha
    )
