"""The downloads next to the pages: every stored run as CSV and as JSON (the same flat rows).

Numbers are rounded (metrics to 6 decimals, timings to 4) to keep the files small enough to publish
(GitHub refuses files over 100 MB); the database keeps full precision. Per-class scores and
per-example predictions stay in the database, which any SQLite tool opens.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from harness.metrics.stats import Placement
from harness.sitegen.ranking import Rankings
from harness.store.rows import RunRow, StoreSnapshot

RUN_FIELDS = (
    "key", "suite", "suite_path", "model", "task", "task_version", "data_fingerprint", "protocol", "seed",
    "status", "error", "started_at", "finished_at", "duration_s", "harness_version", "git_hash",
)  # fmt: skip
TIMING_FIELDS = (
    "hardware", "device", "batch_size", "p50_ms", "p95_ms", "p99_ms", "items_per_s", "peak_mem_mb", "params",
    "n_timed", "contended",
)  # fmt: skip
def metric_ids(snapshot: StoreSnapshot) -> tuple[str, ...]:
    """Every single-number metric the stored tasks declare, in declaration order (first task first)."""
    ids = dict.fromkeys(m.id for t in sorted(snapshot.tasks.values(), key=lambda t: t.name) for m in t.scalar_metrics)
    return tuple(ids)


def columns(metrics: Sequence[str]) -> tuple[str, ...]:
    return (
        *RUN_FIELDS,
        *(f"{m}{suffix}" for m in metrics for suffix in ("", "_ci_low", "_ci_high")),
        *TIMING_FIELDS,
    )

RANK_COLUMNS = ("task", "protocol", "model", "rank", "tied_with", "p_value", "tested")
AGGREGATE_COLUMNS = (
    "group",
    "protocol",
    "model",
    "score",
    "n_tasks",
    "n_tasks_total",
    "tasks_at_rank_1",
    "mean_rank",
    "rank",
    "tied_with",
    "p_value",
    "tested",
)
_NO_TIMING = (None,) * len(TIMING_FIELDS)


def _round(v: float | None, digits: int) -> float | None:
    return None if v is None or not math.isfinite(v) else round(v, digits)


def _run_row(run: RunRow, metrics: Sequence[str]) -> list[Any]:
    row: list[Any] = [
        run.key, run.suite, run.suite_path, run.model, run.task, run.task_version, run.data_fingerprint,
        run.protocol, run.seed, run.status, run.error, run.started_at, run.finished_at, _round(run.duration_s, 3),
        run.harness_version, run.git_hash,
    ]  # fmt: skip
    for name in metrics:
        m = run.metrics.get(name)
        row += (_round(m.value, 6), _round(m.ci_low, 6), _round(m.ci_high, 6)) if m else (None, None, None)
    t = run.timing
    row += (
        (
            t.hardware,
            t.device,
            t.batch_size,
            _round(t.p50_ms, 4),
            _round(t.p95_ms, 4),
            _round(t.p99_ms, 4),
            _round(t.items_per_s, 2),
            _round(t.peak_mem_mb, 2),
            t.params,
            t.n_timed,
            t.contended,
        )  # fmt: skip
        if t
        else _NO_TIMING
    )
    return row


def run_rows(snapshot: StoreSnapshot) -> list[list[Any]]:
    """One flat row per stored run (every status, every task version), in columns(metric_ids(...)) order;
    a metric a run's task does not declare is empty."""
    metrics = metric_ids(snapshot)
    return [_run_row(run, metrics) for run in snapshot.runs]


def results_csv(snapshot: StoreSnapshot, rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns(metric_ids(snapshot)))
    writer.writerows(rows)
    return buf.getvalue()


def _placement(p: Placement | None) -> list[Any]:
    if p is None:
        return [None, None, None, False]
    return [p.rank, p.tied_with, _round(p.p_value, 6), p.tested]


def results_json(snapshot: StoreSnapshot, rows: Sequence[Sequence[Any]], rankings: Rankings) -> str:
    doc = {
        "format": "harness-results",
        "version": 1,
        "models": [asdict(m) for m in sorted(snapshot.models.values(), key=lambda m: m.name)],
        "tasks": [asdict(t) for t in sorted(snapshot.tasks.values(), key=lambda t: (t.name, t.version, t.fingerprint))],
        "hardware": [asdict(h) for h in sorted(snapshot.hardware.values(), key=lambda h: h.fingerprint)],
        "runs": {"columns": list(columns(metric_ids(snapshot))), "rows": rows},
        "ranks": {
            "columns": list(RANK_COLUMNS),
            "rows": [
                [task, protocol, model, *_placement(p)]
                for (task, protocol), placements in sorted(rankings.per_task.items())
                for model, p in placements.items()
            ],
        },
        "aggregate_ranks": {
            "columns": list(AGGREGATE_COLUMNS),
            "rows": [
                [
                    group,
                    protocol,
                    r.model,
                    _round(r.score, 6),
                    r.n_tasks,
                    r.n_tasks_total,
                    r.wins,
                    _round(r.mean_rank, 4),
                    *_placement(r.placement),
                ]
                for (group, protocol), agg in sorted(rankings.aggregate.items())
                for r in agg
            ],
        },
    }
    return json.dumps(doc, separators=(",", ":"), allow_nan=False)
