"""Model recommendation under constraints (`harness pick`).

Filter (model, protocol) candidates on one task by latency / parameter count / peak memory, form the
tie group of eligible candidates not significantly worse than the best (paired tests on stored
per-example predictions), and recommend the cheapest member: lowest latency, then fewest parameters.
One run represents each candidate: its lowest seed (the paired tests need one prediction per example).
"""

from __future__ import annotations

import math
import statistics
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.compare.policy import Percentile
from harness.compare.results import load_results
from harness.errors import HarnessError, close_match, unknown_name
from harness.metrics import MetricData, MetricRegistry, TaskMetric
from harness.metrics.evaluate import check_plugin_reproducible
from harness.metrics.registry import metric_from_description
from harness.metrics.stats import RankedEntry, interval_reaches, rank_with_ties, uses_mcnemar
from harness.records import MetricValue, TimingRecord
from harness.store import StoreReader
from harness.store.rows import RunResult
from harness.units import format_bytes, format_count

CONSTRAINT_FLAGS = {"latency": "--max-latency-ms", "params": "--max-params", "memory": "--max-memory"}


# ---- result types ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Constraints:
    max_latency_ms: float | None = None
    at: Percentile = "p50"
    max_params: int | None = None
    max_memory_bytes: int | None = None

    def active(self) -> list[str]:
        limits = {"latency": self.max_latency_ms, "params": self.max_params, "memory": self.max_memory_bytes}
        return [name for name, limit in limits.items() if limit is not None]


@dataclass(frozen=True)
class Candidate:
    model: str
    protocol: str
    run_key: str
    seed: int
    n_seeds: int
    value: float  # the metric of the representative run (its stored value)
    ci_low: float | None
    ci_high: float | None
    latency_ms: float | None  # at the requested percentile, on the chosen hardware, uncontended timings only
    params: int | None
    peak_mem_mb: float | None  # MiB, on the chosen hardware
    has_predictions: bool
    violations: dict[str, float] = field(default_factory=dict)  # constraint -> relative excess (inf: unknown)
    rank: int | None = None
    tied_with: str | None = None
    p_value: float | None = None
    pareto_latency: bool = False
    pareto_size: bool = False
    latency_note: str | None = None  # why latency_ms is missing or what was left out of it


    @property
    def name(self) -> str:
        return f"{self.model} [{self.protocol}]"

    @property
    def eligible(self) -> bool:
        return not self.violations


@dataclass(frozen=True)
class PickResult:
    task: str
    protocol: str | None
    metric: str
    alpha: float
    hardware: str | None
    hardware_reason: str
    constraints: Constraints
    candidates: tuple[Candidate, ...]  # best metric first
    tie_group: tuple[str, ...]
    recommendation: Candidate | None
    explanation: str
    excluded_most_by: str | None = None  # when nothing fits: the constraint that excludes the most
    nearest_miss: Candidate | None = None
    notes: tuple[str, ...] = ()


# ---- picking -----------------------------------------------------------------------------------------


