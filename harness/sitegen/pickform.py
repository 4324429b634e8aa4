"""Data for the task page's pick form: `harness pick`'s rule (harness.pick), computed at build time.

The form filters (model, protocol) candidates by max p50/p95 latency, parameters and peak memory on one
hardware id, takes the best eligible candidate, forms its tie group (eligible candidates not
significantly worse: McNemar for accuracy, paired bootstrap otherwise, on the stored predictions) and
recommends the cheapest member (lowest latency at the chosen percentile, then fewest parameters) —
the steps of harness.pick.pick, run in the browser on numbers embedded here.

Only the paired tests need the predictions, so they are done here, for every candidate that can be
the best eligible one under some constraint set (not dominated by a better candidate that is no
costlier on any constrained quantity, on some hardware id, within some protocol), against the
candidates below it whose 95% CI reaches its CI (at most MAX_TESTS per leader, the closest first).
On a small board that is every pair harness pick could test. On a large one the work is bounded: at
most MAX_TESTS candidates per leader and MAX_CANDIDATES per task, the best leaders first; a leader left
without tests is recommended alone and the form says that harness pick would test its ties.
p-values are a function of the two runs alone and are cached across builds by run keys.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from math import isfinite
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np

from harness.metrics import MetricRegistry, TaskMetric
from harness.metrics.stats import bootstrap_p, interval_reaches, mcnemar, uses_mcnemar
from harness.records import PERCENTILE_MIN_SAMPLES
from harness.sitegen.format import shown
from harness.sitegen.ranking import RankingConfig, SharedResamples, metric_data, task_main_metric
from harness.sitegen.results import Board, Result
from harness.store.rows import ExamplePredictions, Timing

MAX_TESTS = 20  # paired tests per possible leader
# Candidates whose bootstrap a task's form may need: the cost is candidates x resamples x test examples
# per task, so on a board of thousands the best leaders are covered and the rest are not.
MAX_CANDIDATES = 48


class PickCandidate(NamedTuple):
    """One done (model, protocol) on a task (a NamedTuple: a task of a large board has thousands)."""

    model: str
    protocol: str
    key: str  # the representative run (lowest seed), whose predictions are tested
    finished_at: str  # ... and when it was written: a re-run under the same key is new data
    value: float  # its stored main metric, as harness pick uses
    ci_low: float | None
    ci_high: float | None
    params: int | None
    timings: Mapping[str, tuple[float | None, float | None, float | None]]  # hw -> (p50, p95, peak MiB)

    @property
    def name(self) -> str:
        return f"{self.model} [{self.protocol}]"


def candidates(board: Board, task: str) -> tuple[list[PickCandidate], list[str]]:
    """Every done (model, protocol) on the task, best first (harness pick's order: value, then name), and
    the hardware ids of the task's timed runs, most timed runs first (harness pick's default is the first).

    One pass over the task's results, kept lean: it runs for every result of a board at each build."""
    metric = board.main_metric(task)
    sign = board.sign(task)
    model_meta = board.model_meta
    counts: Counter[str] = Counter()
    keyed: list[tuple[float, str, PickCandidate]] = []
    new = tuple.__new__
    for protocol in board.protocols:
        for r in board.by_task_protocol.get((task, protocol), ()):
            if r.status != "done":
                continue
            runs = r.runs
            t = r.timing
            if len(runs) == 1:
                if t is not None:
                    counts[t.hardware] += 1
            else:
                counts.update(run.timing.hardware for run in runs if run.timing is not None)
            rep = r.representative
            m = rep.metrics.get(metric)
            if m is None or not isfinite(m.value):  # nan: undefined; inf: only a hand-edited store holds one
                continue
            value = m.value
            if len(runs) == 1:  # one seed (most results): its own timing, the median and maximum of one value
                params = model_meta[r.model].params
                if params is None and t is not None:
                    params = t.params
                timings = {} if t is None else {t.hardware: _one_timing(t)}
                fields = (r.model, protocol, rep.key, rep.finished_at, value, m.ci_low, m.ci_high, params, timings)
                c = new(PickCandidate, fields)
            else:
                c = _seeds_candidate(board, r, value, m.ci_low, m.ci_high)
            keyed.append((-sign * value, f"{r.model} [{protocol}]", c))
    keyed.sort(key=_value_then_name)
    return [k[2] for k in keyed], [hw for hw, _ in counts.most_common()]


_value_then_name = itemgetter(0, 1)


