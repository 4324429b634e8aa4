"""Tie-group ranks for the site, from stored per-example predictions, with bounded work.

Per task and protocol: harness.metrics.stats.tie_groups on the task's main metric (any registered
metric: McNemar for accuracy, paired bootstrap on shared resamples otherwise; Holm-corrected per group
round unless RankingConfig.holm is off) over at most `max_tested` models: the best by the main metric,
stopping at the first whose 95% CI lies wholly on the worse side of the leader's (it is already
significantly worse). Everyone else is placed by value after them, marked untested. A main metric
defined by a plugin the site was built without cannot be recomputed: its models are placed by value.

Per group of comparable tasks and protocol (aggregate; groups are task modalities and groups a suite
declared): a model takes part when it has a done result on some task of the group, so an image model
never "misses" a text task. Its score is the mean of its task main metrics; only models with a result
on every task of the group are ranked. The `max_tested_aggregate` best get a task-stratified paired
bootstrap of that mean (every task's test set resampled with the same indices for both models),
grouped the same way. Each also gets its mean rank over the group's tasks among the complete models
(Borda count; equal values share the average rank).

Multi-seed results are tested on their lowest seed's predictions. Outcomes are cached by the run keys
involved, so a rebuild re-tests only the groups whose inputs changed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import islice
from statistics import fmean
from typing import Any

import numpy as np

from harness.digests import json_digest
from harness.metrics import MetricData, MetricRegistry, TaskMetric
from harness.metrics.evaluate import check_plugin_reproducible
from harness.metrics.registry import metric_from_description
from harness.metrics.resample import resampled_values
from harness.metrics.stats import (
    HOLM_DEFAULT,
    Placement,
    bootstrap_p,
    greedy_groups,
    tie_groups,
    uses_mcnemar,
)
from harness.sitegen.results import Board, Result
from harness.store import StoreReader
from harness.store.rows import ExamplePredictions


@dataclass(frozen=True)
class RankingConfig:
    alpha: float = 0.05
    n_boot: int = 1000
    max_tested: int = 20
    max_tested_aggregate: int = 10
    seed: int = 0
    holm: bool = HOLM_DEFAULT  # Holm-correct each tie-group round's leader-vs-model tests


@dataclass(frozen=True, slots=True)
class AggregateRow:
    model: str
    score: float | None  # mean main metric over the tasks with a done result; None when there are none
    n_tasks: int
    n_tasks_total: int
    wins: int  # tasks where the model shares rank 1
    placement: Placement | None  # None: incomplete coverage, not ranked
    mean_rank: float | None = None  # Borda: mean per-task rank among the complete models


@dataclass(frozen=True)
class Rankings:
    per_task: Mapping[tuple[str, str], Mapping[str, Placement]]  # (task, protocol) -> model -> placement
    aggregate: Mapping[tuple[str, str], tuple[AggregateRow, ...]]  # (group, protocol) -> rows, ranked first
    cache: Mapping[str, Any]  # outcomes by input hash, to reuse on the next build
    groups_computed: int  # groups computed this build (not served from the cache)


@dataclass(frozen=True)
class _Plan:
    cache_key: str
    keys: tuple[str, ...]  # run keys whose predictions the computation needs


class SharedResamples:
    """What the per-task rankings and the pick forms both compute from stored predictions, done once per
    build: the runs' predictions (loaded in bulk, each run once) and each run's resampled metric (n_boot
    resamples drawn with `seed`). The resamples depend only on the number of test examples, so a run's
    vector is the same whichever runs it is compared with."""

    def __init__(self, reader: StoreReader, n_boot: int, seed: int) -> None:
        self._reader, self.n_boot, self.seed = reader, n_boot, seed
        self._loaded: dict[str, ExamplePredictions] = {}
        self._asked: set[str] = set()
        self._vectors: dict[tuple[str, str, int], np.ndarray] = {}

    def predictions(self, keys: Iterable[str]) -> dict[str, ExamplePredictions]:
        """The stored predictions of these runs (runs without any are left out)."""
        wanted = set(keys)
        missing = wanted - self._asked
        if missing:
            self._loaded.update(self._reader.predictions(missing))
            self._asked |= missing
        return {k: self._loaded[k] for k in wanted if k in self._loaded}

    def resampled(self, metric: TaskMetric, keys: Sequence[str], datas: Sequence[MetricData]) -> np.ndarray:
        """(len(datas), n_boot): resampled_values of `metric` on each run's data (key: its run key), computed
        for the runs not seen before (all datas hold the same examples)."""
        ids = [(key, metric.key(), d.n_labels) for key, d in zip(keys, datas, strict=True)]
        todo = [j for j, i in enumerate(ids) if i not in self._vectors]
        if todo:
            fresh = resampled_values([metric], [datas[j] for j in todo], self.n_boot, self.seed)[metric.id]
            self._vectors.update(zip((ids[j] for j in todo), fresh, strict=True))
        return np.stack([self._vectors[i] for i in ids])


def task_main_metric(board: Board, task: str, registry: MetricRegistry) -> TaskMetric | None:
    """The computable main metric of a task (None: defined by a plugin that is not loaded)."""
    meta = board.task(task)
    spec = next((d for d in meta.metric_specs if d.get("id") == meta.main_metric), None)
    return metric_from_description(spec, registry) if spec is not None else None


def compute_rankings(
    board: Board,
    reader: StoreReader,
    cfg: RankingConfig,
    cache: Mapping[str, Any] | None = None,
    metrics: MetricRegistry | None = None,
    shared: SharedResamples | None = None,
) -> Rankings:
    registry = metrics or MetricRegistry()
    shared = shared or SharedResamples(reader, cfg.n_boot, cfg.seed)
    cache = dict(cache or {})
    new_cache: dict[str, Any] = {}
    per_task_plans: dict[tuple[str, str], tuple[_Plan, list[Result]]] = {}
    for (task, protocol), results in board.by_task_protocol.items():
        candidates = _task_candidates(results, board, task, cfg.max_tested)
        keys = tuple(r.representative.key for r in candidates)
        plan = _Plan(
            _hash("task", task, protocol, _metric_key(board, task), asdict(cfg), _run_ids(candidates)), keys
        )
        per_task_plans[(task, protocol)] = (plan, candidates)

    agg_plans: dict[tuple[str, str], tuple[_Plan, list[str], list[str]]] = {}
    scores, shown = _aggregate_scores(board)
    for (group, protocol), tasks in _group_tasks(board).items():
        sc = scores[(group, protocol)]
        complete = sorted((m for m, (_, n) in sc.items() if n == len(tasks)), key=lambda m: (-sc[m][0], m))
        top = complete[: cfg.max_tested_aggregate]
        runs = [board.results[(t, protocol, m)] for m in top for t in tasks]
        keys = tuple(r.representative.key for r in runs)
        main_metrics = [_metric_key(board, t) for t in tasks]
        plan = _Plan(_hash("aggregate", protocol, tasks, main_metrics, asdict(cfg), _run_ids(runs)), keys)
        agg_plans[(group, protocol)] = (plan, top, tasks)

    plans = [plan for plan, _ in per_task_plans.values()] + [plan for plan, _, _ in agg_plans.values()]
    needed = {k for plan in plans if _cached(cache, plan.cache_key) is None for k in plan.keys}
    preds = shared.predictions(needed) if needed else {}
    groups_computed = 0

    per_task: dict[tuple[str, str], dict[str, Placement]] = {}
    for (task, protocol), (plan, candidates) in per_task_plans.items():
        tested = _cached(cache, plan.cache_key)
        if tested is None:
            metric = task_main_metric(board, task, registry)
            tested = _rank_task(candidates, preds, metric, len(board.task(task).labels), cfg, shared)
            groups_computed += 1
        new_cache[plan.cache_key] = _placements_to_json(tested)
        per_task[(task, protocol)] = _place_rest(
            tested, [r.model for r in board.by_task_protocol[(task, protocol)] if r.status == "done"]
        )

    aggregate: dict[tuple[str, str], tuple[AggregateRow, ...]] = {}
    for (group, protocol), (plan, top, tasks) in agg_plans.items():
        tested = _cached(cache, plan.cache_key)
        if tested is None:
            tested = _rank_aggregate(board, protocol, top, tasks, preds, cfg, registry)
            groups_computed += 1
        new_cache[plan.cache_key] = _placements_to_json(tested)
        failed = {
            r.model
            for t in tasks
            for r in board.by_task_protocol.get((t, protocol), ())
            if r.status == "failed"
        } - set(scores[(group, protocol)])
        key = (group, protocol)
        aggregate[key] = _aggregate_rows(board, protocol, tasks, scores[key], shown[key], tested, per_task, failed)
    return Rankings(per_task, aggregate, new_cache, groups_computed)


# ---- per task ------------------------------------------------------------------------------------------


def _metric_key(board: Board, task: str) -> Any:
    meta = board.task(task)
    return next((dict(d) for d in meta.metric_specs if d.get("id") == meta.main_metric), meta.main_metric)


def _task_candidates(results: Sequence[Result], board: Board, task: str, limit: int) -> list[Result]:
    info = board.main_info(task)
    metric = info.id
    done = list(islice((r for r in results if r.status == "done" and r.metric(metric) is not None), limit))
    if not done:
        return []
    leader = done[0].metric(metric)
    assert leader is not None
    sign = 1.0 if info.higher_is_better else -1.0  # compare in "higher is better" units
    edge = leader.ci_low if info.higher_is_better else leader.ci_high
    floor = sign * edge if edge is not None else float("-inf")
    out = []
    for r in done:
        m = r.metric(metric)
        assert m is not None
        far = m.ci_high if info.higher_is_better else m.ci_low
        reach = sign * (far if far is not None else m.value)
        if reach < floor:
            break  # sorted by value, so later models reach even less far in practice; stop here
        out.append(r)
    return out


def metric_data(vec: ExamplePredictions, n_labels: int) -> MetricData:
    scores = vec.scores if vec.scores is not None and vec.scores.shape[1] == n_labels else None
    kind: Any = vec.score_kind if scores is not None else None
    return MetricData.of(vec.labels, vec.preds, n_labels, scores, kind)


def _rank_task(
    candidates: Sequence[Result],
    preds: Mapping[str, ExamplePredictions],
    metric: TaskMetric | None,
    n_labels: int,
    cfg: RankingConfig,
    shared: SharedResamples,
) -> dict[str, Placement]:
    aligned = _aligned(candidates, preds)
    if len(aligned) < 2 or metric is None:
        return {name: Placement(1, None, None, False) for name, _ in aligned[:1]}
    # The labels table can be out of step with the predictions; never index past what was predicted.
    top = 1 + max(int(max(v.labels.max(), v.preds.max())) for _, v in aligned)
    datas = [metric_data(v, max(n_labels, top)) for _, v in aligned]
    if any(metric.metric.not_applicable(d) for d in datas):
        return {name: Placement(1, None, None, False) for name, _ in aligned[:1]}
    check_plugin_reproducible(metric, datas[0])  # a random one would draw the tie groups by chance
    stored = {r.model: r.representative.metric(metric.id) for r in candidates}
    observed = [m.value if (m := stored[name]) else float("nan") for name, _ in aligned]
    keys = {r.model: r.representative.key for r in candidates}
    paired = [keys[name] for name, _ in aligned]
    resampled = None if uses_mcnemar(metric) else shared.resampled(metric, paired, datas)
    return tie_groups(
        [name for name, _ in aligned],
        datas,
        metric,
        alpha=cfg.alpha,
        n_boot=cfg.n_boot,
        seed=cfg.seed,
        # The stored values are this metric on these predictions with the task's label count; when the
        # label count had to grow they are not, so recompute.
        observed=observed if top <= n_labels and all(v == v for v in observed) else None,
        holm_correct=cfg.holm,
        resampled=resampled,
    )


def _aligned(
    candidates: Sequence[Result], preds: Mapping[str, ExamplePredictions]
) -> list[tuple[str, ExamplePredictions]]:
    """Candidates whose predictions cover the same examples with the same labels as the first one's."""
    out: list[tuple[str, ExamplePredictions]] = []
    for r in candidates:
        vec = preds.get(r.representative.key)
        if vec is None:
            continue
        if out and (
            vec.ids != out[0][1].ids or not np.array_equal(vec.labels, out[0][1].labels)
        ):
            continue
        out.append((r.model, vec))
    return out