def pick(
    db: str | Path,
    task: str,
    *,
    protocol: str | None = None,
    constraints: Constraints = Constraints(),
    metric: str | None = None,
    hardware: str | None = None,
    alpha: float = 0.05,
    n_boot: int = 1000,
    seed: int = 0,
    metrics: MetricRegistry | None = None,
) -> PickResult:
    """metric: None for the task's main metric, else any metric the task declares or the registry (built-ins
    + plugins in `metrics`) knows. hardware: a fingerprint (or unique prefix), "current", or None (current
    if it has timings, else the most common fingerprint among the candidates' timings)."""
    if not 0 < alpha < 1:
        raise HarnessError(f"--alpha must be a significance level between 0 and 1 (exclusive), e.g. 0.05, got {alpha:g}.")
    runs, notes = _task_runs(Path(db), task, protocol)
    task_metric = _task_metric(runs, metric, metrics or MetricRegistry())
    metric = task_metric.id
    hib = task_metric.higher_is_better
    hw, hw_reason = _resolve_hardware(runs, hardware, Path(db))
    candidates = [_candidate(group, hw, constraints.at, task_metric) for group in _by_candidate(runs).values()]
    # A run whose metric is undefined (e.g. MCC or ROC-AUC on a test set of one class) has no value to rank: it
    # was recommended as "mcc nan".
    undefined = [c.name for c in candidates if math.isnan(c.value)]
    candidates = [c for c in candidates if not math.isnan(c.value)]
    if not candidates:
        raise HarnessError(
            f'No run of task "{task}" has a value of {metric}: it is undefined on the runs\' test set or does not '
            f"apply to their scores (`harness show --task {task}` gives the reason). Rank by another metric the task "
            "declares with --metric."
        )
    if undefined:
        notes.append(
            f"Not candidates, no value of {metric} stored for their run (undefined on its test set, or not "
            f"applicable to its scores): {', '.join(undefined)}."
        )
    candidates = [replace(c, violations=_violations(c, constraints)) for c in candidates]
    candidates = sorted(_mark_pareto(candidates, hib), key=lambda c: _by_value(c, hib))
    notes += [f"{c.name}: {c.latency_note}." for c in candidates if c.latency_note]
    eligible = [c for c in candidates if c.eligible]
    tie_group: tuple[str, ...] = ()
    choice = blocker = miss = None
    if eligible:
        ranked, rank_notes = _tie_group(eligible, runs, task_metric, alpha, n_boot, seed)
        notes += rank_notes
        by_name = {c.name: c for c in candidates}
        for r in ranked:
            by_name[r.name] = replace(by_name[r.name], rank=r.rank, tied_with=r.tied_with, p_value=r.p_value)
        candidates = [by_name[c.name] for c in candidates]
        group = [by_name[r.name] for r in ranked if r.rank == 1]
        tie_group = tuple(c.name for c in group)
        choice = min(group, key=lambda c: _cost(c, hib))
        explanation = _explain(choice, group, ranked, task_metric, alpha, hw, constraints.at)
    else:
        blocker, miss = _nothing_fits(candidates, constraints)
        explanation = _explain_nothing(candidates, constraints, blocker, miss, hw)
    return PickResult(
        task=task,
        protocol=protocol,
        metric=metric,
        alpha=alpha,
        hardware=hw,
        hardware_reason=hw_reason,
        constraints=constraints,
        candidates=tuple(candidates),
        tie_group=tie_group,
        recommendation=choice,
        explanation=explanation,
        excluded_most_by=blocker,
        nearest_miss=miss,
        notes=tuple(notes),
    )


def _task_metric(runs: Sequence[RunResult], requested: str | None, registry: MetricRegistry) -> TaskMetric:
    """The metric to rank by: --metric, else the task's main metric (newest run's task declaration)."""
    newest = max(runs, key=lambda r: r.finished_at)
    declared = {str(d["id"]): d for d in newest.task_metrics if d.get("shape", "scalar") == "scalar"}
    wanted = requested or newest.main_metric
    description = declared.get(wanted) or (
        {"id": wanted, "name": wanted, "params": {}} if wanted in registry else None
    )
    resolved = metric_from_description(description, registry) if description else None
    if resolved is None or not resolved.scalar:
        known = sorted(set(declared) | {n for n in registry.names() if registry.get(n).shape == "scalar"})
        plugin = " (a plugin metric: pass its --plugin)" if wanted in declared else ""
        what = f'--metric "{wanted}"' if requested else f'The task\'s main metric "{wanted}"'
        hint = "" if plugin else close_match(wanted, [k for k in known if k != wanted])  # the fix is --plugin
        raise HarnessError(
            f"{what} is not a metric this harness can compute{plugin}.{hint} "
            f"The task declares: {', '.join(declared) or '(none)'}."
        )
    return resolved


def _by_value(c: Candidate, higher_is_better: bool = True) -> tuple[bool, float, str]:
    if math.isnan(c.value):
        return (True, 0.0, c.name)
    return (False, -c.value if higher_is_better else c.value, c.name)


def _cost(c: Candidate, higher_is_better: bool = True) -> tuple[float, float, float]:
    lat = c.latency_ms if c.latency_ms is not None else math.inf
    params = c.params if c.params is not None else math.inf
    return (lat, params, -c.value if higher_is_better else c.value)