def _seeds_candidate(board: Board, r: Result, value: float, lo: float | None, hi: float | None) -> PickCandidate:
    """A candidate of several seeds, with timings as harness pick takes them: per hardware id, the median
    over seeds of the uncontended timings whose sample count supports the percentile (None when none
    does), the largest peak memory."""
    runs = r.runs
    by_hw: dict[str, list[Timing]] = {}
    for run in runs:
        if run.timing is not None:
            by_hw.setdefault(run.timing.hardware, []).append(run.timing)
    timings = {}
    for hw, every in by_hw.items():
        quiet = [t for t in every if not t.contended]
        p50 = [t.p50_ms for t in quiet if t.n_timed >= _P50_MIN and _finite(t.p50_ms)]
        p95 = [t.p95_ms for t in quiet if t.n_timed >= _P95_MIN and _finite(t.p95_ms)]
        mem = [t.peak_mem_mb for t in quiet if t.peak_mem_mb is not None and _finite(t.peak_mem_mb)]
        timings[hw] = (
            statistics.median(p50) if p50 else None,
            statistics.median(p95) if p95 else None,
            max(mem) if mem else None,
        )
    params = board.model_meta[r.model].params
    if params is None:
        params = next((x.timing.params for x in runs if x.timing), None)
    rep = r.representative
    return PickCandidate(r.model, r.protocol, rep.key, rep.finished_at, value, lo, hi, params, timings)


_P50_MIN, _P95_MIN = PERCENTILE_MIN_SAMPLES["p50"], PERCENTILE_MIN_SAMPLES["p95"]


def _one_timing(t: Timing) -> tuple[float | None, float | None, float | None]:
    """The timings of a single run: (p50, p95, peak MiB), None where unknown or not supported."""
    if t.contended:
        return (None, None, None)
    p50, p95, mem, n = t.p50_ms, t.p95_ms, t.peak_mem_mb, t.n_timed
    return (
        p50 if n >= _P50_MIN and p50 is not None and isfinite(p50) else None,
        p95 if n >= _P95_MIN and p95 is not None and isfinite(p95) else None,
        mem if mem is not None and isfinite(mem) else None,
    )


def _finite(value: float | None) -> bool:
    """A number the form can show and send as JSON (a hand-edited store may hold inf: treated as unknown)."""
    return value is not None and isfinite(value)


def possible_leaders(cands: Sequence[PickCandidate], hardware: Sequence[str]) -> list[int]:
    """Indices of candidates that are the best eligible one for some constraint set: on some hardware id
    and within their protocol, no better candidate is at most as costly on every quantity a constraint
    can bound (unknown counts as infinitely costly: it fails any bound). A leader over all protocols
    is a leader within its own protocol, so the protocols' fronts cover the "any protocol" form too."""
    leaders: set[int] = set()
    hws: list[str | None] = [*hardware] or [None]
    inf = math.inf
    params = [float(c.params) if c.params is not None else inf for c in cands]
    for hw in hws:
        fronts: dict[str, list[tuple[float, float, float, float]]] = {}
        for i, c in enumerate(cands):  # best first: a later candidate never dominates an earlier one
            # What a constraint can bound: p50, p95, parameters, peak memory (unknown: infinite).
            t = c.timings.get(hw) if hw is not None else None
            p50, p95, mem = t if t else (None, None, None)
            a = p50 if p50 is not None else inf
            b = p95 if p95 is not None else inf
            n = params[i]
            d = mem if mem is not None else inf
            front = fronts.get(c.protocol)
            if front is None:
                front = fronts[c.protocol] = []
            for f in front:
                if f[0] <= a and f[1] <= b and f[2] <= n and f[3] <= d:
                    break
            else:
                front.append((a, b, n, d))  # a dominated member would be dominated by a front member already
                leaders.add(i)
    return sorted(leaders)


def tie_tests(
    cands: Sequence[PickCandidate], leaders: Sequence[int], higher_is_better: bool, budget: int | None = None
) -> dict[int, list[int]]:
    """leader -> the candidates below it to test against it (closest first, CI reaching its CI: as harness
    pick screens), for the best leaders while the candidates involved stay within `budget` (default
    MAX_CANDIDATES)."""
    budget = MAX_CANDIDATES if budget is None else budget
    out: dict[int, list[int]] = {}
    involved: set[int] = set()
    for lead in leaders:
        c = cands[lead]
        below = []
        for j in range(lead + 1, len(cands)):
            if interval_reaches(cands[j].ci_low, cands[j].ci_high, c.ci_low, c.ci_high, higher_is_better):
                below.append(j)
            if len(below) >= MAX_TESTS:
                break
        if involved and len(involved | {lead, *below}) > budget:
            break  # the leaders below this one get no paired tests (the form says so when one leads)
        involved |= {lead, *below}
        out[lead] = below
    return out


