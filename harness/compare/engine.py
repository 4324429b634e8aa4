"""Baseline vs candidate: pair runs, test differences on paired per-example predictions, apply the policy.

Pairing: runs pair on (model, task, protocol). Seeds are averaged, not paired seed-by-seed: each side's
metric is the mean over its seeds, and the paired bootstrap resamples test examples jointly for every
seed of both sides (the examples are what is shared; seeds are nuisance). With exactly one run per side,
accuracy is tested with McNemar's test and the other metrics with the paired bootstrap; with several
seeds on a side, every metric uses the seed-averaged paired bootstrap (McNemar needs one prediction per
example and side).

Multiplicity: one compare tests the gated metric of every pair, so with many pairs some would pass alpha by
chance alone (100 independent pairs at 0.05: about 5 false regressions). By default the gate p-values of all
pairs tested in one invocation are Holm-Bonferroni adjusted together (the family-wise error rate stays at
alpha) and significance, hence the verdict and the exit code, is decided on the adjusted p; `correction: none`
tests each pair at alpha alone. The raw p is kept beside the adjusted one. A gate without a p-value (the
CI-overlap fallback when predictions are missing) is not part of the family, and the task's other metrics are
reported with their raw p: they never decide a verdict.
"""

from __future__ import annotations

import dataclasses
import json
import math
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from harness.compare.latency import LatencyComparison, compare_latency
from harness.compare.policy import Policy
from harness.compare.results import ResultSet
from harness.errors import HarnessError, close_match, code_points, spelled_apart
from harness.metrics import MetricData, MetricRegistry, TaskMetric
from harness.metrics.core import bounds_text, described_bounds
from harness.metrics.evaluate import MAX_N_BOOT, check_plugin_reproducible
from harness.metrics.registry import metric_from_description
from harness.metrics.stats import can_reach, holm, mcnemar, paired_bootstrap, smallest_paired_p, uses_mcnemar
from harness.models.identity import describe_weights
from harness.store.rows import RunResult

Verdict = Literal["ok", "improved", "regression", "failed", "not_comparable", "untested", "missing", "new"]
FAILING: frozenset[str] = frozenset({"regression", "failed"})
# Verdicts of a pair whose gate was tested; a report with none of them tested nothing (not_comparable pairs
# fail only under fail_on_not_comparable, but a gate that compared nothing does not pass by default either).
TESTED: frozenset[str] = frozenset({"ok", "improved", "regression"})


@dataclass(frozen=True)
class MetricComparison:
    metric: str
    baseline: float
    candidate: float
    diff: float  # candidate - baseline
    ci_low: float | None  # 95% interval of the difference (paired bootstrap) or None
    ci_high: float | None
    p_value: float | None  # the test's own (raw) p-value
    test: str  # which test produced p (or "CI overlap ..." / "none"), in words
    paired: bool
    significant: bool  # on p_adjusted when there is one, else on p_value (or the CI overlap)
    n_examples: int | None = None
    higher_is_better: bool = True
    # The gate's p after the correction across all gate tests of the compare (Holm); None when no correction
    # was applied (correction none, a metric that does not gate, or a gate without a p-value).
    p_adjusted: float | None = None

    @property
    def worse(self) -> bool:
        """The candidate is worse than the baseline on the full test set."""
        return self.diff < 0 if self.higher_is_better else self.diff > 0


@dataclass(frozen=True)
class PairComparison:
    model: str
    task: str
    protocol: str
    verdict: Verdict
    reasons: tuple[str, ...] = ()  # why the verdict, in sentences
    notes: tuple[str, ...] = ()  # context that does not change the verdict
    metrics: tuple[MetricComparison, ...] = ()  # the policy metric first
    latency: LatencyComparison | None = None
    baseline_seeds: tuple[int, ...] = ()
    candidate_seeds: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.model} / {self.task} / {self.protocol}"

    @property
    def failing(self) -> bool:
        return self.verdict in FAILING

    def metric(self, name: str) -> MetricComparison | None:
        return next((m for m in self.metrics if m.metric == name), None)

    @property
    def gate(self) -> MetricComparison | None:
        return self.metrics[0] if self.metrics else None


