"""Render pages from the prepared data, in worker processes when there are many.

Pages are independent, so a large site renders in a pool of forked workers that inherit the prepared
data (no pickling of the board) and write their files themselves; the parent only records the states.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from harness.sitegen import format as fmt
from harness.sitegen import pages, rows
from harness.sitegen.exports import results_csv, results_json, run_rows
from harness.sitegen.links import HwView, Links
from harness.sitegen.load import ClassDetail
from harness.sitegen.ranking import AggregateRow, Rankings
from harness.sitegen.results import Board
from harness.sitegen.writer import IncrementalWriter, sync_file

TEMPLATES = Path(__file__).resolve().parent.parent / "site_templates"
PARALLEL_FROM_PAGES = 200  # below this a pool costs more than it saves
MAX_WORKERS = 8


def template_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every name and error text comes from users; never mark it safe
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["metric_label"] = fmt.metric_label
    env.globals["size_buckets"] = fmt.SIZE_BUCKETS
    return env


@dataclass(frozen=True)
class SiteContext:
    """Everything the pages are rendered from."""

    env: jinja2.Environment
    board: Board
    rankings: Rankings
    links: Links
    hw: dict[str, HwView]
    views: dict[tuple[str, str, str], rows.ResultView]
    best: dict[tuple[str, str], str]  # (task, protocol) -> run key of the best model
    details: dict[str, ClassDetail]  # per-class F1 and confusion of those runs
    aggregate_index: dict[str, list[tuple[str, AggregateRow, int]]]
    common: dict[str, Any]


@dataclass(frozen=True)
class PageJob:
    paths: tuple[str, ...]  # relative to the site folder; render() returns one content per path
    kind: str  # downloads | index | protocol | task | model
    name: str = ""


def page_jobs(ctx: SiteContext) -> list[PageJob]:
    """Every file to render, the slowest first so a pool starts on it at once."""
    links = ctx.links
    return [
        PageJob(("results.csv", "results.json"), "downloads"),
        PageJob(("index.html",), "index"),
        *(PageJob((f"protocols/{links.protocols[p]}.html",), "protocol", p) for p in ctx.board.protocols),
        *(PageJob((f"tasks/{links.tasks[t.name]}.html",), "task", t.name) for t in ctx.board.tasks),
        *(PageJob((f"models/{links.models[m.name]}.html",), "model", m.name) for m in ctx.board.models),
    ]


def render(ctx: SiteContext, job: PageJob) -> tuple[str, ...]:
    if job.kind == "downloads":
        flat = run_rows(ctx.board.snapshot)
        return results_csv(flat), results_json(ctx.board.snapshot, flat, ctx.rankings)
    if job.kind == "index":
        return (_index(ctx),)
    if job.kind == "protocol":
        table = rows.board_table(ctx.board, ctx.rankings, ctx.links, job.name, "../", None)
        return (ctx.env.get_template("protocol.html").render(root="../", table=table, **ctx.common),)
    if job.kind == "task":
        return (_task_page(ctx, job.name),)
    return (_model_page(ctx, job.name),)


def render_all(
    ctx: SiteContext, jobs: Sequence[PageJob], writer: IncrementalWriter, workers: int | None = None
) -> None:
    """Render and sync every file: in forked workers when asked for (workers > 1), or by default when
    there are many pages and several CPUs; in this process otherwise (and where fork is unavailable)."""
    n = workers if workers is not None else min(os.cpu_count() or 1, MAX_WORKERS)
    small = workers is None and len(jobs) < PARALLEL_FROM_PAGES
    if n <= 1 or small or "fork" not in multiprocessing.get_all_start_methods():
        for job in jobs:
            for path, content in zip(job.paths, render(ctx, job), strict=True):
                writer.write(path, content)
        return
    global _FORKED
    _FORKED = (ctx, writer.out)
    try:
        head, rest = jobs[:1], jobs[1:]  # the slowest job alone, so another worker takes the pages
        batches = [head] + [list(rest[i :: n * 4]) for i in range(n * 4)]
        work = [
            [(job, [writer.previous(p) for p in job.paths]) for job in batch] for batch in batches if batch
        ]
        with multiprocessing.get_context("fork").Pool(n) as pool:
            for synced in pool.imap_unordered(_render_batch, work):
                for path, entry, written in synced:
                    writer.record(path, entry, written)
    finally:
        _FORKED = None


_FORKED: tuple[SiteContext, Path] | None = None  # what forked workers inherit instead of unpickling


def _render_batch(
    batch: list[tuple[PageJob, list[dict[str, Any] | None]]],
) -> list[tuple[str, dict[str, Any], bool]]:
    assert _FORKED is not None, "render workers must be forked from render_all"
    ctx, out = _FORKED
    synced = []
    for job, before in batch:
        for path, content, previous in zip(job.paths, render(ctx, job), before, strict=True):
            synced.append((path, *sync_file(out, path, content, previous)))
    return synced


def _index(ctx: SiteContext) -> str:
    board = ctx.board
    return ctx.env.get_template("index.html").render(
        root="",
        boards=[
            rows.board_table(board, ctx.rankings, ctx.links, p, "", pages.INDEX_TOP_MODELS)
            for p in board.protocols
        ],
        tasks=pages.task_list(board, ctx.links, ""),
        n_models=len(board.models),
        provenance=pages.provenance(board, ctx.hw),
        **ctx.common,
    )


def _task_page(ctx: SiteContext, task: str) -> str:
    board = ctx.board
    meta = board.task(task)
    sections = []
    for protocol in board.protocols:
        results = board.by_task_protocol.get((task, protocol))
        if not results:
            continue
        best_key = ctx.best.get((task, protocol))
        sections.append(
            {
                "protocol": protocol,
                "rows": [ctx.views[(task, protocol, r.model)] for r in results],
                "best": results[0].model if best_key else None,
                "best_href": ctx.links.model(results[0].model, "../"),
                "classes": pages.class_view(meta, ctx.details.get(best_key)) if best_key else None,
                "plots": rows.pareto_plots(protocol, results, ctx.links, ctx.hw),
            }
        )
    return ctx.env.get_template("task.html").render(
        root="../",
        task=meta,
        main_metric=board.main_metric(task),
        sections=sections,
        hardware=pages.task_hardware(board, task, ctx.hw),
        superseded=board.superseded_runs.get(task, 0),
        **ctx.common,
    )


def _model_page(ctx: SiteContext, model: str) -> str:
    results = ctx.board.by_model.get(model, ())
    views = [ctx.views[(r.task, r.protocol, r.model)] for r in results]
    meta = ctx.board.model_meta[model]
    return ctx.env.get_template("model.html").render(
        root="../",
        model=meta,
        params=fmt.params(meta.params),
        summary=pages.model_summary(ctx.aggregate_index.get(model, [])),
        rows=views,
        hardware=[ctx.hw[fp] for fp in sorted({r.timing.hardware for r in results if r.timing is not None})],
        latency=pages.latency_summary(results, ctx.hw),
        **ctx.common,
    )