def _place_rest(tested: Mapping[str, Placement], ordered_models: Sequence[str]) -> dict[str, Placement]:
    """Tested placements first (in rank order), then everyone else by value, one rank each."""
    out = dict(sorted(tested.items(), key=lambda kv: kv[1].rank))
    for model in ordered_models:
        if model not in out:
            out[model] = Placement(len(out) + 1, None, None, False)
    return out


# ---- aggregate -----------------------------------------------------------------------------------------


def _group_tasks(board: Board) -> dict[tuple[str, str], list[str]]:
    """(group, protocol) -> the group's tasks with a done result under the protocol (non-empty only)."""
    done = {(t, p) for (t, p), rs in board.by_task_protocol.items() if any(r.status == "done" for r in rs)}
    out = {}
    for group in board.groups:
        for protocol in board.protocols:
            tasks = [t for t in group.tasks if (t, protocol) in done]
            if tasks:
                out[(group.name, protocol)] = tasks
    return out


Scores = dict[tuple[str, str], dict[str, tuple[float, int]]]


def _aggregate_scores(board: Board) -> tuple[Scores, dict[tuple[str, str], dict[str, float]]]:
    """(group, protocol) -> model -> (mean main metric over its done tasks in the group, in "higher is
    better" units, their number); and the same means in each metric's own direction (as shown)."""
    scores: Scores = {}
    shown = {}
    for (group, protocol), tasks in _group_tasks(board).items():
        values: dict[str, list[float]] = {}
        signed: dict[str, list[float]] = {}
        for task in tasks:
            metric, sign = board.main_metric(task), board.sign(task)
            for r in board.by_task_protocol[(task, protocol)]:
                m = r.metric(metric)
                if r.status == "done" and m is not None:
                    values.setdefault(r.model, []).append(m.value)
                    signed.setdefault(r.model, []).append(sign * m.value)
        scores[(group, protocol)] = {m: (fmean(v), len(v)) for m, v in signed.items()}
        shown[(group, protocol)] = {m: fmean(v) for m, v in values.items()}
    return scores, shown