@dataclass(frozen=True)
class ComparisonReport:
    baseline: str
    candidate: str
    policy: Policy
    pairs: tuple[PairComparison, ...]
    problems: tuple[str, ...] = ()  # failures not tied to one pair (a required model absent)
    notes: tuple[str, ...] = ()  # context about the result sets themselves
    gate_tests: int = 0  # gate p-values in the correction's family (pairs whose verdict a paired test decides)

    @property
    def correction_text(self) -> str:
        """Which multiple-testing correction decided significance, in words."""
        n = self.gate_tests
        if self.policy.correction == "holm":
            return f"Holm-Bonferroni across {n} gate test{'s' if n != 1 else ''}"
        return f"none ({n} gate test{'s' if n != 1 else ''}, each at alpha on its own)"

    @property
    def failures(self) -> list[PairComparison]:
        strict = self.policy.fail_on_not_comparable
        return [p for p in self.pairs if p.failing or (strict and p.verdict == "not_comparable")]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures or self.problems else 0

    def counts(self) -> Counter[str]:
        return Counter(p.verdict for p in self.pairs)


# ---- entry point -------------------------------------------------------------------------------------


def compare_results(
    baseline: ResultSet, candidate: ResultSet, policy: Policy, metrics: MetricRegistry | None = None
) -> ComparisonReport:
    """`metrics`: where metric definitions come from (built-ins + plugins); default: built-ins only."""
    metrics = metrics or MetricRegistry()
    if policy.metric is not None:
        _check_metric_name(policy.metric, [*baseline.runs, *candidate.runs], metrics)
    base, cand = baseline.by_pair(), candidate.by_pair()
    _check_gates_computable(base, cand, policy, metrics)
    pairs = []
    spelling = _spelled_apart_pairs(base, cand)
    for key in sorted(set(base) | set(cand), key=lambda k: (k[1], k[2], k[0])):
        pair = compare_pair(key, base.get(key, []), cand.get(key, []), policy, metrics)
        if pair is not None:
            pairs.append(dataclasses.replace(pair, reasons=(*pair.reasons, spelling[key])) if key in spelling else pair)
    pairs, gate_tests = _correct(pairs, policy)
    notes = tuple(
        f"{side} {rs.source}: {rs.superseded} older run(s) of the same (model, task, protocol, seed) ignored; "
        "the newest counts."
        for side, rs in (("Baseline", baseline), ("Candidate", candidate))
        if rs.superseded
    )
    problems = _required_problems(candidate, policy)
    if not policy.allow_nothing_comparable and not any(p.verdict in TESTED for p in pairs):
        twins = (
            f" The names of {len(spelling) // 2} (model, task, protocol) differ between the sides only in Unicode "
            "composition (see their lines)." if spelling else ""
        )
        problems += (_nothing_comparable(baseline, candidate, pairs) + twins,)
    return ComparisonReport(baseline.source, candidate.source, policy, tuple(pairs), problems, notes, gate_tests)


def _spelled_apart_pairs(
    base: Mapping[tuple[str, str, str], object], cand: Mapping[tuple[str, str, str], object]
) -> dict[tuple[str, str, str], str]:
    """A reason for each (model, task, protocol) on one side only whose twin on the other side prints alike: the
    same names after NFC, one side composed (e + U+0301 from a macOS path), the other decomposed. Matched
    exactly they are one missing and one new pair; they are not matched after NFC because a store keeps names
    as written, so one store may hold both spellings as two models."""
    def nfc(key: tuple[str, str, str]) -> tuple[str, ...]:
        return tuple(unicodedata.normalize("NFC", part) for part in key)

    only_cand = {nfc(k): k for k in set(cand) - set(base)}
    out = {}
    for key in set(base) - set(cand):
        twin = only_cand.get(nfc(key))
        if twin is None:
            continue
        parts = "; ".join(
            f"{what} {b!r}: baseline {code_points(b)}, candidate {code_points(c)}"
            for what, b, c in zip(("model", "task", "protocol"), key, twin, strict=True)
            if spelled_apart(b, c)
        )
        text = (
            "The {} has this pair spelled with other Unicode code points ({}): the names print alike, one "
            "composed and one decomposed, but compare matches names exactly. Re-run one side under the other's "
            "spelling to compare them."
        )
        out[key], out[twin] = text.format("candidate", parts), text.format("baseline", parts)
    return out