def _task_runs(db: Path, task: str, protocol: str | None) -> tuple[list[RunResult], list[str]]:
    reader = StoreReader(db)
    try:
        rows = reader.done_task_protocols()
    finally:
        reader.close()
    tasks = sorted({r[0] for r in rows})
    if task not in tasks:
        raise unknown_name(f"task (with finished runs in {db})", task, tasks)
    protocols = sorted({r[1] for r in rows if r[0] == task})
    if protocol is not None and protocol not in protocols:
        raise unknown_name(f"protocol for task {task!r} in {db}", protocol, protocols)
    done = [r for r in load_results(db, task=task, protocol=protocol).runs if r.status == "done"]
    newest = max(done, key=lambda r: r.finished_at)
    kept = [
        r
        for r in done
        if (r.data_fingerprint, r.task_version) == (newest.data_fingerprint, newest.task_version)
    ]
    notes = []
    if len(kept) < len(done):
        notes.append(
            f"Ignored {len(done) - len(kept)} run(s) on other data or task versions; using data fingerprint "
            f"{newest.data_fingerprint} (task version {newest.task_version}), that of the newest run."
        )
    return kept, notes


def _by_candidate(runs: Sequence[RunResult]) -> dict[tuple[str, str], list[RunResult]]:
    out: dict[tuple[str, str], list[RunResult]] = {}
    for r in sorted(runs, key=lambda r: (r.model, r.protocol, r.predictions is None, r.seed)):
        out.setdefault((r.model, r.protocol), []).append(r)
    return out


def current_hardware() -> str | None:
    try:
        from harness.timing import hardware_info

        return str(hardware_info()["fingerprint"])
    except Exception:  # no torch or an odd platform: fall back to the stored fingerprints
        return None


def _resolve_hardware(runs: Sequence[RunResult], requested: str | None, db: Path) -> tuple[str | None, str]:
    counts = Counter(r.timing.hardware for r in runs if r.timing is not None)
    if requested not in (None, "current"):
        matches = [h for h in counts if h == requested] or [h for h in counts if h.startswith(requested)]
        if len(matches) != 1:
            raise unknown_name("hardware fingerprint (with timings for this task)", requested, counts)
        return matches[0], f"hardware {matches[0]} (as requested)"
    # This machine's fingerprint imports torch, scipy and onnxruntime (~5 s): worked out only when a timed
    # fingerprint could be this machine's, or when it was asked for.
    here = requested == "current" or _could_be_this_machine(counts, db)
    current = current_hardware() if here else None
    if current is not None and current in counts:
        return current, f"hardware {current} (this machine)"
    if requested == "current":
        raise HarnessError(
            f"--hardware current: this machine ({current or 'fingerprint unavailable'}) has no timings for these "
            f"runs. Fingerprints with timings: {', '.join(f'{h} ({n} runs)' for h, n in counts.most_common()) or 'none'}."
        )
    if not counts:
        return None, "no timings recorded"
    hw, n = counts.most_common(1)[0]
    return (
        hw,
        f"hardware {hw}, the most common among the timed runs ({n} of {sum(counts.values())}); this machine has none",
    )


def _could_be_this_machine(fingerprints: Iterable[str], db: Path) -> bool:
    """False when every fingerprint's stored description names another CPU or platform than this machine's
    (the fingerprint hashes both); True when one matches or is not described."""
    from harness.timing import host

    here = host()
    with StoreReader(db) as reader:
        stored = reader.hardware_meta()
    described = {fp: (h.cpu, h.platform) for fp, h in stored.items() if h.cpu and h.platform}
    return any(described.get(fp, here) == here for fp in fingerprints)


def _metric_data(run: RunResult, ids: Sequence[str] | None = None) -> MetricData | None:
    p = run.predictions
    if p is None:
        return None
    if ids is None or tuple(ids) == p.ids:
        idx = list(range(len(p.ids)))
    else:
        position = {e: i for i, e in enumerate(p.ids)}
        idx = [position[e] for e in ids]
    n_labels = max(run.n_labels or 0, 1 + int(max(p.labels.max(), p.preds.max())))
    scores = p.scores[idx] if p.scores is not None and p.scores.shape[1] == n_labels else None
    return MetricData.of(p.labels[idx], p.preds[idx], n_labels, scores, p.score_kind if scores is not None else None)


