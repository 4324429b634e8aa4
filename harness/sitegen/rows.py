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
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from harness.metrics import MetricInfo
from harness.metrics.stats import Placement
from harness.sitegen import format as fmt
from harness.sitegen.charts import ParetoPlot, heat_class, pareto_frontier, pareto_plot
from harness.sitegen.links import HwView, Links
from harness.sitegen.ranking import Rankings
from harness.sitegen.results import Board, Result, TaskGroup
from harness.store.rows import TaskMeta
from harness.units import format_count, format_mib

T = TypeVar("T")
MAX_PARETO_PLOTS = 4  # per task and protocol: one per hardware fingerprint, most points first
MAX_PLOT_POINTS = 250  # per plot (see plotted_points)


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
    bg: str = ""  # heat class (charts.heat_class)
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
    if m is None and metric in result.representative.metric_notes:
        return escaped(Cell, text="n/a", sort="", title=result.representative.metric_notes[metric], status="na")
    return escaped(Cell, text=fmt.score(m.value if m else None), sort=fmt.sort_value(m.value if m else None))


def metric_cell(result: Result, metric: MetricInfo) -> Cell:
    """One metric of a done result with its interval (CI or seed range); n/a with the reason when the
    metric does not apply to the run's class scores."""
    m = result.metric(metric.id)
    if m is None:
        note = result.representative.metric_notes.get(metric.id, "not stored for this run")
        return escaped(Cell, text="n/a", sort="", title=note, status="na")
    ci = fmt.interval(m, result.spread)
    return escaped(Cell, text=fmt.score(m.value) + (f" {ci}" if ci else ""), sort=fmt.sort_value(m.value), title=ci)


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
    metrics: tuple[Cell, ...]  # the task's declared single-number metrics, in declaration order
    main_label: str  # the task's main metric (model pages, where tasks differ)
    main: str  # the task's main metric
    main_sort: str
    main_ci: str
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


def result_view(
    board: Board,
    rankings: Rankings,
    links: Links,
    hw: Mapping[str, HwView],
    r: Result,
    *,
    tested_only: bool = False,
    metric_cells: bool = True,
) -> ResultView:
    """One result as a table row. tested_only: show a rank only where the paired tests placed it (model
    pages: a rank placed by value shifts whenever any better model arrives, which would re-render every
    model page on each new result). metric_cells: build a cell per declared metric (task pages; model
    pages show the main metric only, and at 150k results the unused cells were a third of their rows' cost)."""
    meta = board.model_meta[r.model]
    t = r.timing
    done = r.status == "done"
    placement = rankings.per_task.get((r.task, r.protocol), _EMPTY).get(r.model) if done else None
    if tested_only and placement is not None and not placement.tested:
        placement = None
    rank, rank_title = rank_text(placement) if done else (fmt.DASH, "")
    task_meta = board.task(r.task)
    main_info = task_meta.metric_info(task_meta.main_metric)
    main = r.metrics.get(main_info.id)
    cells = (
        tuple(metric_cell(r, m) if done else escaped(Cell, text=fmt.DASH, sort="") for m in task_meta.scalar_metrics)
        if metric_cells
        else ()
    )
    params = t.params if t and t.params is not None else meta.params
    command, suite_known = fmt.reproduce_command(r.representative)
    machine = hw[t.hardware] if t else None
    p95, p95_title = fmt.latency(t, "p95")
    contended, contended_title = fmt.contention(t)
    return escaped(
            ResultView,
            model=r.model,
            task=r.task,
            protocol=r.protocol,
            model_href=links.model(r.model, "../"),
            task_href=links.task(r.task, "../"),
            name_attr=r.model.lower(),
            task_attr=r.task.lower(),
            size=fmt.size_bucket(meta.params),
            status=r.status,
            reason=fmt.short_reason(r.reason),
            rank=rank,
            rank_title=rank_title,
            metrics=cells,
            main_label=main_info.label,
            main=fmt.score(main.value) if main else fmt.DASH,
            main_sort=fmt.sort_value(main.value) if main else "",
            main_ci=fmt.interval(main, r.spread),
            p50=fmt.ms(t.p50_ms) if t else fmt.DASH,
            p95=p95,
            p95_title=p95_title,
            contended=contended,
            contended_title=contended_title,
            throughput=fmt.rate(t.items_per_s) if t else fmt.DASH,
            params=format_count(params, fmt.DASH),
            params_sort=fmt.sort_value(params),
            memory=format_mib(t.peak_mem_mb if t else None, fmt.DASH),
            hw_id=machine.id if machine else "",
            hw_short=machine.short if machine else "",
            hw_summary=machine.summary if machine else "",
            seeds=r.n_seeds,
            command=command,
            suite_known=suite_known,
        )