def _correct(pairs: list[PairComparison], policy: Policy) -> tuple[list[PairComparison], int]:
    """The pairs with their gate's p adjusted across every gate test of this compare (policy.correction) and
    their verdicts decided again on it; the number of tests in that family: the pairs whose verdict a gate
    p-value decides (not missing, failed or not comparable ones, nor CI-overlap gates without a p)."""
    family: list[tuple[int, MetricComparison, float]] = [
        (i, gate, gate.p_value)
        for i, pair in enumerate(pairs)
        if pair.verdict in ("ok", "improved", "regression")
        and (gate := pair.gate) is not None
        and gate.p_value is not None
    ]
    if policy.correction == "none":
        return pairs, len(family)
    _check_bootstrap_resolution([gate for _, gate, _ in family], policy)
    out = list(pairs)
    for (i, gate, _), adjusted in zip(family, holm([p for _, _, p in family]), strict=True):
        gate = dataclasses.replace(gate, p_adjusted=adjusted, significant=adjusted < policy.alpha)
        verdict, reasons = decide(gate, out[i].latency, policy, len(family))
        out[i] = dataclasses.replace(out[i], verdict=verdict, reasons=reasons, metrics=(gate, *out[i].metrics[1:]))
    return out, len(family)


def _shown(names: Sequence[str]) -> str:
    return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")


def _nothing_comparable(baseline: ResultSet, candidate: ResultSet, pairs: Sequence[PairComparison]) -> str:
    untested = [
        p.name for p in pairs if p.verdict in ("untested", "not_comparable") and p.baseline_seeds and p.candidate_seeds
    ]
    if untested:  # finished on both sides, but no test was possible: not "no finished run on both sides"
        return (
            f"Nothing tested: {len(untested)} (model, task, protocol) have a finished run on both sides "
            f"({_shown(untested)}), but none could be tested or compared (each pair's reason is listed: e.g. the "
            "task's data, the protocol or the model's weights changed). Pass "
            "--allow-nothing-comparable (policy: allow_nothing_comparable: true) if an untested comparison "
            "should pass."
        )

    def has(rs: ResultSet) -> str:
        names = sorted({" / ".join(r.pair_key) for r in rs.runs if r.status == "done"})
        return f"{rs.source} has {len(names)} finished (model / task / protocol): {_shown(names) or 'none'}"

    return (
        "Nothing comparable: no (model, task, protocol) has a finished run on both sides. "
        f"Baseline {has(baseline)}. Candidate {has(candidate)}. Pass --allow-nothing-comparable "
        "(policy: allow_nothing_comparable: true) if an empty comparison should pass."
    )


def _check_gates_computable(
    base: Mapping[tuple[str, str, str], Sequence[RunResult]],
    cand: Mapping[tuple[str, str, str], Sequence[RunResult]],
    policy: Policy,
    registry: MetricRegistry,
) -> None:
    """Every gated metric of a pair with finished runs on both sides has its definition loaded: the gate is
    recomputed from the stored predictions for the paired test, and a plugin metric read without its plugin
    cannot be (it fell back to CI overlap, or with several seeds to no test at all)."""
    missing: dict[tuple[str, str], list[str]] = {}
    for key in sorted(set(base) & set(cand)):
        b = [r for r in base[key] if r.status == "done"]
        c = [r for r in cand[key] if r.status == "done"]
        if not b or not c:
            continue
        gate = gate_metric(b, c, policy)
        description = _descriptions([*b, *c]).get(gate, {"id": gate, "name": gate})
        if metric_from_description(description, registry) is None:
            missing.setdefault((gate, str(description.get("name", gate))), []).append(key[1])
        _check_max_drop(policy, gate, key[1], described_bounds(description))
    if not missing:
        return
    parts = []
    for (gate, name), tasks in missing.items():
        tasks = sorted(set(tasks))
        what = f'--metric "{gate}"' if policy.metric else f'the main metric "{gate}" of task {", ".join(tasks)}'
        parts.append(what + (f' (metric "{name}")' if name != gate else ""))
    raise HarnessError(
        f"Cannot gate on {'; '.join(parts)}: it is not a built-in metric and no plugin defining it is loaded (a "
        "plugin metric). compare recomputes the gated metric from the stored per-example predictions for its paired test, "
        "so it needs the definition: pass --plugin FILE, the .py file that defines the metric (as given to "
        "harness run), or gate on a built-in metric with --metric."
    )


def _check_max_drop(policy: Policy, gate: str, task: str, bounds: tuple[float, float] | None) -> None:
    """An allowed drop as wide as the gated metric's whole range (max_drop 5 for a share) passed every pair."""
    if bounds is not None and policy.max_drop >= bounds[1] - bounds[0]:
        raise HarnessError(
            f"max_drop {policy.max_drop:g} (--max-drop, policy key max_drop) is at least the whole range of the gated "
            f"metric {gate} of task {task} ({bounds_text(bounds)}): no drop could fail the gate, so the check could "
            f"never fail. Give an allowed drop below {bounds[1] - bounds[0]:g} (e.g. 0.01)."
        )


