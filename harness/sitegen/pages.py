"""Page-level summaries: provenance, task list, per-class scores, model standings, latency spread."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from statistics import median
from typing import Any

from harness.records import PERCENTILE_MIN_SAMPLES
from harness.sitegen import format as fmt
from harness.sitegen.charts import heat_colour
from harness.sitegen.links import HwView, Links
from harness.sitegen.ranking import AggregateRow, Rankings
from harness.sitegen.results import Board, Result
from harness.sitegen.rows import rank_text
from harness.store.rows import ClassDetail, TaskMeta, Timing
from harness.units import format_mib

INDEX_TOP_MODELS = 50  # rows per protocol on the index; the protocol page lists every model


def provenance(board: Board, hw: Mapping[str, HwView]) -> dict[str, Any]:
    """When, where and with what versions the stored results were produced."""
    snap = board.snapshot
    runs_per_hw = Counter(r.timing.hardware for r in snap.runs if r.timing)
    packages: dict[str, Counter[str]] = defaultdict(Counter)
    harness_versions: Counter[str] = Counter()
    for env in snap.environments:
        listed = env.env.get("packages")
        for name, version in listed.items() if isinstance(listed, dict) else ():
            packages[str(name)][str(version)] += env.n_runs
        if env.env.get("python"):
            packages["python"][str(env.env["python"])] += env.n_runs
        harness_versions[env.harness_version + (f" (git {env.git_hash[:10]})" if env.git_hash else "")] += (
            env.n_runs
        )
    return {
        "first": fmt.timestamp(min((e.first_started for e in snap.environments), default="")),
        "last": fmt.timestamp(max((e.last_finished for e in snap.environments), default="")),
        "n_runs": len(snap.runs),
        "status_counts": sorted(Counter(r.status for r in snap.runs).items()),
        "hardware": [
            {"hw": hw[fp], "n_runs": n}
            for fp, n in sorted(runs_per_hw.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "harness_versions": harness_versions.most_common(),
        "packages": [(name, c.most_common()) for name, c in sorted(packages.items())],
        "suites": sorted({r.suite for r in snap.runs}),
    }


def task_list(board: Board, links: Links, root: str) -> list[dict[str, Any]]:
    statuses: dict[str, Counter[str]] = defaultdict(Counter)
    for (task, _, _), r in board.results.items():
        statuses[task][r.status] += 1
    return [
        {
            "name": t.name,
            "href": links.task(t.name, root),
            "modality": t.modality or "unknown",
            "n_labels": len(t.labels),
            "n_test": t.n_test,
            "limited": t.limited,
            "source": t.source,
            "license": t.license,
            "done": statuses[t.name]["done"],
            "not_applicable": statuses[t.name]["not_applicable"],
            "failed": statuses[t.name]["failed"],
        }
        for t in board.tasks
    ]


# ---- task pages ----------------------------------------------------------------------------------------


def class_view(task: TaskMeta, detail: ClassDetail | None) -> dict[str, Any] | None:
    """Per-class F1 bars and the confusion matrix (rows: true labels, in the task's label order)."""
    if detail is None:
        return None
    per_class = [
        {
            "label": lab,
            "f1": fmt.score(v),
            "sort": fmt.sort_value(v),
            "width": 0 if v != v else round(v * 100, 1),
        }
        for lab, v in detail.per_class_f1.items()
    ]
    confusion = None
    cm = detail.confusion
    if cm and len(cm) == len(task.labels) and all(len(row) == len(task.labels) for row in cm):
        peak = max((max(row) for row in cm), default=0) or 1
        confusion = [
            {"label": lab, "cells": [(v, *heat_colour(v / peak)) for v in row], "total": sum(row)}
            for lab, row in zip(task.labels, cm, strict=True)
        ]
    return {"per_class": per_class, "confusion": confusion, "labels": list(task.labels)}


def task_hardware(board: Board, task: str, hw: Mapping[str, HwView]) -> list[HwView]:
    fps = {
        r.timing.hardware
        for p in board.protocols
        for r in board.by_task_protocol.get((task, p), ())
        if r.timing is not None
    }
    return [hw[fp] for fp in sorted(fps)]


# ---- model pages ---------------------------------------------------------------------------------------


AggregateEntry = tuple[str, str, AggregateRow]  # (group, protocol, the model's row there)


def aggregate_index(rankings: Rankings) -> dict[str, list[AggregateEntry]]:
    """model -> [(group, protocol, its aggregate row)], for the model pages."""
    out: dict[str, list[AggregateEntry]] = defaultdict(list)
    for (group, protocol), rows in sorted(rankings.aggregate.items()):
        for row in rows:
            out[row.model].append((group, protocol, row))
    return out


def model_summary(entries: Sequence[AggregateEntry]) -> list[dict[str, Any]]:
    """The model's standing per group and protocol. Only what depends on this model's results and on
    the tested tie groups: a position counted among all models (or a mean rank) changes whenever any
    model is added, and would re-render every model page each time."""
    out = []
    for group, protocol, row in entries:
        placement = row.placement if row.placement is not None and row.placement.tested else None
        rank, title = rank_text(placement)
        out.append(
            {
                "group": group,
                "protocol": protocol,
                "rank": rank,
                "rank_title": title,
                "score": fmt.score(row.score),
                "coverage": f"{row.n_tasks}/{row.n_tasks_total}",
                "wins": row.wins,
            }
        )
    return out


def latency_summary(results: Sequence[Result], hw: Mapping[str, HwView]) -> list[dict[str, Any]]:
    """Per hardware fingerprint and protocol: the spread of this model's timings over tasks.

    Contended timings are left out (they measure the machine's other work) and counted; p95 / p99
    medians are over the timings whose sample count supports them (a dash when none does)."""
    groups: dict[tuple[str, str], list[Result]] = defaultdict(list)
    for r in results:
        if r.timing is not None:
            groups[(r.timing.hardware, r.protocol)].append(r)
    out = []
    for (fp, protocol), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        every = [r.timing for r in rs if r.timing is not None]
        timings = [t for t in every if not t.contended]
        if not timings:
            continue
        p50 = [t.p50_ms for t in timings]
        memory = [t.peak_mem_mb for t in timings if t.peak_mem_mb is not None]
        out.append(
            {
                "hw": hw[fp],
                "protocol": protocol,
                "n_tasks": len(timings),
                "n_contended": len(every) - len(timings),
                "batch_sizes": ", ".join(str(b) for b in sorted({t.batch_size for t in timings})),
                "p50_median": fmt.ms(median(p50)),
                "p50_range": f"{fmt.ms(min(p50))}–{fmt.ms(max(p50))}",
                "p95_median": _supported_median(timings, "p95"),
                "p99_median": _supported_median(timings, "p99"),
                "throughput_median": fmt.rate(median(t.items_per_s for t in timings)),
                "memory_max": format_mib(max(memory) if memory else None, fmt.DASH),
                "weights": format_mib(_first(t.weights_mb for t in timings), fmt.DASH),
                "load_s": _seconds(median(v) if (v := [t.load_s for t in timings if t.load_s is not None]) else None),
            }
        )
    return out


def _first(values: Iterable[float | None]) -> float | None:
    return next((v for v in values if v is not None), None)


def _seconds(v: float | None) -> str:
    return fmt.DASH if v is None else f"{v:.2g} s" if v < 10 else f"{v:.0f} s"


def _supported_median(timings: Sequence[Timing], at: str) -> str:
    values = [getattr(t, f"{at}_ms") for t in timings if t.n_timed >= PERCENTILE_MIN_SAMPLES[at]]
    return fmt.ms(median(values)) if values else fmt.DASH