def _candidate(runs: Sequence[RunResult], hw: str | None, at: Percentile, metric: TaskMetric) -> Candidate:
    """Latency: the median over the candidate's seeds of its timings on `hw`, leaving out contended
    timings (they measure the other work on the machine, not the model) and timings whose sample count
    does not support the percentile."""
    rep = runs[0]
    stat = rep.metrics.get(metric.id)
    if stat is None and (data := _metric_data(rep)) is not None and not metric.metric.not_applicable(data):
        stat = MetricValue(metric.id, metric.point(data))  # a registered metric the task did not declare: no stored CI
    on_hw = [r.timing for r in runs if r.timing is not None and r.timing.hardware == hw]
    quiet = [t for t in on_hw if not t.contended]
    values = [v for v in (t.reported(at) for t in quiet) if v is not None]
    latency = statistics.median(values) if values else None
    mem = [t.peak_mem_mb for t in quiet if t.peak_mem_mb is not None]
    params = rep.params if rep.params is not None else next((r.timing.params for r in runs if r.timing), None)
    return Candidate(
        model=rep.model, protocol=rep.protocol, run_key=rep.key, seed=rep.seed, n_seeds=len(runs),
        value=stat.value if stat else math.nan, ci_low=stat.ci_low if stat else None,
        ci_high=stat.ci_high if stat else None, latency_ms=latency, params=params,
        peak_mem_mb=max(mem) if mem else None, has_predictions=rep.predictions is not None,
        latency_note=_latency_note(on_hw, quiet, values, at),
    )  # fmt: skip


def _latency_note(
    on_hw: Sequence[TimingRecord], quiet: Sequence[TimingRecord], values: Sequence[float], at: str
) -> str | None:
    contended = len(on_hw) - len(quiet)
    parts = []
    if contended:
        parts.append(f"{contended} contended timing(s) ignored")
    withheld = [t.withheld_reason(at) for t in quiet if t.withheld_reason(at)]
    if withheld:
        parts.append(f"{at} withheld ({withheld[0]})")
    if not parts:
        return None
    return ("no usable timing: " if not values else "") + "; ".join(parts)


def _violations(c: Candidate, k: Constraints) -> dict[str, float]:
    """Relative excess over each violated limit (0.25 = 25% over); inf when the value is unknown."""
    checks = {
        "latency": (c.latency_ms, k.max_latency_ms),
        "params": (c.params, k.max_params),
        "memory": (c.peak_mem_mb * 2**20 if c.peak_mem_mb is not None else None, k.max_memory_bytes),
    }
    out = {}
    for name, (value, limit) in checks.items():
        if limit is None:
            continue
        if value is None:
            out[name] = math.inf
        elif value > limit:
            # A limit so small the ratio overflows is still a known value, not an unknown one.
            out[name] = min(value / limit - 1, sys.float_info.max) if limit > 0 else sys.float_info.max
    return out


def _mark_pareto(cands: list[Candidate], higher_is_better: bool = True) -> list[Candidate]:
    """Pareto fronts over all candidates: better metric vs lower latency, better metric vs fewer params."""
    sign = 1.0 if higher_is_better else -1.0

    def front(cost: str) -> set[str]:
        pts = [
            (c.name, sign * c.value, getattr(c, cost))
            for c in cands
            if getattr(c, cost) is not None and not math.isnan(c.value)
        ]
        return {
            n for n, v, x in pts
            if not any((v2 >= v and x2 <= x) and (v2 > v or x2 < x) for _, v2, x2 in pts)
        }  # fmt: skip

    lat, size = front("latency_ms"), front("params")
    return [replace(c, pareto_latency=c.name in lat, pareto_size=c.name in size) for c in cands]