def _check_metric_name(name: str, runs: Sequence[RunResult], registry: MetricRegistry) -> None:
    declared = {str(d["id"]) for r in runs for d in r.task_metrics if d.get("shape", "scalar") == "scalar"}
    known = declared | {n for n in registry.names() if registry.get(n).shape == "scalar"}
    if name not in known:
        raise HarnessError(
            f'--metric "{name}" is neither a metric the compared tasks declare nor a registered metric.'
            f"{close_match(name, known)} Declared: {', '.join(sorted(declared)) or '(none)'}; registered: "
            f"{', '.join(sorted(known - declared))}."
        )


def _required_problems(candidate: ResultSet, policy: Policy) -> tuple[str, ...]:
    done = [r for r in candidate.runs if r.status == "done"]
    problems = []
    for kind, names, have in (
        ("model", policy.required_models, {r.model for r in done}),
        ("task", policy.required_tasks, {r.task for r in done}),
    ):
        for name in names:
            if name not in have:
                problems.append(
                    f"Required {kind} {name!r} has no finished run in the candidate ({candidate.source})."
                )
    return tuple(problems)


def compare_pair(
    key: tuple[str, str, str],
    base_runs: Sequence[RunResult],
    cand_runs: Sequence[RunResult],
    policy: Policy,
    registry: MetricRegistry | None = None,
) -> PairComparison | None:
    model, task, protocol = key
    base_done = [r for r in base_runs if r.status == "done"]
    cand_done = [r for r in cand_runs if r.status == "done"]
    seeds = {
        "baseline_seeds": tuple(r.seed for r in base_done),
        "candidate_seeds": tuple(r.seed for r in cand_done),
    }

    def verdict(v: Verdict, *reasons: str, **kw: Any) -> PairComparison:
        return PairComparison(model, task, protocol, v, tuple(reasons), **{**seeds, **kw})

    if not base_done and not cand_done:
        if all(r.status == "not_applicable" for r in [*base_runs, *cand_runs]):
            return None
        return verdict("untested", "No finished run on either side (failed or not applicable in both).")
    if not cand_done:
        if not cand_runs:
            required = model in policy.required_models or task in policy.required_tasks
            msg = "Present in the baseline, absent from the candidate."
            return (
                verdict("failed", msg + " It is required by the policy.")
                if required
                else verdict("missing", msg)
            )
        last = cand_runs[-1]
        if last.status == "failed":
            return verdict("failed", f"The candidate run failed: {_first_line(last.error)}")
        return verdict("not_comparable", f"The candidate run is not applicable: {_first_line(last.error)}")
    if not base_done:
        note = "not in the baseline" if not base_runs else f"baseline run {base_runs[-1].status}"
        return verdict("new", f"New in the candidate ({note}).")

    blockers = comparability_problems(base_done, cand_done)
    notes = _context_notes(base_done, cand_done)
    metrics, metric_notes, label_problem = compare_metrics(base_done, cand_done, policy, registry)
    if label_problem:
        blockers.append(label_problem)
    latency = compare_latency(base_done, cand_done, policy)
    all_notes = tuple(notes + metric_notes)
    if blockers:
        return verdict("not_comparable", *blockers, notes=all_notes, metrics=metrics, latency=latency)

    v, reasons = decide(metrics[0], latency, policy)
    return verdict(v, *reasons, notes=all_notes, metrics=metrics, latency=latency)


def _check_bootstrap_resolution(gates: Sequence[MetricComparison], policy: Policy) -> None:
    """A paired bootstrap's p is at least 1/(n_boot + 1), and Holm multiplies the smallest of k such tests by at
    least k. When k/(n_boot + 1) reaches alpha, no bootstrap-tested drop, however large, could fail the check:
    a CI gate that cannot fail is refused rather than passed."""
    m = len(gates)
    booted = sum(g.test.startswith("paired bootstrap") for g in gates)
    if not booted or booted / (policy.n_boot + 1) < policy.alpha:
        return
    least = math.floor(booted / policy.alpha)
    while booted / (least + 1) >= policy.alpha:  # the same test as above, free of float rounding
        least += 1
    suggest = min(MAX_N_BOOT, math.ceil(2 * m / policy.alpha / 1000) * 1000)
    fix = (
        f"Pass --n-boot {suggest} (policy n_boot: {suggest}; at least {least} makes a failure possible, more "
        "leaves room)"
        if least <= MAX_N_BOOT
        else f"No n_boot up to {MAX_N_BOOT:,} is enough for {booted:,} tests: compare fewer pairs (--task)"
    )
    raise HarnessError(
        f"The Holm correction cannot flag a regression here: {booted} of the {m} gate tests are paired bootstrap "
        f"tests with {policy.n_boot} resamples, whose p is never below 1/{policy.n_boot + 1}, so Holm adjusts even "
        f"the largest of those drops to at least {booted}/{policy.n_boot + 1} = "
        f"{booted / (policy.n_boot + 1):.3g}, not under alpha {policy.alpha:g}: those pairs could never fail the "
        f"check. {fix}, or pass --correction none to test each pair at alpha on its own (with that many pairs "
        "some will then fail by chance)."
    )