def _rank_aggregate(
    board: Board,
    protocol: str,
    models: Sequence[str],
    tasks: Sequence[str],
    preds: Mapping[str, ExamplePredictions],
    cfg: RankingConfig,
    registry: MetricRegistry,
) -> dict[str, Placement]:
    per_task_vectors: list[dict[str, ExamplePredictions]] = []
    usable = set(models)
    for task in tasks:
        aligned = dict(_aligned([board.results[(task, protocol, m)] for m in models], preds))
        usable &= set(aligned)
        per_task_vectors.append(aligned)
    names = [m for m in models if m in usable]
    if len(names) < 2:
        return {name: Placement(1, None, None, False) for name in names[:1]}

    observed = np.zeros(len(names))
    boot = np.zeros((len(names), cfg.n_boot))
    n_examples = sum(len(next(iter(vectors.values())).labels) for vectors in per_task_vectors if vectors)
    for t_index, (task, vectors) in enumerate(zip(tasks, per_task_vectors, strict=True)):
        declared = len(board.task(task).labels)
        n_labels = max(declared, 1 + max(int(max(v.labels.max(), v.preds.max())) for v in vectors.values()))
        metric = task_main_metric(board, task, registry)
        datas = [metric_data(vectors[n], n_labels) for n in names]
        if metric is None or any(metric.metric.not_applicable(d) for d in datas):
            return {name: Placement(i + 1, None, None, False) for i, name in enumerate(names)}
        check_plugin_reproducible(metric, datas[0])
        sign = 1.0 if metric.higher_is_better else -1.0
        for i, name in enumerate(names):
            stored = board.results[(task, protocol, name)].representative.metric(metric.id)
            use_stored = stored is not None and n_labels == declared  # same sklearn call, same label count
            observed[i] += sign * (stored.value if use_stored and stored else metric.point(datas[i]))
        boot += sign * resampled_values([metric], datas, cfg.n_boot, cfg.seed + t_index)[metric.id]
    observed /= len(tasks)
    boot /= len(tasks)

    return greedy_groups(
        names,
        list(observed),
        lambda a, b: bootstrap_p(boot[b] - boot[a], observed[b] - observed[a], n_examples),
        cfg.alpha,
        holm_correct=cfg.holm,
    )


