"""Table rows and plot points, built once per result and HTML-escaped when built.

Row classes (Cell, ResultView, BoardRow, PointView) are made through `escaped`, which escapes every
string field, and the templates print them inside `{% autoescape false %}` loops. At 150,000 results
the site prints millions of cells; escaping each at render time made rendering nine times slower,
while escaping once here is cheap and, since `escaped` covers every field, cannot be forgotten for
one. Everything else is escaped by Jinja as usual. The row classes are NamedTuples for the same
reason of volume (cheaper to construct than frozen dataclasses).
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

from harness.sitegen import format as fmt
from harness.sitegen.charts import ParetoPlot, heat_colour, pareto_plot
from harness.sitegen.links import HwView, Links
from harness.sitegen.ranking import Rankings
from harness.sitegen.results import Board, Result
from harness.sitegen.ties import Placement

T = TypeVar("T")
MAX_PARETO_PLOTS = 4  # per task and protocol: one per hardware fingerprint, most points first


def escaped(cls: type[T], **fields: Any) -> T:
    """An instance of a row class with every string field HTML-escaped (quotes included)."""
    return cls(**{k: _escape(v) if v.__class__ is str else v for k, v in fields.items()})


def _escape(text: str) -> str:
    # Most fields are numbers we formatted: test before escaping (html.escape always runs 5 replaces).
    if "&" in text or "<" in text or ">" in text or '"' in text or "'" in text:
        return html.escape(text)
    return text


class Cell(NamedTuple):
    text: str
    sort: str
    title: str = ""
    bg: str = ""
    fg: str = ""
    status: str = "done"


def result_cell(result: Result | None, metric: str) -> Cell:
    """A result as one heatmap cell: its value, or its status with the reason in the title."""
    if result is None:
        return escaped(Cell, text=fmt.DASH, sort="", title="not run", status="missing")
    if result.status != "done":
        label = "n/a" if result.status == "not_applicable" else "failed"
        title = fmt.short_reason(result.reason) or result.status
        return escaped(Cell, text=label, sort="", title=title, status=result.status)
    m = result.metric(metric)
    return escaped(Cell, text=fmt.score(m.value if m else None), sort=fmt.sort_value(m.value if m else None))


def rank_text(p: Placement | None) -> tuple[str, str]:
    """(rank shown, the tie explained for a title attribute; "" when there is no tie to explain).

    Page captions explain untested placements once instead of a title on each of thousands of rows."""
    if p is None:
        return fmt.DASH, ""
    if p.tied_with is None:
        return str(p.rank), ""
    return f"{p.rank}=", f"not significantly worse than {p.tied_with} (paired test, p = {p.p_value:.3f})"


# ---- one row per result (task and model pages) ---------------------------------------------------------


class ResultView(NamedTuple):
    model: str
    task: str
    protocol: str
    model_href: str  # from a page one folder down (tasks/, models/)
    task_href: str
    name_attr: str  # lower-cased model name the task page's filter box matches
    task_attr: str  # lower-cased task name the model page's filter box matches
    size: str
    status: str
    reason: str
    rank: str
    rank_title: str
    accuracy: str
    f1: str
    f1_sort: str
    f1_ci: str
    p50: str
    p95: str
    p95_title: str  # why p95 is withheld (too few samples)
    contended: str  # "contended" or ""
    contended_title: str
    throughput: str
    params: str
    params_sort: str
    memory: str
    hw_id: str  # "" when the result has no timing
    hw_short: str
    hw_summary: str
    seeds: int
    command: str
    suite_known: bool


def result_views(
    board: Board, rankings: Rankings, links: Links, hw: Mapping[str, HwView]
) -> dict[tuple[str, str, str], ResultView]:
    out = {}
    empty: dict[str, Placement] = {}
    model_href = {m: links.model(m, "../") for m in links.models}
    task_href = {t: links.task(t, "../") for t in links.tasks}
    for key, r in board.results.items():
        meta = board.model_meta[r.model]
        t = r.timing
        done = r.status == "done"
        placement = rankings.per_task.get((r.task, r.protocol), empty).get(r.model) if done else None
        rank, rank_title = rank_text(placement) if done else (fmt.DASH, "")
        acc, f1 = r.metrics.get("accuracy"), r.metrics.get("macro_f1")
        params = t.params if t and t.params is not None else meta.params
        command, suite_known = fmt.reproduce_command(r.representative)
        machine = hw[t.hardware] if t else None
        p95, p95_title = fmt.latency(t, "p95")
        contended, contended_title = fmt.contention(t)
        out[key] = escaped(
            ResultView,
            model=r.model,
            task=r.task,
            protocol=r.protocol,
            model_href=model_href[r.model],
            task_href=task_href[r.task],
            name_attr=r.model.lower(),
            task_attr=r.task.lower(),
            size=fmt.size_bucket(meta.params),
            status=r.status,
            reason=fmt.short_reason(r.reason),
            rank=rank,
            rank_title=rank_title,
            accuracy=fmt.score(acc.value) if acc else fmt.DASH,
            f1=fmt.score(f1.value) if f1 else fmt.DASH,
            f1_sort=fmt.sort_value(f1.value) if f1 else "",
            f1_ci=fmt.interval(f1, r.spread),
            p50=fmt.ms(t.p50_ms) if t else fmt.DASH,
            p95=p95,
            p95_title=p95_title,
            contended=contended,
            contended_title=contended_title,
            throughput=fmt.rate(t.items_per_s) if t else fmt.DASH,
            params=fmt.params(params),
            params_sort=fmt.sort_value(params),
            memory=fmt.megabytes(t.peak_mem_mb) if t else fmt.DASH,
            hw_id=machine.id if machine else "",
            hw_short=machine.short if machine else "",
            hw_summary=machine.summary if machine else "",
            seeds=r.n_seeds,
            command=command,
            suite_known=suite_known,
        )
    return out


# ---- index and protocol pages --------------------------------------------------------------------------


class BoardRow(NamedTuple):
    model: str
    href: str
    name_attr: str
    modality: str
    size: str
    family: str
    rank: str
    rank_title: str
    params: str
    params_sort: str
    score: str
    coverage: str
    wins: int
    cells: tuple[Cell, ...]


def board_table(
    board: Board, rankings: Rankings, links: Links, protocol: str, root: str, limit: int | None
) -> dict[str, Any]:
    """The leaderboard of one protocol: aggregate rank, then a heatmap row of main metrics per model."""
    rows_all = rankings.aggregate.get(protocol, ())
    rows = rows_all[:limit] if limit else rows_all
    tasks = [t for t in board.tasks if (t.name, protocol) in board.by_task_protocol]
    metrics = {t.name: board.main_metric(t.name) for t in tasks}
    colour_range: dict[str, tuple[float, float]] = {}
    for t in tasks:
        values = [
            m.value for r in board.by_task_protocol[(t.name, protocol)] if (m := r.metric(metrics[t.name]))
        ]
        colour_range[t.name] = (min(values), max(values)) if values else (0.0, 1.0)
    out_rows = []
    for row in rows:
        meta = board.model_meta[row.model]
        cells = []
        for t in tasks:
            cell = result_cell(board.results.get((t.name, protocol, row.model)), metrics[t.name])
            if cell.sort:
                lo, hi = colour_range[t.name]
                bg, fg = heat_colour((float(cell.sort) - lo) / (hi - lo) if hi > lo else 1.0)
                cell = Cell(cell.text, cell.sort, cell.title, bg, fg)  # already escaped; colours are ours
            cells.append(cell)
        rank, rank_title = rank_text(row.placement)
        out_rows.append(
            escaped(
                BoardRow,
                model=row.model,
                href=links.model(row.model, root),
                name_attr=row.model.lower(),
                modality=meta.modality or "unknown",
                size=fmt.size_bucket(meta.params),
                family=meta.family,
                rank=rank,
                rank_title=rank_title,
                params=fmt.params(meta.params),
                params_sort=fmt.sort_value(meta.params),
                score=fmt.score(row.score),
                coverage=f"{row.n_tasks}/{row.n_tasks_total}",
                wins=row.wins,
                cells=tuple(cells),
            )
        )
    return {
        "protocol": protocol,
        "tasks": [
            {"name": t.name, "href": links.task(t.name, root), "metric": fmt.metric_label(metrics[t.name])}
            for t in tasks
        ],
        "rows": out_rows,
        "total": len(rows_all),
        "full_href": links.protocol(protocol, root),
    }


class PointView(NamedTuple):
    """One plotted model, escaped for the SVG (see the module docstring)."""

    model: str
    href: str
    label: str  # tooltip text
    numbers: str  # "(accuracy, latency)" for the frontier list under the plot
    x: float
    y: float
    frontier: bool


def point_views(plot: ParetoPlot) -> tuple[list[PointView], list[PointView]]:
    """(every point, frontier last so it is drawn on top; the frontier alone, fastest first)."""
    views = [
        escaped(
            PointView,
            model=p.model,
            href=p.href,
            label=f"{p.model}: accuracy {p.accuracy:.3f}, p50 {p.latency_ms:.3g} ms"
            + (" (on the Pareto frontier)" if p.frontier else ""),
            numbers=f"({p.accuracy:.3f}, {p.latency_ms:.3g} ms)",
            x=p.x,
            y=p.y,
            frontier=p.frontier,
        )
        for p in plot.points
    ]
    frontier = sorted((v for v, p in zip(views, plot.points, strict=True) if p.frontier), key=lambda v: v.x)
    return [v for v in views if not v.frontier] + frontier, frontier


def pareto_plots(
    protocol: str, results: Sequence[Result], links: Links, hw: Mapping[str, HwView]
) -> list[tuple[HwView, ParetoPlot, list[PointView], list[PointView]]]:
    """Accuracy vs p50 latency, one plot per hardware fingerprint (timings never mix across hardware):
    (hardware, geometry, points to draw, frontier points)."""
    by_hw: dict[str, list[tuple[str, str, float, float]]] = defaultdict(list)
    for r in results:
        acc = r.metric("accuracy")
        # A contended timing measures the machine's other work: it would put a model off the frontier.
        if r.status == "done" and r.timing is not None and not r.timing.contended and acc is not None:
            by_hw[r.timing.hardware].append(
                (r.model, links.model(r.model, "../"), r.timing.p50_ms, acc.value)
            )
    ordered = sorted(by_hw.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:MAX_PARETO_PLOTS]
    out = []
    for fp, pts in ordered:
        plot = pareto_plot(f"{protocol} on hardware {fp[:8]}", pts)
        out.append((hw[fp], plot, *point_views(plot)))
    return out