def decide(
    gate: MetricComparison, latency: LatencyComparison | None, policy: Policy, tests: int = 1
) -> tuple[Verdict, tuple[str, ...]]:
    """The verdict of a comparable pair from its gate (significance as set on it: raw, or after the
    correction across `tests` gate tests) and its latency, with the reasons in sentences."""
    reasons: list[str] = []
    v: Verdict = "ok"
    worse_word = "dropped" if gate.higher_is_better else "rose (worse)"
    if gate.test == "none":
        v = "untested"
        if math.isnan(gate.baseline) or math.isnan(gate.candidate):
            side = "both sides" if math.isnan(gate.baseline) and math.isnan(gate.candidate) else (
                "the baseline" if math.isnan(gate.baseline) else "the candidate"
            )
            reasons.append(
                f"{gate.metric} is undefined on {side} (no value: e.g. a test set of one class, or scores it does "
                "not apply to): cannot test."
            )
        elif gate.paired and gate.n_examples is not None:
            reasons.append(
                f"Only {gate.n_examples} paired test example(s): no paired test of so few can reach p < alpha "
                f"{policy.alpha:g} (an exact one's smallest p is {smallest_paired_p(gate.n_examples):.3g}), so a "
                f"drop in {gate.metric} could never fail the check: cannot test. Evaluate on a larger test split."
            )
        else:
            reasons.append(f"No paired predictions and no confidence intervals for {gate.metric}: cannot test.")
    elif gate.significant and gate.worse and abs(gate.diff) > policy.max_drop:
        v = "regression"
        reasons.append(_describe_change(gate, policy, worse_word, tests))
    elif gate.significant and not gate.worse and gate.diff != 0:
        v = "improved"
        reasons.append(_describe_change(gate, policy, "improved", tests))
    elif gate.significant:
        reasons.append(
            _describe_change(gate, policy, worse_word, tests) + f" Within the allowed drop of {policy.max_drop:g}."
        )
    elif gate.p_adjusted is not None and gate.p_value is not None and gate.p_value < policy.alpha and gate.diff != 0:
        word = worse_word if gate.worse else "improved"
        reasons.append(
            f"{gate.metric} {word} by {abs(gate.diff):.4f} ({gate.baseline:.4f} -> {gate.candidate:.4f}); "
            f"{gate.test} p={gate.p_value:.3g} is under alpha {policy.alpha:g} on its own, but not after the "
            f"Holm correction across {tests} gate tests (adjusted p={gate.p_adjusted:.3g}): not significant."
        )
    if latency is not None and latency.status == "regression":
        v = "regression"
        reasons.append(latency.note)
    return v, tuple(reasons)


def _describe_change(m: MetricComparison, policy: Policy, word: str, tests: int = 1) -> str:
    ci = f", 95% CI of the difference [{m.ci_low:+.4f}, {m.ci_high:+.4f}]" if m.ci_low is not None else ""
    if m.p_value is None:
        p = m.test
    elif m.p_adjusted is not None:
        p = (
            f"{m.test} p={m.p_value:.3g}, Holm-adjusted across {tests} gate tests p={m.p_adjusted:.3g} "
            f"< alpha {policy.alpha:g}"
        )
    else:
        p = f"{m.test} p={m.p_value:.3g} < alpha {policy.alpha:g}"
    return f"{m.metric} {word} by {abs(m.diff):.4f} ({m.baseline:.4f} -> {m.candidate:.4f}){ci}; {p}."


def _first_line(text: str | None) -> str:
    return (text or "no error recorded").strip().splitlines()[0]


# ---- comparability -----------------------------------------------------------------------------------