def p_values(
    cands: Sequence[PickCandidate],
    tests: Mapping[int, Sequence[int]],
    preds: Mapping[str, ExamplePredictions],
    metric: TaskMetric | None,
    n_labels: int,
    cfg: RankingConfig,
    cache: dict[str, float],
    shared: SharedResamples,
) -> dict[tuple[int, int], float]:
    """(leader, other) -> p-value of the paired test, for the pairs with predictions on the same examples.
    `cache` (run key pair -> p) is read and extended."""
    out: dict[tuple[int, int], float] = {}
    if metric is None:  # a plugin metric the site was built without: no paired tests
        return out
    todo: list[tuple[int, int]] = []
    for lead, others in tests.items():
        for j in others:
            hit = cache.get(_cache_key(cands[lead], cands[j], metric.id, n_labels, cfg))
            if hit is not None:
                out[(lead, j)] = hit
            else:
                todo.append((lead, j))
    if not todo:
        return out
    involved = sorted({i for pair in todo for i in pair})
    vectors = {i: preds[cands[i].key] for i in involved if cands[i].key in preds}
    if not vectors:
        return out
    ref = next(iter(vectors.values()))
    same = {i for i, v in vectors.items() if v.ids == ref.ids and np.array_equal(v.labels, ref.labels)}
    top = 1 + max(int(max(v.labels.max(), v.preds.max())) for v in vectors.values())
    datas = {i: metric_data(vectors[i], max(n_labels, top)) for i in same}
    if any(metric.metric.not_applicable(d) for d in datas.values()):
        return out
    order = sorted(same)
    boot: dict[int, np.ndarray] = {}
    if not uses_mcnemar(metric) and order:
        matrix = shared.resampled(metric, [cands[i].key for i in order], [datas[i] for i in order])
        boot = dict(zip(order, matrix, strict=True))
    # The stored main metric is the observed value (computed from these predictions when the run was
    # stored), as in ranking: recomputing it (sklearn, ~20 ms a call) was 70% of the pick phase.
    observed = {i: cands[i].value for i in same}
    for lead, j in todo:
        if lead not in same or j not in same:
            continue
        a, b = vectors[lead], vectors[j]
        if uses_mcnemar(metric):
            p = mcnemar(a.preds == a.labels, b.preds == b.labels).p_value
        else:
            p = bootstrap_p(boot[j] - boot[lead], observed[j] - observed[lead], len(a.labels))
        out[(lead, j)] = p
        cache[_cache_key(cands[lead], cands[j], metric.id, n_labels, cfg)] = p
    return out


def _cache_key(a: PickCandidate, b: PickCandidate, metric: str, n_labels: int, cfg: RankingConfig) -> str:
    """A p-value is a function of the two runs' predictions: a run re-run under its key (a new finished_at)
    is another pair."""
    return f"{a.key}|{a.finished_at}|{b.key}|{b.finished_at}|{metric}|{n_labels}|{cfg.n_boot}|{cfg.seed}"


def form_data(
    board: Board,
    task: str,
    cands: Sequence[PickCandidate],
    hardware: Sequence[str],
    leaders: Sequence[int],
    tests: Mapping[int, Sequence[int]],
    pvals: Mapping[tuple[int, int], float],
    cfg: RankingConfig,
) -> dict[str, Any]:
    """The JSON the form's script reads (compact: one array per candidate); `hardware`: the timed
    hardware ids, most timed runs first."""
    hw_index = {hw: str(i) for i, hw in enumerate(hardware)}
    return {
        "metric": board.main_metric(task),
        "higherIsBetter": board.sign(task) > 0,
        "alpha": cfg.alpha,
        "hardware": hardware,  # most timed runs first: the default, as harness pick's
        "candidates": [
            [
                shown(c.model),  # as the page prints names (the protocol select's values too)
                shown(c.protocol),
                c.value,
                c.params,
                {hw_index[hw]: [t[0], t[1], t[2]] for hw, t in c.timings.items() if hw in hw_index},
            ]
            for c in cands
        ],
        # leader index -> [[candidate index, p-value], ...] for every pair tested (full precision: the
        # form compares p >= alpha exactly as harness pick does)
        "tests": {
            str(lead): [[j, pvals[(lead, j)]] for j in tests[lead] if (lead, j) in pvals]
            for lead in leaders
            if lead in tests
        },
        "maxTests": MAX_TESTS,
        "cache_keys": [
            _cache_key(cands[lead], cands[j], board.main_metric(task), len(board.task(task).labels), cfg)
            for lead, others in tests.items()
            for j in others
        ],
    }


def iter_forms(
    board: Board,
    reader: Any,
    cfg: RankingConfig,
    cache: dict[str, float],
    metrics: MetricRegistry | None = None,
    shared: SharedResamples | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(task, its form data), task by task (its page can render while the next form is made); loads the
    predictions only of pairs not in `cache` (which is extended), all at once before the first form.
    `shared`: predictions and resampled metrics the rankings computed (same n_boot and seed)."""
    registry = metrics or MetricRegistry()
    shared = shared or SharedResamples(reader, cfg.n_boot, cfg.seed)
    plans = {}
    for task in board.task_meta:
        cands, hardware = candidates(board, task)
        leaders = possible_leaders(cands, hardware)
        plans[task] = (cands, hardware, leaders, tie_tests(cands, leaders, board.sign(task) > 0))
    needed = {
        key
        for task, (cands, _, _, tests) in plans.items()
        for lead, others in tests.items()
        for j in others
        if _cache_key(cands[lead], cands[j], board.main_metric(task), len(board.task(task).labels), cfg)
        not in cache
        for key in (cands[lead].key, cands[j].key)
    }
    preds = shared.predictions(needed) if needed else {}
    for task, (cands, hardware, leaders, tests) in plans.items():
        metric, n_labels = task_main_metric(board, task, registry), len(board.task(task).labels)
        pvals = p_values(cands, tests, preds, metric, n_labels, cfg, cache, shared)
        yield task, form_data(board, task, cands, hardware, leaders, tests, pvals, cfg)
