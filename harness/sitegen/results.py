"""Stored runs -> one result per (task, protocol, model), the unit every page shows.

A task shows only runs on its current data (the version and data fingerprint of its most recently
finished done run); runs on other data stay in the downloads. Several seeds of one result are averaged; the spread
shown is then the min-max over seeds instead of the stored bootstrap CI.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from statistics import fmean
from typing import Literal, NamedTuple

from harness.metrics import MetricInfo
from harness.metrics.registry import stored_task_metrics
from harness.records import MetricValue
from harness.store.rows import (
    HardwareMeta,
    ModelMeta,
    RunRow,
    StoreSnapshot,
    TaskMeta,
    Timing,
)

Spread = Literal["ci95", "seeds", "none"]
STATUS_ORDER = {"done": 0, "not_applicable": 1, "failed": 2}


class Result(NamedTuple):
    task: str
    protocol: str
    model: str
    status: str  # done | not_applicable | failed
    reason: str | None  # why not applicable / why it failed
    runs: tuple[RunRow, ...]  # the done runs (one per seed), or the latest unfinished attempt
    metrics: Mapping[str, MetricValue]  # averaged over seeds
    spread: Spread
    # Stored rather than derived: the pages read them millions of times at 150,000 results.
    representative: RunRow  # runs[0], the lowest seed: its predictions feed the paired tests
    timing: Timing | None  # the representative's timing: the latency columns

    @classmethod
    def of(
        cls,
        key: tuple[str, str, str],
        status: str,
        reason: str | None,
        runs: tuple[RunRow, ...],
        metrics: Mapping[str, MetricValue],
        spread: Spread,
    ) -> Result:
        """The result of (task, protocol, model) `key` from these runs, lowest seed first."""
        first = runs[0]
        return cls(*key, status, reason, runs, metrics, spread, first, first.timing)

    @property
    def n_seeds(self) -> int:
        return len(self.runs) if self.status == "done" else 0

    def metric(self, name: str) -> MetricValue | None:
        return self.metrics.get(name)

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the protocol recorded about the reliability of the done runs (e.g. a probe that did not
        converge), each warning once."""
        if self.status != "done":
            return ()
        if len(self.runs) == 1:
            return self.representative.warnings
        return tuple(dict.fromkeys(w for run in self.runs for w in run.warnings))


@dataclass(frozen=True, slots=True)
class TaskGroup:
    """Tasks whose scores are comparable enough to average: one modality, or a group a suite declared."""

    name: str
    kind: str  # "modality" | "suite"
    tasks: tuple[str, ...]

    @property
    def title(self) -> str:
        return f"{self.name} tasks" if self.kind == "modality" else self.name


@dataclass(frozen=True)
class Board:
    """Everything the pages are made of, already grouped."""

    tasks: tuple[TaskMeta, ...]
    models: tuple[ModelMeta, ...]
    protocols: tuple[str, ...]
    results: Mapping[tuple[str, str, str], Result]  # (task, protocol, model)
    by_task_protocol: Mapping[tuple[str, str], tuple[Result, ...]]  # best main metric first
    by_model: Mapping[str, tuple[Result, ...]]
    superseded_runs: Mapping[str, int]  # task -> runs on older task versions / data, not shown
    hardware: Mapping[str, HardwareMeta]
    snapshot: StoreSnapshot
    task_meta: Mapping[str, TaskMeta]
    model_meta: Mapping[str, ModelMeta]
    groups: tuple[TaskGroup, ...] = ()

    def task(self, name: str) -> TaskMeta:
        return self.task_meta[name]

    def main_metric(self, task: str) -> str:
        """The id of the task's declared main metric (stored with the task; never a silent fallback)."""
        return self.task_meta[task].main_metric

    def main_info(self, task: str) -> MetricInfo:
        meta = self.task_meta[task]
        return meta.metric_info(meta.main_metric)

    def sign(self, task: str) -> float:
        """+1 when a higher main metric is better on this task, -1 when lower is."""
        return 1.0 if self.main_info(task).higher_is_better else -1.0


def task_groups(tasks: Sequence[TaskMeta], declared: Mapping[str, Sequence[str]]) -> tuple[TaskGroup, ...]:
    """Suite-declared groups (only their tasks with results), then one group per task modality."""
    names = {t.name for t in tasks}
    out = [
        TaskGroup(name, "suite", tuple(sorted(set(members) & names)))
        for name, members in sorted(declared.items())
        if set(members) & names
    ]
    by_modality: dict[str, list[str]] = defaultdict(list)
    for t in tasks:
        by_modality[t.modality or "unknown"].append(t.name)
    taken = {g.name for g in out}
    for modality, members in sorted(by_modality.items()):
        name = modality if modality not in taken else f"{modality} (modality)"
        out.append(TaskGroup(name, "modality", tuple(sorted(members))))
    return tuple(out)