def _protocol_config(run: RunResult) -> Any:
    proto = run.config.get("protocol")
    if isinstance(proto, Mapping):
        return {"protocol": proto.get("protocol"), "config": proto.get("config")}
    return proto


def _model_spec(run: RunResult) -> Mapping[str, Any]:
    spec = run.config.get("model")
    return spec if isinstance(spec, Mapping) else {}


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _weights(run: RunResult) -> str | None:
    """What pinned the run's model weights ("sha256:..."), None for runs recorded before weights were hashed."""
    identity = run.config.get("model_identity")
    return describe_weights(identity) if isinstance(identity, Mapping) else None


def comparability_problems(base: Sequence[RunResult], cand: Sequence[RunResult]) -> list[str]:
    """Reasons the two sides measure different things (data, task, protocol config, model revision, weights)."""
    checks = (
        ("data fingerprint", lambda r: r.data_fingerprint),
        ("task version", lambda r: r.task_version),
        ("model revision", lambda r: _model_spec(r).get("revision")),
        ("protocol config", _protocol_config),
    )
    problems = []
    for what, get in checks:
        b, c = {_canon(get(r)) for r in base}, {_canon(get(r)) for r in cand}
        if b != c:
            detail = (
                _dict_diff(get(base[0]), get(cand[0]))
                if what == "protocol config"
                else f"{' / '.join(sorted(b))} -> {' / '.join(sorted(c))}"
            )
            problems.append(f"Not comparable: {what} changed ({detail}).")
    wb, wc = {_weights(r) for r in base}, {_weights(r) for r in cand}
    if None not in wb | wc and wb != wc:
        problems.append(f"Not comparable: model weights changed ({' / '.join(sorted(wb))} -> {' / '.join(sorted(wc))}).")  # type: ignore[arg-type]
    return problems


def _dict_diff(a: Any, b: Any, prefix: str = "") -> str:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        parts = [
            _dict_diff(a.get(k), b.get(k), f"{prefix}{k}.")
            for k in sorted(set(a) | set(b), key=str)
            if _canon(a.get(k)) != _canon(b.get(k))
        ]
        return "; ".join(parts)
    return f"{prefix.rstrip('.') or 'value'}: {_canon(a)} -> {_canon(b)}"


def _context_notes(base: Sequence[RunResult], cand: Sequence[RunResult]) -> list[str]:
    notes = []
    spec_b = {k: v for k, v in _model_spec(base[0]).items() if k != "revision"}
    spec_c = {k: v for k, v in _model_spec(cand[0]).items() if k != "revision"}
    if _canon(spec_b) != _canon(spec_c):
        notes.append(f"Model spec changed ({_dict_diff(spec_b, spec_c)}).")
    unhashed = [side for side, runs in (("baseline", base), ("candidate", cand)) if any(_weights(r) is None for r in runs)]
    if unhashed:
        notes.append(
            f"Model weights not recorded for the {' and '.join(unhashed)} run(s) (made before harness hashed "
            "weights): cannot tell whether the weights changed."
        )
    sb, sc = sorted(r.seed for r in base), sorted(r.seed for r in cand)
    if sb != sc:
        notes.append(f"Seeds differ (baseline {sb}, candidate {sc}); each side is averaged over its seeds.")
    return notes


# ---- metrics -----------------------------------------------------------------------------------------


def gate_metric(base: Sequence[RunResult], cand: Sequence[RunResult], policy: Policy) -> str:
    """--metric / the policy's metric, else the task's main metric (the candidate's declaration)."""
    if policy.metric:
        return policy.metric
    return cand[0].main_metric or base[0].main_metric


def _descriptions(runs: Sequence[RunResult]) -> dict[str, Mapping[str, Any]]:
    """Metric id -> stored description; the candidate's declaration wins over the baseline's."""
    out: dict[str, Mapping[str, Any]] = {}
    for r in runs:
        for d in r.task_metrics:
            if d.get("shape", "scalar") == "scalar":
                out[str(d["id"])] = d
    return out


