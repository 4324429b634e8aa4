"""The downloads next to the pages: every stored run as CSV (one flat row each) and as JSON."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict
from typing import Any

from harness.sitegen.load import HEADLINE_METRICS, RunRow, StoreSnapshot
from harness.sitegen.ranking import Rankings
from harness.sitegen.ties import Placement

RUN_FIELDS = (
    "key", "suite", "suite_path", "model", "task", "task_version", "data_fingerprint", "protocol", "seed",
    "status", "error", "started_at", "finished_at", "duration_s", "harness_version", "git_hash",
)  # fmt: skip
TIMING_FIELDS = (
    "hardware", "device", "batch_size", "p50_ms", "p95_ms", "p99_ms", "items_per_s", "peak_mem_mb", "params",
)  # fmt: skip
CSV_COLUMNS = (
    *RUN_FIELDS,
    *(f"{m}{suffix}" for m in HEADLINE_METRICS for suffix in ("", "_ci_low", "_ci_high")),
    *TIMING_FIELDS,
)


def _finite(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _flat(run: RunRow) -> dict[str, Any]:
    row: dict[str, Any] = {f: getattr(run, f) for f in RUN_FIELDS}
    for name in HEADLINE_METRICS:
        m = run.metric(name)
        row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"] = (m.value, m.ci_low, m.ci_high) if m else (None,) * 3
    t = run.timing
    row.update({f: getattr(t, f) if t else None for f in TIMING_FIELDS})
    return {k: _finite(v) for k, v in row.items()}


def _placement(p: Placement | None) -> dict[str, Any]:
    if p is None:
        return {"rank": None, "tied_with": None, "p_value": None, "tested": False}
    return {"rank": p.rank, "tied_with": p.tied_with, "p_value": p.p_value, "tested": p.tested}


def results_csv(snapshot: StoreSnapshot) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for run in snapshot.runs:
        writer.writerow(_flat(run))
    return buf.getvalue()


def results_json(snapshot: StoreSnapshot, rankings: Rankings) -> str:
    runs = []
    for run in snapshot.runs:
        item: dict[str, Any] = {f: _finite(getattr(run, f)) for f in RUN_FIELDS}
        item["metrics"] = {
            name: {"value": _finite(m.value), "ci_low": _finite(m.ci_low), "ci_high": _finite(m.ci_high)}
            for name, m in run.metrics.items()
        }
        t = run.timing
        item["timing"] = {f: _finite(getattr(t, f)) for f in TIMING_FIELDS} if t else None
        runs.append(item)
    doc = {
        "format": "harness-results",
        "version": 1,
        "models": [asdict(m) for m in sorted(snapshot.models.values(), key=lambda m: m.name)],
        "tasks": [asdict(t) for t in sorted(snapshot.tasks.values(), key=lambda t: (t.name, t.version))],
        "hardware": [asdict(h) for h in sorted(snapshot.hardware.values(), key=lambda h: h.fingerprint)],
        "runs": runs,
        "ranks": [
            {"task": task, "protocol": protocol, "model": model, **_placement(p)}
            for (task, protocol), placements in sorted(rankings.per_task.items())
            for model, p in placements.items()
        ],
        "aggregate_ranks": [
            {
                "protocol": protocol,
                "model": row.model,
                "score": _finite(row.score),
                "n_tasks": row.n_tasks,
                "n_tasks_total": row.n_tasks_total,
                "tasks_at_rank_1": row.wins,
                **_placement(row.placement),
            }
            for protocol, rows in sorted(rankings.aggregate.items())
            for row in rows
        ],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