_EMPTY: dict[str, Placement] = {}


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
    mean_rank: str
    coverage: str
    wins: int
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class BoardTable:
    """The leaderboard of one task group under one protocol."""

    group: str
    title: str
    protocol: str
    anchor: str  # id of its section on the protocol page
    tasks: list[dict[str, Any]]
    rows: list[str]  # every row's HTML, ranked first
    total: int


def board_table(
    board: Board, rankings: Rankings, links: Links, group: TaskGroup, protocol: str, root: str
) -> BoardTable:
    """Aggregate rank, mean score, mean rank, then a heatmap cell of the main metric per task; a task
    with leaky splits is flagged in its header and on each of its cells."""
    rows_all = rankings.aggregate.get((group.name, protocol), ())
    tasks = [board.task(t) for t in group.tasks if (t, protocol) in board.by_task_protocol]
    metrics = {t.name: board.main_metric(t.name) for t in tasks}
    colour_range: dict[str, tuple[float, float]] = {}
    for t in tasks:
        values = [
            board.sign(t.name) * m.value
            for r in board.by_task_protocol[(t.name, protocol)]
            if (m := r.metric(metrics[t.name]))
        ]
        colour_range[t.name] = (min(values), max(values)) if values else (0.0, 1.0)
    leak = {t.name: _escape(f"Leak: {t.leak_warning}") for t in tasks if t.leak_warning}
    out_rows = []
    for row in rows_all:
        meta = board.model_meta[row.model]
        cells = []
        for t in tasks:
            cell = result_cell(board.results.get((t.name, protocol, row.model)), metrics[t.name])
            if cell.sort:
                lo, hi = colour_range[t.name]
                v = board.sign(t.name) * float(cell.sort)
                heat = heat_class((v - lo) / (hi - lo) if hi > lo else 1.0)
                cell = Cell(cell.text, cell.sort, cell.title, heat)  # already escaped; the class is ours
            if t.name in leak and cell.status == "done":
                cell = Cell(cell.text, cell.sort, leak[t.name], cell.bg, "done leak")
            cells.append(cell)
        rank, rank_title = rank_text(row.placement)
        out_rows.append(
            board_row_html(
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
                    params=format_count(meta.params, fmt.DASH),
                    params_sort=fmt.sort_value(meta.params),
                    score=fmt.score(row.score),
                    mean_rank=f"{row.mean_rank:.1f}" if row.mean_rank is not None else fmt.DASH,
                    coverage=f"{row.n_tasks}/{row.n_tasks_total}",
                    wins=row.wins,
                    cells=tuple(cells),
                )
            )
        )
    return BoardTable(
        group=group.name,
        title=group.title,
        protocol=protocol,
        anchor=f"g-{links.groups[group.name]}",
        tasks=[
            {
                "name": t.name,
                "href": links.task(t.name, root),
                "metric": board.main_info(t.name).label,
                "leak": t.leak_warning,
            }
            for t in tasks
        ],
        rows=out_rows,
        total=len(rows_all),
    )