def _aggregate_rows(
    board: Board,
    protocol: str,
    tasks: Sequence[str],
    scores: Mapping[str, tuple[float, int]],
    shown: Mapping[str, float],
    tested: Mapping[str, Placement],
    per_task: Mapping[tuple[str, str], Mapping[str, Placement]],
    failed: set[str],
) -> tuple[AggregateRow, ...]:
    """Ranked models first, then models missing some of the group's tasks, then models whose every
    result in the group failed. Scores were summed with the task's sign (higher is better); `shown`:
    the metric's own mean."""
    n_tasks = len(tasks)
    wins = {m: 0 for m in scores}
    for task in tasks:
        for model, placement in per_task.get((task, protocol), {}).items():
            if placement.rank == 1 and model in wins:
                wins[model] += 1
    complete = sorted((m for m, (_, n) in scores.items() if n == n_tasks), key=lambda m: (-scores[m][0], m))
    borda = _mean_ranks(board, protocol, tasks, complete)
    placements = _place_rest(tested, complete)
    rows = [
        AggregateRow(m, shown[m], n_tasks, n_tasks, wins[m], placements[m], borda.get(m)) for m in placements
    ]
    incomplete = sorted(
        (m for m, (_, n) in scores.items() if n < n_tasks), key=lambda m: (-scores[m][1], -scores[m][0], m)
    )
    rows += [AggregateRow(m, shown[m], scores[m][1], n_tasks, wins[m], None) for m in incomplete]
    rows += [AggregateRow(m, None, 0, n_tasks, 0, None) for m in sorted(failed)]
    return tuple(rows)


