"""Table rows and plot points, built once per result and HTML-escaped when built.

Row classes (RowMaker's per-model and per-task bits) are made through `escaped`, which escapes every
string field; RowMaker's rows, the leaderboard rows (board_table) and a plot's points (point_marks) escape
the text they print (a name, an error, a command, the model a result ties with) and print numbers they
format themselves. The templates print rows inside `{% autoescape false %}` loops. At 150,000 results the site prints millions of cells;
escaping each at render time made rendering nine times slower. Everything else is escaped by Jinja as
usual. The row classes are NamedTuples for the same reason of volume (cheaper than frozen dataclasses).
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from json.encoder import encode_basestring_ascii
from math import isfinite
from typing import Any, NamedTuple, TypeVar

from harness.metrics import MetricInfo
from harness.metrics.stats import Placement
from harness.records import MetricValue
from harness.sitegen import format as fmt
from harness.sitegen.charts import ParetoPlot, heat_class, pareto_frontier, pareto_plot
from harness.sitegen.links import HwView, Links
from harness.sitegen.ranking import Rankings
from harness.sitegen.results import Board, Result, TaskGroup
from harness.store.rows import TaskMeta, Timing
from harness.units import format_count, format_mib

T = TypeVar("T")
MAX_PARETO_PLOTS = 4  # per task and protocol: one per hardware fingerprint, most points first
MAX_PLOT_POINTS = 250  # per plot (see plotted_points)
_NO_BODIES: dict[str, str] = {}


def escaped(cls: type[T], **fields: Any) -> T:
    """An instance of a row class with every string field HTML-escaped (quotes included)."""
    return cls(**{k: _escape(v) if v.__class__ is str else v for k, v in fields.items()})


def _escape(text: str) -> str:
    text = fmt.shown(text)
    # Most fields are numbers we formatted: test before escaping (html.escape always runs 5 replaces).
    if "&" in text or "<" in text or ">" in text or '"' in text or "'" in text:
        return html.escape(text)
    return text


def rank_text(p: Placement | None) -> tuple[str, str]:
    """(rank shown, the tie explained for a title attribute; "" when there is no tie to explain).

    Page captions explain untested placements once instead of a title on each of thousands of rows."""
    if p is None:
        return fmt.DASH, ""
    if p.tied_with is None:
        return str(p.rank), ""
    return f"{p.rank}=", f"not significantly worse than {p.tied_with} (paired test, p = {p.p_value:.3f})"


# ---- one row per result (task and model pages) ---------------------------------------------------------


class ModelBits(NamedTuple):
    """What every row of one model prints about it, escaped once per model instead of once per row."""

    name: str
    attr: str  # lower-cased name the task page's filter box matches
    href: str  # from a page one folder down (tasks/, models/)
    size: str
    params: int | None


class TaskBits(NamedTuple):
    """What every row of one task prints about it (model pages), escaped once per task."""

    name: str
    attr: str  # lower-cased name the model page's filter box matches
    href: str
    main: MetricInfo
    main_label: str
    scalar_metrics: tuple[MetricInfo, ...]  # the task page's metric columns


class RowMaker:
    """Builds the task and model pages' result rows as HTML. At 150,000 results the rows are most of a
    build, so what a row shares with others (its model, its task, its hardware, a status word) is escaped
    and formatted once here, and a row formats only its own numbers and escapes only its own text (error,
    command, the model it ties with). Made before the render workers fork; each fills its caches lazily."""

    def __init__(self, board: Board, rankings: Rankings, links: Links, hw: Mapping[str, HwView]) -> None:
        self.board, self.rankings, self.links, self.hw = board, rankings, links, hw
        self._models: dict[str, ModelBits] = {}
        self._tasks: dict[str, TaskBits] = {}
        self._hw_cells: dict[str, tuple[str, str]] = {}
        self._words: dict[str, str] = {}
        self._row_starts: dict[str, tuple[str, str]] = {}
        self._params_tds: dict[int | None, str] = {}

    def model(self, name: str) -> ModelBits:
        bits = self._models.get(name)
        if bits is None:
            meta = self.board.model_meta[name]
            bits = escaped(
                ModelBits,
                name=name,
                attr=name.lower(),
                href=self.links.model(name, "../"),
                size=fmt.size_bucket(meta.params),
                params=meta.params,
            )
            self._models[name] = bits
        return bits

    def task(self, name: str) -> TaskBits:
        bits = self._tasks.get(name)
        if bits is None:
            meta = self.board.task(name)
            main = meta.metric_info(meta.main_metric)
            bits = escaped(
                TaskBits,
                name=name,
                attr=name.lower(),
                href=self.links.task(name, "../"),
                main=main,
                main_label=main.label,
                scalar_metrics=meta.scalar_metrics,
            )
            self._tasks[name] = bits
        return bits

    def word(self, text: str) -> str:
        """A short string that recurs on many rows (status, protocol), escaped once."""
        out = self._words.get(text)
        if out is None:
            out = self._words[text] = _escape(text)
        return out

    def hw_cell(self, t: Timing | None) -> tuple[str, str]:
        """(data-hw value, the hardware cell's content) of a row."""
        if t is None:
            return "none", fmt.DASH
        cell = self._hw_cells.get(t.hardware)
        if cell is None:
            machine = self.hw[t.hardware]
            cell = (
                _escape(machine.id) or "none",
                f'<abbr class="hw" title="{_escape(machine.summary)}">{_escape(machine.short)}</abbr>',
            )
            self._hw_cells[t.hardware] = cell
        return cell

    def _row_start(self, name: str) -> tuple[str, str]:
        """A task page row's opening (its filter attributes, up to data-hw) and its model cell."""
        parts = self._row_starts.get(name)
        if parts is None:
            model = self.model(name)
            parts = (
                f'<tr data-name="{model.attr}" data-size="{model.size}" data-hw="',
                f'<th scope="row"><a href="{model.href}">{model.name}</a></th>',
            )
            self._row_starts[name] = parts
        return parts

    def _params_td(self, params: int | None) -> str:
        td = self._params_tds.get(params)
        if td is None:
            td = f'<td class="num" data-v="{fmt.sort_value(params)}">{format_count(params, fmt.DASH)}</td>'
            self._params_tds[params] = td
        return td

    def task_rows(
        self, results: Sequence[Result], pick_ids: Sequence[str], reuse: Mapping[str, str] = _NO_BODIES
    ) -> tuple[list[str], list[str]]:
        """The rows of a task page's table (one task, one protocol), each as the text of a JSON string (what
        goes between its quotes in the table's data file; see render.encoded_rows_script), and each row's key
        (row_key). pick_ids: per row, the candidate id the pick form refers to, or "". reuse: row key -> the
        row's body (what follows its model cell: metrics, latency, hardware, status), JSON-encoded, from the
        previous build of this table, made from the same renderer, task and hardware (see
        render.TaskRowReuse). A new model ranked first shifts every row's rank but leaves the bodies, ~3/4 of
        a row's cost, as they were; kept encoded, they are not encoded again for the new data file. One loop
        over the rows with no nested calls per cell: at 150,000 results the rows were a sixth of a build."""
        if not results:
            return [], []
        task = self.task(results[0].task)
        metrics = task.scalar_metrics
        no_cells = _NO_METRIC_TD * len(metrics)
        placements = self.rankings.per_task.get((results[0].task, results[0].protocol), _EMPTY)
        out = []
        keys = []
        for r, pick_id in zip(results, pick_ids, strict=True):
            opening, name_th = self._row_start(r.model)
            t = r.timing
            hw_id, hw_cell = self.hw_cell(t)
            key = self.row_key(r)
            rank = _rank_td(placements.get(r.model), False) if r.status == "done" else _DASH_TD
            body = reuse.get(key)
            if body is None:
                if r.status == "done":
                    n = len(r.runs)
                    status = "done" if n == 1 else f"done ({n} seeds)"
                    reason_td = "<td>"
                    if cautions := r.warnings:
                        status, reason_td = f"{status}, {caution_note(cautions)}", f"<td{_title(caution_title(cautions))}>"
                    get = r.metrics.get
                    cells = "".join([_metric_td(get(m.id), r, m) for m in metrics])
                else:
                    reason = _escape(fmt.short_reason(r.reason))
                    status = f"{_unfinished(r.status)}: {reason}"
                    reason_td = f"<td{_title(reason)}>"
                    cells = no_cells
                if t is None:
                    rest = f"{_NO_LATENCY_TDS}{_DASH_TD}{self._params_td(self.model(r.model).params)}{_DASH_TD}"
                else:
                    params = t.params if t.params is not None else self.model(r.model).params
                    rest = (
                        f'{_latency_tds(t)}<td class="num">{fmt.rate(t.items_per_s)}</td>{self._params_td(params)}'
                        f'<td class="num">{format_mib(t.peak_mem_mb, fmt.DASH)}</td>'
                    )
                body = _json_text(f"{cells}{rest}<td>{hw_cell}</td>{reason_td}{status}</td></tr>\n")
            cand = f'" data-cand="{pick_id}' if pick_id else ""
            if cautions := r.warnings:  # next to the name too: the status cell is the table's last column
                name_th = f'{name_th[:-5]}<span class="caution-mark"{_title(caution_title(cautions))}>!</span></th>'
            head = f'{opening}{hw_id}{cand}" class="status-{self.word(r.status)}">{rank}{name_th}'
            out.append(_json_text(head) + body)
            keys.append(key)
        return out, keys

    def row_key(self, r: Result) -> str:
        """What a task page row's body is made of, besides the renderer, the task and the hardware views:
        the result's identity (deps.result_identity: status, runs' keys and finish times) and its model's
        parameter count, as a short digest (one f-string: at 150,000 rows a repr of the tuple cost 2x)."""
        params = self.model(r.model).params
        if len(r.runs) == 1:  # most results: the same text as below, without the join
            x = r.runs[0]
            text = f"{r.status}\x1f{params}\x1f{x.key}\x1f{x.finished_at}"
        else:
            text = f"{r.status}\x1f{params}\x1f" + "\x1f".join([f"{x.key}\x1f{x.finished_at}" for x in r.runs])
        return blake2b(text.encode(), digest_size=8).hexdigest()

    def model_rows(self, results: Sequence[Result]) -> list[str]:
        """The rows of a model page's results table: the task's main metric only, and a rank only where the
        paired tests placed it (a rank placed by value shifts whenever any better model arrives, which would
        re-render every model page on each new result)."""
        out = []
        per_task = self.rankings.per_task
        for r in results:
            task = self.task(r.task)
            t = r.timing
            hw_id, hw_cell = self.hw_cell(t)
            protocol = self.word(r.protocol)
            if r.status == "done":
                status = f'<span class="status">{len(r.runs)} seeds averaged</span>' if len(r.runs) > 1 else ""
                if cautions := r.warnings:
                    status += f'<span class="status"{_title(caution_title(cautions))}>{caution_note(cautions)}</span>'
                rank = _rank_td(per_task.get((r.task, r.protocol), _EMPTY).get(r.model), True)
            else:
                status = f'<span class="status">{_unfinished(r.status)}: {_escape(fmt.short_reason(r.reason))}</span>'
                rank = _DASH_TD
            main = r.metrics.get(task.main.id)
            if main is None:
                main_td = f'<td class="num" data-v="">{fmt.DASH}</td>'
            else:
                ci = fmt.interval(main, r.spread)
                ci_html = f' <span class="ci">{ci}</span>' if ci else ""
                main_td = f'<td class="num" data-v="{fmt.sort_value(main.value)}">{fmt.score(main.value)}{ci_html}</td>'
            command, suite_known = fmt.reproduce_command(r.representative)
            guessed = "" if suite_known else _GUESSED
            out.append(
                f'<tr data-name="{task.attr}" data-protocol="{protocol}" data-hw="{hw_id}" class="status-{self.word(r.status)}">'
                f'<th scope="row"><a href="{task.href}">{task.name}</a></th><td>{protocol}</td>'
                f"{rank}<td>{task.main_label}</td>{main_td}"
                f"{_latency_tds(t)}<td class=\"num\">{fmt.rate(t.items_per_s) if t else fmt.DASH}</td>"
                f'<td>{hw_cell}</td><td class="cmd">{status}\n<code>{_escape(command)}</code>{guessed}</td></tr>\n'
            )
        return out


_DASH_TD = f'<td class="num">{fmt.DASH}</td>'


def _unfinished(status: str) -> str:
    """How a row names a result that is not done."""
    return "not applicable" if status == "not_applicable" else "failed"


_GUESSED = ' <span class="note">(suite path not recorded; guessed from the suite name)</span>'


def _rank_td(p: Placement | None, tested_only: bool) -> str:
    """The rank cell of a done result: rank shown, with the tie explained in its title."""
    if p is None or (tested_only and not p.tested):
        return _DASH_TD
    if p.tied_with is None:
        return f'<td class="num">{p.rank}</td>'
    rank, title = rank_text(p)
    return f'<td class="num"{_title(_escape(title))}>{rank}</td>'


_NO_METRIC_TD = f'<td class="num" data-v="">{fmt.DASH}</td>'


def _metric_td(m: MetricValue | None, r: Result, metric: MetricInfo) -> str:
    """One metric of a done result with its interval (CI or seed range); n/a with the reason in the title
    when the metric does not apply to the run's class scores. Numbers we format need no escaping."""
    if m is None:
        note = r.representative.metric_notes.get(metric.id, "not stored for this run")
        return f'<td class="num" data-v=""{_title(_escape(note))}>n/a</td>'
    sort, text = fmt.metric_cell(m, r.spread)
    return f'<td class="num" data-v="{sort}">{text}</td>'


def _latency_tds(t: Timing | None) -> str:
    """p50 (with the contended badge) and p95 (withheld: a dash with the reason)."""
    if t is None:
        return _NO_LATENCY_TDS
    p95, p95_title = fmt.latency(t, "p95")
    p50 = fmt.ms(t.p50_ms)
    if t.contended:
        _, contended_title = fmt.contention(t)
        p50_td = (
            f'<td class="num contended"{_title(_escape(contended_title))}>{p50} '
            '<span class="badge contended">contended</span></td>'
        )
    else:
        p50_td = f'<td class="num">{p50}</td>'
    return f'{p50_td}<td class="num"{_title(p95_title)}>{p95}</td>'


_NO_LATENCY_TDS = f'<td class="num">{fmt.DASH}</td><td class="num">{fmt.DASH}</td>'


_EMPTY: dict[str, Placement] = {}


# ---- index and protocol pages --------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardTable:
    """The leaderboard of one task group under one protocol."""

    group: str
    title: str
    protocol: str
    anchor: str  # id of its section on the protocol page
    tasks: list[dict[str, Any]]
    rows: list[str]  # the rows built (all, or the first `limit`), ranked first
    total: int


def board_table(
    board: Board,
    rankings: Rankings,
    links: Links,
    group: TaskGroup,
    protocol: str,
    root: str,
    limit: int | None = None,
) -> BoardTable:
    """Aggregate rank, mean score, mean rank, then a heatmap cell of the main metric per task; a task
    with leaky splits is flagged in its header and on each of its cells. limit: build only the first
    rows (the index prints the top of each board; the protocol page holds every row)."""
    rows_all = rankings.aggregate.get((group.name, protocol), ())
    tasks = [board.task(t) for t in group.tasks if (t, protocol) in board.by_task_protocol]
    columns = [_HeatColumn.of(board, t, protocol) for t in tasks]
    results = board.results
    out_rows = []
    for row in rows_all[:limit]:
        model = row.model
        meta = board.model_meta[model]
        cells = "".join([c.td(results.get((c.task, protocol, model))) for c in columns])
        rank, rank_title = rank_text(row.placement)
        family = f' <span class="family">{_escape(meta.family)}</span>' if meta.family else ""
        mean_rank = f"{row.mean_rank:.1f}" if row.mean_rank is not None else fmt.DASH
        out_rows.append(
            f'<tr data-name="{_escape(model.lower())}" data-modality="{_escape(meta.modality or "unknown")}"'
            f' data-size="{fmt.size_bucket(meta.params)}">'
            f'<td class="num"{_title(_escape(rank_title))}>{rank}</td>'
            f'<th scope="row"><a href="{_escape(links.model(model, root))}">{_escape(model)}</a>{family}</th>'
            f'<td class="num" data-v="{fmt.sort_value(meta.params)}">{format_count(meta.params, fmt.DASH)}</td>'
            f'<td class="num">{fmt.score(row.score)}</td><td class="num">{mean_rank}</td>'
            f'<td class="num">{row.wins}</td><td class="num">{row.n_tasks}/{row.n_tasks_total}</td>'
            f"{cells}</tr>\n"
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


_NOT_RUN_TD = f'<td class="heat missing" title="not run">{fmt.DASH}</td>'
_LEAK_MARK = '<span class="leak-mark" aria-label="leaky splits">⚠</span>'
_CAUTION_MARK = '<span class="caution-mark" aria-label="caution">!</span>'


def caution_note(warnings: Sequence[str]) -> str:
    """A result's warnings as a table cell shows them: marked and counted, the text on hover (caution_title)
    and in the downloads; a sentence in the cell made its row many lines tall in the table's last column."""
    return f"{_CAUTION_MARK} caution" + (f" ({len(warnings)})" if len(warnings) > 1 else "")


def caution_title(warnings: Sequence[str]) -> str:
    """Every warning of a result, for a title (escaped)."""
    return _escape("Caution: " + " ".join(warnings))


class _HeatColumn(NamedTuple):
    """One task's column of a leaderboard: each result as a heatmap cell of the main metric, coloured by
    its place between the column's worst and best value; its status with the reason where not done."""

    task: str
    metric: str
    sign: float
    lo: float
    hi: float
    leak: str  # the title of every done cell of a task with leaky splits (escaped), else ""

    @classmethod
    def of(cls, board: Board, task: TaskMeta, protocol: str) -> _HeatColumn:
        metric, sign = board.main_metric(task.name), board.sign(task.name)
        values = [sign * m.value for r in board.by_task_protocol[(task.name, protocol)] if (m := r.metrics.get(metric))]
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        leak = _escape(f"Leak: {task.leak_warning}") if task.leak_warning else ""
        return cls(task.name, metric, sign, lo, hi, leak)

    def td(self, result: Result | None) -> str:
        if result is None:
            return _NOT_RUN_TD
        if result.status != "done":
            label = "n/a" if result.status == "not_applicable" else "failed"
            title = _escape(fmt.short_reason(result.reason) or result.status)
            return f'<td class="heat {_escape(result.status)}"{_title(title)}>{label}</td>'
        m = result.metrics.get(self.metric)
        if m is None and self.metric in result.representative.metric_notes:
            return f'<td class="heat na"{_title(_escape(result.representative.metric_notes[self.metric]))}>n/a</td>'
        value = m.value if m else None
        status = "done leak" if self.leak else "done"
        mark = _LEAK_MARK if self.leak else ""
        title = self.leak
        if cautions := result.warnings:
            status, mark = f"{status} caution", f"{mark}{_CAUTION_MARK}"
            title = f"{title} {caution_title(cautions)}" if title else caution_title(cautions)
        if value is None or not isfinite(value):
            return f'<td class="heat {status}"{_title(title)}>{fmt.DASH}{mark}</td>'
        lo, hi = self.lo, self.hi
        heat = heat_class((self.sign * value - lo) / (hi - lo) if hi > lo else 1.0)
        return f'<td class="heat {status} {heat}"{_title(title)}>{value:.3f}{mark}</td>'


class PointView(NamedTuple):
    """A model on a plot's Pareto frontier, escaped, for the frontier list under the plot."""

    model: str
    href: str
    numbers: str  # "(quality, latency)"


class PlotMarks(NamedTuple):
    """A plot's points as SVG markup (every point, frontier last so it is drawn on top), and its frontier."""

    svg: str  # escaped here (see the module docstring): the template prints it as it is
    n_points: int
    frontier: list[PointView]  # fastest first


def plot_metric(task: TaskMeta) -> MetricInfo | None:
    """What a task's quality-vs-latency plot shows: its main metric when higher is better, else the first
    declared higher-is-better metric (the frontier needs a higher-is-better quality)."""
    main = task.metric_info(task.main_metric)
    if main.higher_is_better:
        return main
    return next((m for m in task.scalar_metrics if m.higher_is_better), None)


def point_marks(plot: ParetoPlot) -> PlotMarks:
    """Each point is a link to its model page around a circle (a diamond on the frontier) with a tooltip.
    Made here as one string rather than by a template loop: a task page at 1,000 models draws ~1,500 points,
    and the loop with its per-point objects was a third of the page's plotting time."""
    marks, front = [], []
    for p in sorted(plot.points, key=lambda p: (p.frontier, p.x if p.frontier else 0.0)):
        quality, latency = f"{p.accuracy:.3f}", f"{p.latency_ms:.3g}"
        model, href = _escape(p.model), _escape(p.href)
        label = _escape(f"{p.model}: {plot.y_label} {quality}, p50 {latency} ms")
        if p.frontier:
            front.append(PointView(model, href, f"({quality}, {latency} ms)"))
            mark = f'<g class="pt frontier" data-model="{model}"><title>{label} (on the Pareto frontier)</title>'
            mark += f'<path d="M{p.x} {p.y - 7}l7 7l-7 7l-7 -7z"/></g>'
        else:
            mark = f'<g class="pt" data-model="{model}"><title>{label}</title><circle cx="{p.x}" cy="{p.y}" r="4"/></g>'
        marks.append(f'<a href="{href}">{mark}</a>\n')
    return PlotMarks("".join(marks), len(marks), front)


def pareto_plots(
    protocol: str,
    results: Sequence[Result],
    links: Links,
    hw: Mapping[str, HwView],
    metric: MetricInfo | None,
) -> list[tuple[HwView, ParetoPlot, PlotMarks]]:
    """`metric` (see plot_metric) vs p50 latency, one plot per hardware fingerprint (timings never mix
    across hardware): (hardware, geometry, its points' markup)."""
    if metric is None:
        return []
    by_hw: dict[str, list[tuple[str, str, float, float]]] = defaultdict(list)
    for r in results:
        t = r.timing
        # A contended timing measures the machine's other work: it would put a model off the frontier.
        if r.status != "done" or t is None or t.contended:
            continue
        acc = r.metrics.get(metric.id)
        if acc is not None and isfinite(t.p50_ms) and isfinite(acc.value):  # a hand-edited inf: no point
            by_hw[t.hardware].append((r.model, "", t.p50_ms, acc.value))  # href: for the points drawn only
    ordered = sorted(by_hw.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:MAX_PARETO_PLOTS]
    out = []
    for fp, every in ordered:
        pts = [(m, links.model(m, "../"), lat, acc) for m, _, lat, acc in plotted_points(every)]
        title = f"{protocol} on hardware {fp[:8]}"
        if len(pts) < len(every):
            title += f" ({len(pts)} of {len(every)} models: the frontier and the best by {metric.label})"
        plot = pareto_plot(title, pts, y_label=metric.label)
        out.append((hw[fp], plot, point_marks(plot)))
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
# come from the same code.


def _json_text(text: str) -> str:
    """`text` as it stands between the quotes of a JSON string (escaped as json.dumps escapes it)."""
    return encode_basestring_ascii(text)[1:-1]


def _title(text: str) -> str:
    return f' title="{text}"' if text else ""