def build_board(snapshot: StoreSnapshot) -> Board:
    current = _current_task_data(snapshot.runs)
    grouped: dict[tuple[str, str, str], list[RunRow]] = {}
    superseded: dict[str, int] = defaultdict(int)
    key: tuple[str, str, str] | None = None
    group: list[RunRow] = []
    for run in snapshot.runs:  # ordered by task, protocol, model, seed (StoreReader), so groups are too
        version, fingerprint = current[run.task]
        if run.task_version != version or run.data_fingerprint != fingerprint:
            superseded[run.task] += 1
            continue
        if key is None or run.model != key[2] or run.protocol != key[1] or run.task != key[0]:
            key = (run.task, run.protocol, run.model)
            group = grouped.setdefault(key, [])
        group.append(run)

    tasks = tuple(_task_meta(snapshot, name, *current[name]) for name in sorted(current))
    metric_of = {t.name: t.metric_info(t.main_metric) for t in tasks}
    results: dict[tuple[str, str, str], Result] = {}
    by_tp: dict[tuple[str, str], list[Result]] = {}
    by_model: dict[str, list[Result]] = {}
    tp: tuple[str, str] | None = None
    in_tp: list[Result] = []
    for key, runs in grouped.items():
        task, protocol, model = key
        first = runs[0]
        if len(runs) == 1 and first.status == "done":  # the common case, kept cheap for large stores
            result = Result.of(key, "done", None, (first,), first.metrics, "ci95")
        else:
            result = _result(key, runs)
        results[key] = result
        if tp is None or protocol != tp[1] or task != tp[0]:
            tp = (task, protocol)
            in_tp = by_tp.setdefault(tp, [])
        in_tp.append(result)
        in_model = by_model.get(model)
        if in_model is None:
            by_model[model] = [result]
        else:
            in_model.append(result)
    ordered_tp = {key: _by_quality(rs, metric_of[key[0]]) for key, rs in by_tp.items()}
    ordered_model = {m: tuple(rs) for m, rs in by_model.items()}  # already in (task, protocol) order

    model_names = sorted(by_model)
    models = tuple(snapshot.models.get(name) or _unknown_model(name) for name in model_names)
    protocols = tuple(sorted({p for _, p in by_tp}))
    return Board(
        tasks=tasks,
        models=models,
        protocols=protocols,
        results=results,
        by_task_protocol=ordered_tp,
        by_model=ordered_model,
        superseded_runs=dict(superseded),
        hardware=snapshot.hardware,
        snapshot=snapshot,
        task_meta={t.name: t for t in tasks},
        model_meta={m.name: m for m in models},
        groups=task_groups(tasks, snapshot.task_groups),
    )


def _current_task_data(runs: Sequence[RunRow]) -> dict[str, tuple[str, str]]:
    """task -> (version, data fingerprint) of its latest done run (latest run of any status if none is done)."""
    latest: dict[str, tuple[bool, str, RunRow]] = {}
    for run in runs:
        done = run.status == "done"
        seen = latest.get(run.task)
        if seen is None or (done, run.finished_at) > seen[:2]:
            latest[run.task] = (done, run.finished_at, run)
    return {task: (run.task_version, run.data_fingerprint) for task, (_, _, run) in latest.items()}


def _result(key: tuple[str, str, str], runs: list[RunRow]) -> Result:
    done = sorted((r for r in runs if r.status == "done"), key=lambda r: (r.seed, r.finished_at))
    if not done:
        latest = max(runs, key=lambda r: (r.finished_at, -STATUS_ORDER.get(r.status, 9)))
        return Result.of(key, latest.status, latest.error, (latest,), {}, "none")
    # Re-runs of one seed (e.g. different suites) keep the latest; seeds are averaged.
    by_seed: dict[int, RunRow] = {}
    for run in done:
        by_seed[run.seed] = run
    seeds = tuple(by_seed[s] for s in sorted(by_seed))
    if len(seeds) == 1:
        return Result.of(key, "done", None, seeds, seeds[0].metrics, "ci95")
    metrics: dict[str, MetricValue] = {}
    for name in dict.fromkeys(n for r in seeds for n in r.metrics):
        values = [m.value for r in seeds if (m := r.metric(name)) is not None]
        if values:
            metrics[name] = MetricValue(name, fmean(values), min(values), max(values))
    return Result.of(key, "done", None, seeds, metrics, "seeds")


def _by_quality(results: list[Result], metric: MetricInfo) -> tuple[Result, ...]:
    """Results of one (task, protocol), best first: done before not applicable before failed, then by the
    main metric (missing / NaN last), then by model name."""
    mid, sort_key, status_order = metric.id, metric.sort_key, STATUS_ORDER
    keyed = []
    for r in results:
        m = r.metrics.get(mid)
        keyed.append((status_order.get(r.status, 9), sort_key(None if m is None else m.value), r.model, r))
    keyed.sort(key=itemgetter(0, 1, 2))
    return tuple(k[3] for k in keyed)


def _task_meta(snapshot: StoreSnapshot, name: str, version: str, fingerprint: str) -> TaskMeta:
    meta = snapshot.tasks.get((name, version, fingerprint))
    if meta is not None:
        return meta
    # Stores from before per-data task rows kept only the newest data's row of a (name, version).
    older = [t for (n, v, _), t in snapshot.tasks.items() if (n, v) == (name, version)]
    if older:
        return older[-1]
    specs, main = stored_task_metrics(None)  # no tasks row: the default metrics
    return TaskMeta(
        name, version, "", (), None, None, None, fingerprint, "", "", "", "", "", main,
        metrics=tuple(MetricInfo.from_description(d) for d in specs), metric_specs=specs,
    )  # fmt: skip


def _unknown_model(name: str) -> ModelMeta:
    # Runs that failed before the model loaded leave no models row.
    return ModelMeta(name, "", "", "", None, None, "", "", None)
