"""Paired significance tests and ranks with tie groups, for any metric.

Two models evaluated on the same test examples are compared *paired*: McNemar's test on per-example
correctness for accuracy (and only accuracy), a paired bootstrap for every other metric (both models
scored on the same resampled examples, from harness.metrics.resample). A leaderboard rank is a tie
group: the leader and every model not significantly worse than it share a rank; the best model left
starts the next group the same way.

Multiplicity: each group round tests the leader against every remaining model. With `holm=True` those
tests are Holm step-down corrected (family-wise error <= alpha per round), so a rank separation is a
claim that holds for the whole round, not per pair. Default: Holm on (see docs/adding-a-metric.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.errors import DataError
from harness.metrics.core import MetricData, TaskMetric
from harness.metrics.resample import resampled_values

# Below this many discordant pairs the chi-square approximation is poor; use the exact binomial test.
EXACT_BELOW = 25
HOLM_DEFAULT = True


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


@dataclass(frozen=True, slots=True)
class Placement:
    rank: int  # competition ranking: 1 + number of models placed in earlier (better) groups
    tied_with: str | None  # leader of the tie group; None for a group leader or an untested model
    p_value: float | None  # paired test against that leader (Holm-adjusted when holm=True)
    tested: bool  # False: placed by value only (outside the models tested)


@dataclass(frozen=True)
class RankedEntry:
    name: str
    value: float
    rank: int
    tied_with: str | None
    p_value: float | None


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemarResult:
    """McNemar's test on paired correctness: exact binomial when n01 + n10 < 25, else chi-square with
    continuity correction (the same numbers as statsmodels' mcnemar(exact=..., correction=True))."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    _check_paired(len(a), len(b))
    n01 = int(np.sum(~a & b))
    n10 = int(np.sum(a & ~b))
    n = n01 + n10
    # Imported here: importing scipy.stats takes ~0.8 s, which every command that runs no test would pay.
    from scipy.stats import binom, chi2

    if n < EXACT_BELOW:
        k = min(n01, n10)
        p = 1.0 if n == 0 else min(1.0, 2.0 * float(binom.cdf(k, n, 0.5)))
        return McNemarResult(n01, n10, float(k), p, exact=True)
    stat = (abs(n01 - n10) - 1.0) ** 2 / n
    return McNemarResult(n01, n10, float(stat), float(chi2.sf(stat, 1)), exact=False)


def smallest_paired_p(n_examples: int) -> float:
    """The smallest two-sided p any paired test of `n_examples` examples can honestly give: an exact sign-flip
    (permutation) test's, 2 / 2**n (1 example: 1; 5: 0.0625; 6: 0.031). A bootstrap of a handful of examples
    draws from a handful of distinct resamples, all pointing the same way: unfloored, one example "showed" a
    difference at p = 1/(n_boot + 1), and its 95% interval had width 0."""
    return min(1.0, 2.0 ** (1 - n_examples)) if n_examples > 0 else 1.0


def can_reach(alpha: float, n_examples: int) -> bool:
    """Whether a paired test (or a (1 - alpha) interval) on `n_examples` examples can mean anything at alpha."""
    return smallest_paired_p(n_examples) < alpha


def bootstrap_p(diffs: np.ndarray, observed: float, n_examples: int) -> float:
    """Two-sided p of a paired bootstrap: resampled differences at least as far from the observed one as
    the observed one is from 0 (the bootstrap distribution shifted to H0), +1 corrected so p > 0, and never
    below smallest_paired_p of the examples resampled."""
    diffs = diffs[np.isfinite(diffs)]
    extreme = int(np.sum(np.abs(diffs - observed) >= abs(observed) - 1e-12))
    return min(1.0, max((extreme + 1) / (len(diffs) + 1), smallest_paired_p(n_examples)))


def paired_bootstrap(
    metric: TaskMetric,
    side_a: Sequence[MetricData],
    side_b: Sequence[MetricData],
    n_boot: int = 1000,
    seed: int = 0,
    observed: float | None = None,
) -> PairedBootstrapResult:
    """mean metric over side B's runs - mean over side A's (one run per side, or several seeds), every
    resample scoring every run on the same example indices. observed: that difference on the data, when the
    caller has it (else computed)."""
    if not side_a or not side_b:
        raise ValueError("paired_bootstrap needs at least one run per side")
    datas = [*side_a, *side_b]
    _check_same_examples(datas)
    if len(datas[0]) == 0:
        raise DataError("paired_bootstrap: no examples to compare.")
    diff = observed
    if diff is None:
        diff = float(np.mean([metric.point(d) for d in side_b]) - np.mean([metric.point(d) for d in side_a]))
    boot = resampled_values([metric], datas, n_boot, seed)[metric.id]
    diffs = boot[len(side_a) :].mean(axis=0) - boot[: len(side_a)].mean(axis=0)
    finite = diffs[np.isfinite(diffs)]
    return PairedBootstrapResult(
        diff=diff,
        ci_low=float(np.quantile(finite, 0.025)) if finite.size else float("nan"),
        ci_high=float(np.quantile(finite, 0.975)) if finite.size else float("nan"),
        p_value=bootstrap_p(diffs, diff, len(datas[0])),
        n_boot=n_boot,
    )


def interval_reaches(
    lo: float | None, hi: float | None, leader_lo: float | None, leader_hi: float | None, higher_is_better: bool
) -> bool:
    """Whether a candidate's 95% interval reaches the leader's: one lying wholly on the worse side is
    significantly worse without a paired test, so tie groups test only the candidates that could tie (the
    site's pick form, harness pick). Unknown or infinite bounds: True, left to the paired test."""
    if lo is None or hi is None or leader_lo is None or leader_hi is None:
        return True
    if not all(math.isfinite(v) for v in (lo, hi, leader_lo, leader_hi)):
        return True
    return hi >= leader_lo if higher_is_better else lo <= leader_hi


def uses_mcnemar(metric: TaskMetric) -> bool:
    return metric.metric.mcnemar


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (monotone, capped at 1)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def greedy_groups(
    names: Sequence[str],
    observed: Sequence[float],
    p_value: Callable[[int, int], float],
    alpha: float,
    *,
    higher_is_better: bool = True,
    holm_correct: bool = HOLM_DEFAULT,
) -> dict[str, Placement]:
    """The best remaining model leads a group; every remaining model whose (adjusted) p >= alpha joins."""
    sign = -1.0 if higher_is_better else 1.0
    remaining = sorted(range(len(names)), key=lambda i: (sign * observed[i], names[i]))
    placed: dict[str, Placement] = {}
    while remaining:
        lead, others = remaining[0], remaining[1:]
        rank = len(placed) + 1
        placed[names[lead]] = Placement(rank, None, None, True)
        raw = [p_value(lead, i) for i in others]
        ps = holm(raw) if holm_correct else raw
        rest = []
        for i, p in zip(others, ps, strict=True):
            if p >= alpha:
                placed[names[i]] = Placement(rank, names[lead], p, True)
            else:
                rest.append(i)
        remaining = rest
    return placed


def tie_groups(
    names: Sequence[str],
    datas: Sequence[MetricData],
    metric: TaskMetric,
    *,
    alpha: float = 0.05,
    n_boot: int = 1000,
    seed: int = 0,
    observed: Sequence[float] | None = None,
    holm_correct: bool = HOLM_DEFAULT,
    resampled: np.ndarray | None = None,
) -> dict[str, Placement]:
    """Tie groups of models scored on the same examples: McNemar for accuracy, paired bootstrap otherwise.
    Every model's metric is computed once per resample (one shared set of resamples), so a pair's test is a
    difference of two vectors. `observed`: the models' metric on the full test set when already known;
    `resampled`: their (len(datas), n_boot) resampled values when already known (resampled_values with
    this n_boot and seed)."""
    if not names:
        return {}
    _check_same_examples(datas, names)
    values = list(observed) if observed is not None else [metric.point(d) for d in datas]
    if uses_mcnemar(metric):
        correct = [d.pred == d.y for d in datas]

        def p_value(a: int, b: int) -> float:
            return mcnemar(correct[a], correct[b]).p_value
    else:
        boot = resampled
        if boot is None and len(datas) > 1:
            boot = resampled_values([metric], datas, n_boot, seed)[metric.id]

        def p_value(a: int, b: int) -> float:
            assert boot is not None
            return bootstrap_p(boot[b] - boot[a], values[b] - values[a], len(datas[a]))

    return greedy_groups(
        names, values, p_value, alpha, higher_is_better=metric.higher_is_better, holm_correct=holm_correct
    )


def rank_with_ties(
    names: Sequence[str],
    datas: Sequence[MetricData],
    metric: TaskMetric,
    *,
    alpha: float = 0.05,
    n_boot: int = 1000,
    seed: int = 0,
    holm_correct: bool = HOLM_DEFAULT,
    observed: Sequence[float] | None = None,
) -> list[RankedEntry]:
    """tie_groups as a list, best first. observed: the metric on each data, when known (else computed)."""
    points = list(observed) if observed is not None else [metric.point(d) for d in datas]
    values = dict(zip(names, points, strict=True))
    placed = tie_groups(
        names, datas, metric, alpha=alpha, n_boot=n_boot, seed=seed, observed=points, holm_correct=holm_correct,
    )  # fmt: skip
    return [RankedEntry(n, values[n], p.rank, p.tied_with, p.p_value) for n, p in placed.items()]


def _check_same_examples(datas: Sequence[MetricData], names: Sequence[str] | None = None) -> None:
    first = datas[0]
    for i, d in enumerate(datas):
        what = names[i] if names else f"run {i}"
        _check_paired(len(first), len(d), what=what)
        if not np.array_equal(d.y, first.y):
            raise DataError(
                f"{what} was scored on different labels than the first model; paired tests need every model "
                "on the same examples in the same order."
            )


def _check_paired(*lengths: int, what: str = "") -> None:
    if len(set(lengths)) > 1:
        where = f" ({what})" if what else ""
        raise DataError(
            f"Paired comparison needs the same examples on both sides{where}; got lengths {list(lengths)}."
        )