def _tie_group(
    eligible: Sequence[Candidate],
    runs: Sequence[RunResult],
    metric: TaskMetric,
    alpha: float,
    n_boot: int,
    seed: int,
) -> tuple[list[RankedEntry], list[str]]:
    """Ranks with tie groups on the representative runs' predictions, aligned on shared example ids."""
    by_key = {r.key: r for r in runs}
    ordered = sorted(eligible, key=lambda c: _by_value(c, metric.higher_is_better))
    notes = []
    testable = [c for c in ordered if c.has_predictions]
    untestable = [c.name for c in ordered if not c.has_predictions]
    if untestable:
        notes.append(
            f"No stored per-example predictions for {', '.join(untestable)}: no paired test possible for them."
        )
    if not testable or not ordered[0].has_predictions:
        leader = ordered[0]
        if testable:
            notes.append(
                f"The best eligible candidate {leader.name} has no predictions, so it forms its tie group alone."
            )
        return [RankedEntry(leader.name, leader.value, 1, None, None)], notes
    leader = testable[0]
    # At 1,000 candidates, Holm over every one made no bootstrap test significant and tied them all.
    screened = [
        c
        for c in testable[1:]
        if not interval_reaches(c.ci_low, c.ci_high, leader.ci_low, leader.ci_high, metric.higher_is_better)
    ]
    if screened:
        notes.append(
            f"{len(screened)} candidate(s) whose 95% CI lies wholly below the best's ({leader.name}) are significantly "
            "worse without a paired test; they are ranked by value after the tested ones."
        )
        left_out = {c.name for c in screened}
        testable = [c for c in testable if c.name not in left_out]
    if len(testable) > 1 and not uses_mcnemar(metric) and (len(testable) - 1) / (n_boot + 1) > alpha:
        notes.append(
            f"{len(testable) - 1} paired bootstrap tests, Holm-corrected: with {n_boot} resamples the smallest p is "
            f"1/{n_boot + 1}, so none can fall below alpha {alpha:g} / {len(testable) - 1}: every tested candidate is "
            f"tied with the best. Raise --n-boot to at least {math.ceil((len(testable) - 1) / alpha):,}, or narrow the "
            "candidates (constraints, --protocol), to tell them apart."
        )
    preds = [by_key[c.run_key].predictions for c in testable]
    common = set.intersection(*(set(p.ids) for p in preds if p is not None))
    if not common:
        raise HarnessError(
            "The candidates' stored predictions share no example ids; re-run them on the same test split."
        )
    ids = sorted(common)
    if any(p is not None and len(p.ids) != len(ids) for p in preds):
        notes.append(f"Paired tests use the {len(ids)} test examples all candidates share.")
    datas = [_metric_data(by_key[c.run_key], ids) for c in testable]
    n_labels = max(d.n_labels for d in datas if d is not None)
    aligned = [d if d is not None and d.n_labels == n_labels else _widen(d, n_labels) for d in datas]
    reasons = [why for d in aligned if (why := metric.metric.not_applicable(d))]
    if reasons:
        notes.append(f"No paired test on {metric.id}: {reasons[0]} Candidates are ordered by stored value.")
        return [RankedEntry(c.name, c.value, i + 1, None, None) for i, c in enumerate(ordered)], notes
    # Each candidate's value is its representative run's stored metric, computed from these predictions when
    # the run was stored: recomputed only where the pairing cut examples or widened the label count (at 1,000
    # candidates the recomputation was 20 s of a 25 s pick).
    whole = all(p is not None and len(p.ids) == len(ids) for p in preds)
    stored = whole and all(
        d.n_labels == by_key[c.run_key].n_labels and math.isfinite(c.value)
        for c, d in zip(testable, aligned, strict=True)
    )
    try:
        check_plugin_reproducible(metric, aligned[0])
        ranked = rank_with_ties(
            [c.name for c in testable], aligned, metric, alpha=alpha, n_boot=n_boot, seed=seed,
            observed=[c.value for c in testable] if stored else None,
        )  # fmt: skip
    except HarnessError as exc:
        raise HarnessError(f"Cannot rank the candidates on paired predictions: {exc}") from None
    ranked += [RankedEntry(c.name, c.value, len(ranked) + i, None, None) for i, c in enumerate(screened, start=1)]
    return ranked, notes


# ---- explanations ------------------------------------------------------------------------------------


def _costs(c: Candidate, at: str, hw: str | None) -> str:
    lat = (
        f"{at} {c.latency_ms:.2f} ms"
        if c.latency_ms is not None
        else f"no {at} latency on {hw or 'any hardware'}" + (f" ({c.latency_note})" if c.latency_note else "")
    )
    return f"{lat}, {format_count(c.params, 'unknown')} parameters"


def _widen(d: MetricData | None, n_labels: int) -> MetricData:
    assert d is not None
    return MetricData.of(d.y, d.pred, n_labels)


def _test_name(metric: TaskMetric) -> str:
    return "McNemar test" if uses_mcnemar(metric) else "paired bootstrap"