def board_row_html(r: BoardRow) -> str:
    cells = "".join(
        f'<td class="heat {c.status}{" " + c.bg if c.bg else ""}"'
        + _title(c.title)
        + f">{c.text}"
        + ('<span class="leak-mark" aria-label="leaky splits">⚠</span>' if c.status == "done leak" else "")
        + "</td>"
        for c in r.cells
    )
    family = f' <span class="family">{r.family}</span>' if r.family else ""
    return (
        f'<tr data-name="{r.name_attr}" data-modality="{r.modality}" data-size="{r.size}">'
        f'<td class="num"{_title(r.rank_title)}>{r.rank}</td>'
        f'<th scope="row"><a href="{r.href}">{r.model}</a>{family}</th>'
        f'<td class="num" data-v="{r.params_sort}">{r.params}</td><td class="num">{r.score}</td>'
        f'<td class="num">{r.mean_rank}</td><td class="num">{r.wins}</td><td class="num">{r.coverage}</td>'
        f"{cells}</tr>\n"
    )


class PointView(NamedTuple):
    """One plotted model, escaped for the SVG (see the module docstring)."""

    model: str
    href: str
    label: str  # tooltip text
    numbers: str  # "(quality, latency)" for the frontier list under the plot
    x: float
    y: float
    frontier: bool


def plot_metric(task: TaskMeta) -> MetricInfo | None:
    """What a task's quality-vs-latency plot shows: its main metric when higher is better, else the first
    declared higher-is-better metric (the frontier needs a higher-is-better quality)."""
    main = task.metric_info(task.main_metric)
    if main.higher_is_better:
        return main
    return next((m for m in task.scalar_metrics if m.higher_is_better), None)