def compare_metrics(
    base: Sequence[RunResult],
    cand: Sequence[RunResult],
    policy: Policy,
    registry: MetricRegistry | None = None,
) -> tuple[tuple[MetricComparison, ...], list[str], str | None]:
    """(comparisons with the gated metric first, then the task's other metrics; notes; a label-mismatch
    problem or None)."""
    registry = registry or MetricRegistry()
    gate = gate_metric(base, cand, policy)
    described = _descriptions([*base, *cand])
    if gate not in described:
        described = {gate: {"id": gate, "name": gate, "params": {}}, **described}
    names = [gate, *(m for m in described if m != gate)]
    resolved = {name: metric_from_description(described[name], registry) for name in names}
    hib = {name: (m.higher_is_better if m else bool(described[name].get("higher_is_better", True))) for name, m in resolved.items()}
    notes = []
    if base[0].main_metric and cand[0].main_metric and base[0].main_metric != cand[0].main_metric and not policy.metric:
        notes.append(
            f"The task's main metric changed ({base[0].main_metric} -> {cand[0].main_metric}); gating on "
            f"the candidate's, {cand[0].main_metric}."
        )
    for name, m in resolved.items():
        if m is None:
            notes.append(
                f"Metric {name} is defined by a plugin that is not loaded here (pass --plugin): compared by "
                "stored values and CIs only."
            )

    changed = _changed_definitions(base, cand)

    def stored(name: str) -> MetricComparison:
        """The stored values of both sides; none where the metric's definition differs between the sides (the
        numbers measure different things: top-2 accuracy against top-3 passed or failed the gate)."""
        if name not in changed:
            return _unpaired(name, base, cand, hib[name])
        notes.append(f"{name}: its definition changed ({changed[name]}) and it is not recomputed here: stored values not compared.")
        return _unpaired(name, (), (), hib[name])

    gate_changed = (
        f"Not comparable: the definition of the gated metric {gate} changed ({changed[gate]}), and it cannot be "
        "recomputed on both sides from per-example predictions."
        if gate in changed
        else None
    )

    def stored_all(problem: str | None = None) -> tuple[tuple[MetricComparison, ...], list[str], str | None]:
        return tuple(stored(n) for n in names), notes, problem or gate_changed

    def unpaired_all(extra: list[str], problem: str | None = None) -> tuple[tuple[MetricComparison, ...], list[str], str | None]:
        notes.extend(extra)
        return stored_all(problem)

    runs = [*base, *cand]
    if any(r.predictions is None for r in runs):
        return unpaired_all(
            ["No per-example predictions on both sides: no paired test; CI overlap used instead (weaker)."]
        )
    common = set(runs[0].predictions.ids)  # type: ignore[union-attr]
    for r in runs[1:]:
        common &= set(r.predictions.ids)  # type: ignore[union-attr]
    if not common:
        return unpaired_all(["No example ids in common between the sides: no paired test; CI overlap used instead."])
    ids = sorted(common)
    aligned = [_aligned(r, ids) for r in runs]
    y = aligned[0].y
    mismatched = max(int(np.sum(d.y != y)) for d in aligned)
    if mismatched:
        return stored_all(f"Not comparable: ground-truth labels differ on {mismatched} of {len(ids)} shared examples.")

    sizes = {len(r.predictions.ids) for r in runs}  # type: ignore[union-attr]
    if sizes != {len(ids)}:
        notes.append(f"Compared on the {len(ids)} test examples both sides share (run sizes: {sorted(sizes)}).")
    out = []
    problem = None
    for name in names:
        metric = resolved[name]
        reason = next((why for d in aligned if metric and (why := metric.metric.not_applicable(d))), None)
        if metric is None or reason:
            if reason:
                notes.append(f"{name}: {reason} Compared by stored values and CIs only.")
            out.append(stored(name))
            if name == gate:
                problem = gate_changed
            continue
        if name in changed:
            notes.append(f"{name}: its definition changed ({changed[name]}); both sides recomputed with the candidate's.")
        out.append(_paired(metric, aligned[: len(base)], aligned[len(base) :], policy))
    return tuple(out), notes, problem


def _changed_definitions(base: Sequence[RunResult], cand: Sequence[RunResult]) -> dict[str, str]:
    """Metric id -> "definition -> definition" for the ids both sides declare with a different metric or parameters."""

    def text(d: Mapping[str, Any]) -> str:
        return f"{d.get('name')} {_canon(d.get('params') or {})}"

    b, c = _descriptions(base), _descriptions(cand)
    return {i: f"{text(b[i])} -> {text(c[i])}" for i in b.keys() & c.keys() if text(b[i]) != text(c[i])}


