"""Tie-group ranks for the site, from stored per-example predictions, with bounded work.

Per task and protocol: the procedure of `stats.rank_with_ties` (paired bootstrap for F1, McNemar for
accuracy; computed by `ties` with shared resamples, same outcome) over at most `max_tested` models: the
best by the task's main metric, stopping at the first whose 95% CI lies wholly below the leader's (it
is already significantly worse). Everyone else is placed by value after them, marked untested.

Per protocol (aggregate): the score is the mean of the task main metrics over all tasks of the
protocol; only models with a result on every task are ranked. The `max_tested_aggregate` best get a
task-stratified paired bootstrap of that mean (every task's test set resampled with the same indices
for both models), grouped the same way.

Multi-seed results are tested on their lowest seed's predictions. Outcomes are cached by the run keys
involved, so a rebuild re-tests only the groups whose inputs changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from statistics import fmean
from typing import Any

import numpy as np

from harness.sitegen.load import PredictionVector, StoreReader
from harness.sitegen.results import Board, Result
from harness.sitegen.ties import Placement, bootstrap_metric, bootstrap_p, greedy_groups, task_tie_groups
from harness.stats import ConfusionMetric


@dataclass(frozen=True)
class RankingConfig:
    alpha: float = 0.05
    n_boot: int = 1000
    max_tested: int = 20
    max_tested_aggregate: int = 10
    seed: int = 0


@dataclass(frozen=True, slots=True)
class AggregateRow:
    model: str
    score: float | None  # mean main metric over the tasks with a done result; None when there are none
    n_tasks: int
    n_tasks_total: int
    wins: int  # tasks where the model shares rank 1
    placement: Placement | None  # None: incomplete coverage, not ranked


@dataclass(frozen=True)
class Rankings:
    per_task: Mapping[tuple[str, str], Mapping[str, Placement]]  # (task, protocol) -> model -> placement
    aggregate: Mapping[str, tuple[AggregateRow, ...]]  # protocol -> rows, ranked first
    cache: Mapping[str, Any]  # outcomes by input hash, to reuse on the next build
    groups_computed: int  # groups computed this build (not served from the cache)


@dataclass(frozen=True)
class _Plan:
    cache_key: str
    keys: tuple[str, ...]  # run keys whose predictions the computation needs


def compute_rankings(
    board: Board, reader: StoreReader, cfg: RankingConfig, cache: Mapping[str, Any] | None = None
) -> Rankings:
    cache = dict(cache or {})
    new_cache: dict[str, Any] = {}
    per_task_plans: dict[tuple[str, str], tuple[_Plan, list[Result]]] = {}
    for (task, protocol), results in board.by_task_protocol.items():
        candidates = _task_candidates(results, board.main_metric(task), cfg.max_tested)
        keys = tuple(r.representative.key for r in candidates)
        plan = _Plan(
            _hash("task", task, protocol, board.main_metric(task), asdict(cfg), _run_ids(candidates)), keys
        )
        per_task_plans[(task, protocol)] = (plan, candidates)

    agg_plans: dict[str, tuple[_Plan, list[str], list[str]]] = {}
    scores = _aggregate_scores(board)
    for protocol in board.protocols:
        tasks = _protocol_tasks(board, protocol)
        complete = sorted(
            (m for m, (_, n) in scores[protocol].items() if n == len(tasks)),
            key=lambda m: (-scores[protocol][m][0], m),
        )
        top = complete[: cfg.max_tested_aggregate]
        runs = [board.results[(t, protocol, m)] for m in top for t in tasks]
        keys = tuple(r.representative.key for r in runs)
        metrics = [board.main_metric(t) for t in tasks]
        plan = _Plan(_hash("aggregate", protocol, tasks, metrics, asdict(cfg), _run_ids(runs)), keys)
        agg_plans[protocol] = (plan, top, tasks)

    plans = [plan for plan, _ in per_task_plans.values()] + [plan for plan, _, _ in agg_plans.values()]
    needed = {k for plan in plans if _cached(cache, plan.cache_key) is None for k in plan.keys}
    preds = reader.predictions(needed) if needed else {}
    groups_computed = 0

    per_task: dict[tuple[str, str], dict[str, Placement]] = {}
    for (task, protocol), (plan, candidates) in per_task_plans.items():
        tested = _cached(cache, plan.cache_key)
        if tested is None:
            tested = _rank_task(candidates, preds, board.main_metric(task), len(board.task(task).labels), cfg)
            groups_computed += 1
        new_cache[plan.cache_key] = _placements_to_json(tested)
        per_task[(task, protocol)] = _place_rest(
            tested, [r.model for r in board.by_task_protocol[(task, protocol)] if r.status == "done"]
        )

    aggregate: dict[str, tuple[AggregateRow, ...]] = {}
    for protocol, (plan, top, tasks) in agg_plans.items():
        tested = _cached(cache, plan.cache_key)
        if tested is None:
            tested = _rank_aggregate(board, protocol, top, tasks, preds, cfg)
            groups_computed += 1
        new_cache[plan.cache_key] = _placements_to_json(tested)
        unfinished = {m for (_, p, m) in board.results if p == protocol} - set(scores[protocol])
        aggregate[protocol] = _aggregate_rows(
            protocol, scores[protocol], len(tasks), tested, per_task, unfinished
        )
    return Rankings(per_task, aggregate, new_cache, groups_computed)


# ---- per task ------------------------------------------------------------------------------------------


def _task_candidates(results: Sequence[Result], metric: str, limit: int) -> list[Result]:
    done = [r for r in results if r.status == "done" and r.metric(metric) is not None]
    if not done:
        return []
    leader = done[0].metric(metric)
    assert leader is not None
    floor = leader.ci_low if leader.ci_low is not None else float("-inf")
    out = []
    for r in done[:limit]:
        m = r.metric(metric)
        assert m is not None
        reach = m.ci_high if m.ci_high is not None else m.value
        if reach < floor:
            break  # sorted by value, so later models reach even less far in practice; stop here
        out.append(r)
    return out


def _rank_task(
    candidates: Sequence[Result],
    preds: Mapping[str, PredictionVector],
    metric: str,
    n_labels: int,
    cfg: RankingConfig,
) -> dict[str, Placement]:
    aligned = _aligned(candidates, preds)
    if len(aligned) < 2:
        return {name: Placement(1, None, None, False) for name, _ in aligned[:1]}
    # The labels table can be out of step with the predictions; never index past what was predicted.
    top = 1 + max(int(max(v.labels.max(), v.preds.max())) for _, v in aligned)
    stored = {r.model: r.representative.metric(metric) for r in candidates}
    observed = [m.value if (m := stored[name]) else float("nan") for name, _ in aligned]
    return task_tie_groups(
        [name for name, _ in aligned],
        aligned[0][1].labels,
        [v.preds for _, v in aligned],
        ConfusionMetric(metric, max(n_labels, top)),
        alpha=cfg.alpha,
        n_boot=cfg.n_boot,
        seed=cfg.seed,
        # The stored values are this metric on these predictions with the task's label count; when the
        # label count had to grow they are not, so recompute.
        observed=observed if top <= n_labels and all(v == v for v in observed) else None,
    )


def _aligned(
    candidates: Sequence[Result], preds: Mapping[str, PredictionVector]
) -> list[tuple[str, PredictionVector]]:
    """Candidates whose predictions cover the same examples with the same labels as the first one's."""
    out: list[tuple[str, PredictionVector]] = []
    for r in candidates:
        vec = preds.get(r.representative.key)
        if vec is None:
            continue
        if out and (
            vec.example_ids != out[0][1].example_ids or not np.array_equal(vec.labels, out[0][1].labels)
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


def _protocol_tasks(board: Board, protocol: str) -> list[str]:
    return sorted(
        {
            t
            for (t, p), rs in board.by_task_protocol.items()
            if p == protocol and any(r.status == "done" for r in rs)
        }
    )


def _aggregate_scores(board: Board) -> dict[str, dict[str, tuple[float, int]]]:
    """protocol -> model -> (mean main metric over its done tasks, number of those tasks)."""
    values: dict[str, dict[str, list[float]]] = {p: {} for p in board.protocols}
    for (task, protocol, model), result in board.results.items():
        m = result.metric(board.main_metric(task))
        if result.status == "done" and m is not None:
            values[protocol].setdefault(model, []).append(m.value)
    return {p: {m: (fmean(v), len(v)) for m, v in by_model.items()} for p, by_model in values.items()}


def _rank_aggregate(
    board: Board,
    protocol: str,
    models: Sequence[str],
    tasks: Sequence[str],
    preds: Mapping[str, PredictionVector],
    cfg: RankingConfig,
) -> dict[str, Placement]:
    per_task_vectors: list[dict[str, PredictionVector]] = []
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
    for t_index, (task, vectors) in enumerate(zip(tasks, per_task_vectors, strict=True)):
        declared = len(board.task(task).labels)
        n_labels = max(declared, 1 + max(int(max(v.labels.max(), v.preds.max())) for v in vectors.values()))
        metric = ConfusionMetric(board.main_metric(task), n_labels)
        y = vectors[names[0]].labels
        for i, name in enumerate(names):
            stored = board.results[(task, protocol, name)].representative.metric(metric.name)
            use_stored = stored is not None and n_labels == declared  # same sklearn call, same label count
            observed[i] += stored.value if use_stored and stored else metric(y, vectors[name].preds)
        boot += bootstrap_metric(y, [vectors[n].preds for n in names], metric, cfg.n_boot, cfg.seed + t_index)
    observed /= len(tasks)
    boot /= len(tasks)

    return greedy_groups(
        names,
        list(observed),
        lambda a, b: bootstrap_p(boot[a], boot[b], observed[b] - observed[a]),
        cfg.alpha,
    )


def _aggregate_rows(
    protocol: str,
    scores: Mapping[str, tuple[float, int]],
    n_tasks: int,
    tested: Mapping[str, Placement],
    per_task: Mapping[tuple[str, str], Mapping[str, Placement]],
    unfinished: set[str],
) -> tuple[AggregateRow, ...]:
    """Ranked models first, then models missing some tasks, then models with no done result (n/a, failed)."""
    wins: dict[str, int] = {}
    for (_, p), placements in per_task.items():
        if p == protocol:
            for model, placement in placements.items():
                wins[model] = wins.get(model, 0) + (placement.rank == 1)
    complete = sorted((m for m, (_, n) in scores.items() if n == n_tasks), key=lambda m: (-scores[m][0], m))
    placements = _place_rest(tested, complete)
    rows = [
        AggregateRow(m, scores[m][0], n_tasks, n_tasks, wins.get(m, 0), placements[m]) for m in placements
    ]
    incomplete = sorted(
        (m for m, (_, n) in scores.items() if n < n_tasks), key=lambda m: (-scores[m][1], -scores[m][0], m)
    )
    rows += [AggregateRow(m, scores[m][0], scores[m][1], n_tasks, wins.get(m, 0), None) for m in incomplete]
    rows += [AggregateRow(m, None, 0, n_tasks, 0, None) for m in sorted(unfinished)]
    return tuple(rows)


# ---- cache ---------------------------------------------------------------------------------------------


def _run_ids(results: Sequence[Result]) -> list[tuple[str, str, str]]:
    return [(r.model, r.representative.key, r.representative.finished_at) for r in results]


def _hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


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