def point_views(plot: ParetoPlot) -> tuple[list[PointView], list[PointView]]:
    """(every point, frontier last so it is drawn on top; the frontier alone, fastest first)."""
    views = [
        escaped(
            PointView,
            model=p.model,
            href=p.href,
            label=f"{p.model}: {plot.y_label} {p.accuracy:.3f}, p50 {p.latency_ms:.3g} ms"
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
    protocol: str,
    results: Sequence[Result],
    links: Links,
    hw: Mapping[str, HwView],
    metric: MetricInfo | None,
) -> list[tuple[HwView, ParetoPlot, list[PointView], list[PointView]]]:
    """`metric` (see plot_metric) vs p50 latency, one plot per hardware fingerprint (timings never mix
    across hardware): (hardware, geometry, points to draw, frontier points)."""
    if metric is None:
        return []
    by_hw: dict[str, list[tuple[str, str, float, float]]] = defaultdict(list)
    for r in results:
        acc = r.metric(metric.id)
        # A contended timing measures the machine's other work: it would put a model off the frontier.
        if r.status == "done" and r.timing is not None and not r.timing.contended and acc is not None:
            by_hw[r.timing.hardware].append(
                (r.model, links.model(r.model, "../"), r.timing.p50_ms, acc.value)
            )
    ordered = sorted(by_hw.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:MAX_PARETO_PLOTS]
    out = []
    for fp, every in ordered:
        pts = plotted_points(every)
        title = f"{protocol} on hardware {fp[:8]}"
        if len(pts) < len(every):
            title += f" ({len(pts)} of {len(every)} models: the frontier and the best by {metric.label})"
        plot = pareto_plot(title, pts, y_label=metric.label)
        out.append((hw[fp], plot, *point_views(plot)))
    return out


def plotted_points(
    points: Sequence[tuple[str, str, float, float]], limit: int = MAX_PLOT_POINTS
) -> list[tuple[str, str, float, float]]:
    """At most `limit` (model, href, latency, quality) points: the whole latency frontier, then the best by
    quality. The frontier of the subset is the frontier of all points (every frontier point is kept, and
    a dropped point stays dominated by one of them); past a few hundred points a scatter plot is a blot
    that costs ~190 bytes a point of page weight, while the table lists every model."""
    if len(points) <= limit:
        return list(points)
    front = pareto_frontier([(p[2], p[3]) for p in points])
    rest = sorted((i for i in range(len(points)) if i not in front), key=lambda i: (-points[i][3], points[i][0]))
    keep = set(front) | set(rest[: max(0, limit - len(front))])
    return [p for i, p in enumerate(points) if i in keep]


# ---- row markup -----------------------------------------------------------------------------------------
# Rows are rendered here, once, as HTML strings: the page prints the first rows of a long table and the
# page's data file holds every row (site.js loads it for the next pages, sorting or filtering), so both
# come from the same code. Every field is escaped when its view is built (see `escaped`).


def _title(text: str) -> str:
    return f' title="{text}"' if text else ""


def _latency_cells(r: ResultView) -> str:
    """p50 (with the contended badge) and p95 (withheld: a dash with the reason)."""
    if r.contended:
        p50 = (
            f'<td class="num contended"{_title(r.contended_title)}>{r.p50} '
            f'<span class="badge contended">{r.contended}</span></td>'
        )
    else:
        p50 = f'<td class="num">{r.p50}</td>'
    return f'{p50}<td class="num"{_title(r.p95_title)}>{r.p95}</td>'


def task_row_html(r: ResultView, pick_id: str = "") -> str:
    """A row of a task page's per-protocol table. pick_id: the candidate id the pick form refers to."""
    if r.status == "done":
        status = "done" + (f" ({r.seeds} seeds)" if r.seeds > 1 else "")
    elif r.status == "not_applicable":
        status = f"not applicable: {r.reason}"
    else:
        status = f"failed: {r.reason}"
    hw_cell = f'<abbr class="hw" title="{r.hw_summary}">{r.hw_short}</abbr>' if r.hw_id else fmt.DASH
    cand = f' data-cand="{pick_id}"' if pick_id else ""
    return (
        f'<tr data-name="{r.name_attr}" data-size="{r.size}" data-hw="{r.hw_id or "none"}"{cand} class="status-{r.status}">'
        f'<td class="num"{_title(r.rank_title)}>{r.rank}</td>'
        f'<th scope="row"><a href="{r.model_href}">{r.model}</a></th>'
        + "".join(f'<td class="num" data-v="{c.sort}"{_title(c.title if c.status == "na" else "")}>{c.text}</td>' for c in r.metrics)
        + f"{_latency_cells(r)}<td class=\"num\">{r.throughput}</td>"
        f'<td class="num" data-v="{r.params_sort}">{r.params}</td><td class="num">{r.memory}</td>'
        f"<td>{hw_cell}</td><td{_title(r.reason)}>{status}</td></tr>\n"
    )


def model_row_html(r: ResultView) -> str:
    """A row of a model page's results table."""
    if r.status == "not_applicable":
        status = f'<span class="status">not applicable: {r.reason}</span>'
    elif r.status == "failed":
        status = f'<span class="status">failed: {r.reason}</span>'
    elif r.seeds > 1:
        status = f'<span class="status">{r.seeds} seeds averaged</span>'
    else:
        status = ""
    ci = f' <span class="ci">{r.main_ci}</span>' if r.main_ci else ""
    hw_cell = f'<abbr class="hw" title="{r.hw_summary}">{r.hw_short}</abbr>' if r.hw_id else fmt.DASH
    guessed = "" if r.suite_known else ' <span class="note">(suite path not recorded; guessed from the suite name)</span>'
    return (
        f'<tr data-name="{r.task_attr}" data-protocol="{r.protocol}" data-hw="{r.hw_id or "none"}" class="status-{r.status}">'
        f'<th scope="row"><a href="{r.task_href}">{r.task}</a></th><td>{r.protocol}</td>'
        f'<td class="num"{_title(r.rank_title)}>{r.rank}</td><td>{r.main_label}</td>'
        f'<td class="num" data-v="{r.main_sort}">{r.main}{ci}</td>'
        f"{_latency_cells(r)}<td class=\"num\">{r.throughput}</td>"
        f'<td>{hw_cell}</td><td class="cmd">{status}\n<code>{r.command}</code>{guessed}</td></tr>\n'
    )