def _aligned(run: RunResult, ids: Sequence[str]) -> MetricData:
    """The run's labels, predictions and class scores on `ids` (sorted), as metric input."""
    p = run.predictions
    assert p is not None
    if len(p.ids) == len(ids):  # already sorted by id and identical
        idx = np.arange(len(ids))
    else:
        pos = {eid: i for i, eid in enumerate(p.ids)}
        idx = np.array([pos[i] for i in ids], dtype=np.int64)
    n_labels = max(
        run.n_labels or 0,
        1 + int(max(p.labels.max(), p.preds.max())),
        p.scores.shape[1] if p.scores is not None else 0,
    )
    scores = p.scores[idx] if p.scores is not None and p.scores.shape[1] == n_labels else None
    return MetricData.of(p.labels[idx], p.preds[idx], n_labels, scores, p.score_kind if scores is not None else None)


def _paired(
    metric: TaskMetric, side_b: list[MetricData], side_c: list[MetricData], policy: Policy
) -> MetricComparison:
    n_labels = max(d.n_labels for d in [*side_b, *side_c])
    side_b = [d if d.n_labels == n_labels else MetricData.of(d.y, d.pred, n_labels) for d in side_b]
    side_c = [d if d.n_labels == n_labels else MetricData.of(d.y, d.pred, n_labels) for d in side_c]
    check_plugin_reproducible(metric, side_b[0])
    base_value = float(np.mean([metric.point(d) for d in side_b]))
    cand_value = float(np.mean([metric.point(d) for d in side_c]))
    if not (math.isfinite(base_value) and math.isfinite(cand_value)):  # e.g. MCC of a test set of one class
        nan = float("nan")
        return MetricComparison(
            metric.id, base_value, cand_value, nan, None, None, None, "none", False, False, None, metric.higher_is_better
        )
    n = len(side_b[0])
    if not can_reach(policy.alpha, n):  # no paired test of so few examples can flag anything: not a pass
        return MetricComparison(
            metric.id, base_value, cand_value, cand_value - base_value, None, None, None, "none", True, False, n,
            metric.higher_is_better,
        )  # fmt: skip
    # The observed difference passed in: each point value is a sklearn call (~6 ms); computing them twice
    # was half of a compare of 3,000 pairs.
    boot = paired_bootstrap(
        metric, side_b, side_c, n_boot=policy.n_boot, seed=policy.seed, observed=cand_value - base_value
    )
    p_value, test = boot.p_value, "paired bootstrap"
    if len(side_b) > 1 or len(side_c) > 1:
        test = f"paired bootstrap (seed-averaged, {len(side_b)} vs {len(side_c)} seeds)"
    elif uses_mcnemar(metric):
        y = side_b[0].y
        mc = mcnemar(side_b[0].pred == y, side_c[0].pred == y)
        p_value = mc.p_value
        test = f"McNemar {'exact' if mc.exact else 'chi2'} (n01={mc.n01}, n10={mc.n10})"
    return MetricComparison(
        metric=metric.id,
        baseline=base_value,
        candidate=cand_value,
        diff=cand_value - base_value,
        ci_low=boot.ci_low,
        ci_high=boot.ci_high,
        p_value=p_value,
        test=test,
        paired=True,
        significant=p_value < policy.alpha,
        n_examples=len(side_b[0]),
        higher_is_better=metric.higher_is_better,
    )


def _unpaired(
    name: str, base: Sequence[RunResult], cand: Sequence[RunResult], higher_is_better: bool = True
) -> MetricComparison:
    """Fallback without per-example predictions: stored values, and whether their 95% CIs overlap."""
    values_b = [r.metrics[name].value for r in base if name in r.metrics]
    values_c = [r.metrics[name].value for r in cand if name in r.metrics]
    if not values_b or not values_c:
        nan = float("nan")
        return MetricComparison(name, nan, nan, nan, None, None, None, "none", False, False, None, higher_is_better)
    b, c = float(np.mean(values_b)), float(np.mean(values_c))
    ci_b = _single_ci(base, name)
    ci_c = _single_ci(cand, name)
    if ci_b is None or ci_c is None:
        return MetricComparison(name, b, c, c - b, None, None, None, "none", False, False, None, higher_is_better)
    disjoint = ci_c[1] < ci_b[0] or ci_b[1] < ci_c[0]
    test = "CI overlap (no per-example predictions; not a paired test)"
    return MetricComparison(name, b, c, c - b, None, None, None, test, False, disjoint, None, higher_is_better)


def _single_ci(runs: Sequence[RunResult], name: str) -> tuple[float, float] | None:
    if len(runs) != 1:
        return None
    m = runs[0].metrics.get(name)
    if m is None or m.ci_low is None or m.ci_high is None:
        return None
    return (m.ci_low, m.ci_high)
