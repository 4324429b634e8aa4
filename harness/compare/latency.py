"""Latency comparison between two result sets: only within one hardware fingerprint, with a noise margin."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from harness.compare.policy import Policy
from harness.compare.results import RunResult
from harness.records import TimingRecord

LatencyStatus = Literal["within_noise", "slower", "faster", "regression", "not_comparable", "unavailable"]


@dataclass(frozen=True)
class LatencyComparison:
    status: LatencyStatus
    at: str
    baseline_ms: float | None = None
    candidate_ms: float | None = None
    ratio: float | None = None
    noise_ms: float | None = None
    hardware: str | None = None
    note: str = ""


def compare_latency(
    base: Sequence[RunResult], cand: Sequence[RunResult], policy: Policy
) -> LatencyComparison:
    """Latency compares only within one hardware fingerprint. A difference smaller than the spread
    measured inside the runs (the larger of std and p95 - p50 on either side) is treated as noise."""
    at = policy.latency_at
    tb = [r.timing for r in base if r.timing is not None]
    tc = [r.timing for r in cand if r.timing is not None]
    if not tb or not tc:
        return LatencyComparison("unavailable", at, note="No timing on one side.")
    common = {t.hardware for t in tb} & {t.hardware for t in tc}
    if not common:
        hb = ", ".join(sorted({t.hardware for t in tb}))
        hc = ", ".join(sorted({t.hardware for t in tc}))
        return LatencyComparison(
            "not_comparable",
            at,
            note=f"Latency not comparable (different hardware: baseline {hb}, candidate {hc}).",
        )
    hardware = Counter(t.hardware for t in [*tb, *tc] if t.hardware in common).most_common(1)[0][0]
    on_b = [t for t in tb if t.hardware == hardware]
    on_c = [t for t in tc if t.hardware == hardware]
    b = statistics.median(t.at(at) for t in on_b)
    c = statistics.median(t.at(at) for t in on_c)
    noise = max(_spread(t) for t in [*on_b, *on_c])
    ratio = c / b if b > 0 else float("inf")
    change = f"{at} {b:.2f} ms -> {c:.2f} ms (x{ratio:.2f}, noise margin {noise:.2f} ms, hardware {hardware})"
    if c - b > noise and policy.max_latency_ratio is not None and ratio > policy.max_latency_ratio:
        status: LatencyStatus = "regression"
        note = f"Latency regression: {change} exceeds the allowed x{policy.max_latency_ratio:g}."
    elif c - b > noise:
        status, note = "slower", f"Slower: {change}."
    elif b - c > noise:
        status, note = "faster", f"Faster: {change}."
    else:
        status, note = "within_noise", f"Within noise: {change}."
    return LatencyComparison(status, at, b, c, ratio, noise, hardware, note)


def _spread(t: TimingRecord) -> float:
    return max(t.std_ms, t.p95_ms - t.p50_ms)
