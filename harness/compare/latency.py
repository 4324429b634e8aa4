"""Latency comparison between two result sets: only within one hardware fingerprint, with a noise margin."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from harness.compare.policy import Policy
from harness.records import TimingRecord
from harness.store.rows import RunResult

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
    measured inside the runs (the larger of std and p95 - p50 on either side) is treated as noise.

    Contended timings (taken while other processes competed for the CPU or GPU) are left out: they
    measure the machine's other work, so they can neither fail nor pass the latency gate. Timings whose
    sample count does not support the requested percentile (p99 of 30 samples) are left out too."""
    at = policy.latency_at
    tb_all = [r.timing for r in base if r.timing is not None]
    tc_all = [r.timing for r in cand if r.timing is not None]
    if not tb_all or not tc_all:
        return LatencyComparison("unavailable", at, note="No timing on one side.")
    tb, tc = _usable(tb_all, at), _usable(tc_all, at)
    if not tb or not tc:
        side, unusable = ("baseline", tb_all) if not tb else ("candidate", tc_all)
        return LatencyComparison(
            "unavailable", at, note=f"Latency not compared: {_why_unusable(unusable, at)} on the {side} side."
        )
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
    left_out = len(tb_all) + len(tc_all) - len(tb) - len(tc)
    aside = f", {left_out} contended or too-small timing(s) left out" if left_out else ""
    change = f"{at} {b:.2f} ms -> {c:.2f} ms (x{ratio:.2f}, noise margin {noise:.2f} ms, hardware {hardware}{aside})"
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


def _usable(timings: Sequence[TimingRecord], at: str) -> list[TimingRecord]:
    return [t for t in timings if not t.contended and t.reported(at) is not None]


def _why_unusable(timings: Sequence[TimingRecord], at: str) -> str:
    contended = sum(1 for t in timings if t.contended)
    if contended:
        return f"{contended} of {len(timings)} timing(s) contended (other processes competed for the CPU/GPU; re-time on a quiet machine)"
    reason = next((t.withheld_reason(at) for t in timings if t.withheld_reason(at)), None)
    return f"{at} withheld ({reason})"


def _spread(t: TimingRecord) -> float:
    return max(t.std_ms, t.p95_ms - t.p50_ms)