def _explain(
    choice: Candidate,
    group: Sequence[Candidate],
    ranked: Sequence[RankedEntry],
    task_metric: TaskMetric,
    alpha: float,
    hw: str | None,
    at: str,
) -> str:
    best = group[0]
    where = f" on hardware {hw}" if hw and choice.latency_ms is not None else ""
    head = f"Recommended: {choice.name} with {task_metric.id} {choice.value:.4f}{_ci_text(choice)}, {_costs(choice, at, hw)}{where}."
    if len(group) == 1:
        nxt = next((r for r in ranked if r.rank != 1), None)
        why = " It is the best eligible candidate and no other is statistically tied with it"
        if nxt is not None:
            why += f" (the next best, {nxt.name} at {nxt.value:.4f}, is significantly worse by {_test_name(task_metric)})"
        return head + why + "."
    others = ", ".join(c.name for c in group if c.name != best.name)
    if choice.name == best.name:
        return head + (
            f" It is the best eligible candidate and also the cheapest of the {len(group)} statistically tied "
            f"candidates (tied: {others})."
        )
    return head + (
        f" The best eligible candidate is {best.name} at {best.value:.4f} ({_costs(best, at, hw)}); "
        f"{choice.name} is not significantly worse ({_test_name(task_metric)} p={choice.p_value:.3g} >= alpha {alpha:g}) "
        f"and is the cheapest of the {len(group)} candidates tied with the best (lowest latency, then fewest "
        "parameters)."
    )


def _ci_text(c: Candidate) -> str:
    return (
        f" (95% CI {c.ci_low:.4f}-{c.ci_high:.4f})" if c.ci_low is not None and c.ci_high is not None else ""
    )


def _nothing_fits(cands: Sequence[Candidate], k: Constraints) -> tuple[str | None, Candidate | None]:
    counts = Counter(name for c in cands for name in c.violations)
    blocker = max(k.active(), key=lambda n: (counts[n], -k.active().index(n))) if counts else None
    finite = [c for c in cands if all(math.isfinite(v) for v in c.violations.values())]
    miss = min(finite, key=lambda c: (max(c.violations.values()), -c.value), default=None)
    return blocker, miss


def _explain_nothing(
    cands: Sequence[Candidate], k: Constraints, blocker: str | None, miss: Candidate | None, hw: str | None
) -> str:
    counts = Counter(name for c in cands for name in c.violations)
    parts = [f"No candidate satisfies the constraints ({len(cands)} considered)."]
    if blocker is not None:
        tied = [n for n in k.active() if counts[n] == counts[blocker]]
        flags = " and ".join(CONSTRAINT_FLAGS[n] for n in tied)
        verb = "excludes" if len(tied) == 1 else "each exclude"
        unknown = _unknown_count(cands, blocker)
        why = f" ({unknown} of them have no recorded value{_hw_text(blocker, hw)})" if unknown else ""
        parts.append(f"{flags} {verb} the most: {counts[blocker]} of {len(cands)}{why}.")
    if miss is not None:
        over = "; ".join(
            f"{CONSTRAINT_FLAGS[n]} {_limit_text(n, k)} exceeded {_excess_text(v)} ({_value_text(miss, n, k)})"
            for n, v in sorted(miss.violations.items())
        )
        parts.append(f"Nearest miss: {miss.name} ({miss.value:.4f}): {over}.")
    return " ".join(parts)


def _excess_text(excess: float) -> str:
    """0.86 -> "by 86%"; past 100-fold, the factor ("1.2e+05 times over")."""
    return f"by {excess:.0%}" if excess < 99 else f"{excess + 1:.3g} times over"


def _unknown_count(cands: Sequence[Candidate], name: str) -> int:
    return sum(1 for c in cands if c.violations.get(name) == math.inf)


def _hw_text(name: str, hw: str | None) -> str:
    return f" on hardware {hw}" if name in ("latency", "memory") and hw else ""


def _limit_text(name: str, k: Constraints) -> str:
    if name == "latency":
        return f"{k.max_latency_ms:g} ms at {k.at}"
    if name == "params":
        return format_count(k.max_params, "unknown")
    return format_bytes(k.max_memory_bytes, "unknown")


def _value_text(c: Candidate, name: str, k: Constraints) -> str:
    if name == "latency":
        return f"{k.at} {c.latency_ms:.2f} ms"
    if name == "params":
        return f"{format_count(c.params, 'unknown')} parameters"
    return f"peak memory {format_bytes(c.peak_mem_mb * 2**20 if c.peak_mem_mb is not None else None, 'unknown')}"