def _mean_ranks(board: Board, protocol: str, tasks: Sequence[str], models: Sequence[str]) -> dict[str, float]:
    """Borda: each model's rank on each task among `models` (1 = best, equal values share the average
    rank), averaged over the tasks."""
    if not models:
        return {}
    total = np.zeros(len(models))
    for task in tasks:
        metric, sign = board.main_metric(task), board.sign(task)
        values = []
        for model in models:
            m = board.results[(task, protocol, model)].metric(metric)
            values.append(-sign * m.value if m is not None else math.inf)
        total += _average_ranks(np.asarray(values))
    return {m: float(v) / len(tasks) for m, v in zip(models, total, strict=True)}


def _average_ranks(costs: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ascending costs; ties get the mean of the ranks they span."""
    order = np.argsort(costs, kind="stable")
    ranks = np.empty(len(costs))
    sorted_costs = costs[order]
    i = 0
    while i < len(costs):
        j = i
        while j + 1 < len(costs) and sorted_costs[j + 1] == sorted_costs[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


# ---- cache ---------------------------------------------------------------------------------------------


def _run_ids(results: Sequence[Result]) -> list[tuple[str, str, str]]:
    return [(r.model, r.representative.key, r.representative.finished_at) for r in results]


def _hash(*parts: Any) -> str:
    return json_digest(parts, 32)


def _placements_to_json(placements: Mapping[str, Placement]) -> list[list[Any]]:
    return [[m, p.rank, p.tied_with, p.p_value, p.tested] for m, p in placements.items()]


def _cached(cache: Mapping[str, Any], key: str) -> dict[str, Placement] | None:
    """Placements stored under `key`, or None when absent or unreadable (a cache is only a hint)."""
    raw = cache.get(key)
    if raw is None:
        return None
    try:
        return {str(m): Placement(int(rank), tied, p, bool(tested)) for m, rank, tied, p, tested in raw}
    except (TypeError, ValueError):
        return None
