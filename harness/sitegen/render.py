"""Render pages from the prepared data, in worker processes when there are many.

Pages are independent, so a large site renders in a pool of forked workers that inherit the prepared
data (no pickling of the board) and write their files themselves; the parent only records the states.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jinja2

from harness.sitegen import curves, deps, pages, rows
from harness.sitegen import format as fmt
from harness.sitegen.deps import TEMPLATES
from harness.sitegen.downloads import JSON
from harness.sitegen.exports import results_json
from harness.sitegen.forking import can_fork, forked_pool, inherited
from harness.sitegen.links import HwView, Links
from harness.sitegen.ranking import Rankings
from harness.sitegen.results import Board, TaskGroup
from harness.sitegen.writer import IncrementalWriter, sync_file, untouched
from harness.store.rows import ClassDetail
from harness.units import format_count

PARALLEL_FROM_PAGES = 200  # below this a pool costs more than it saves
MAX_WORKERS = 8
PAGE_ROWS = 50  # rows of a long table printed in the page; the rest load from its data file
INDEX_ROWS = 20  # rows per leaderboard on the index; the protocol page holds them all


def template_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every name and error text comes from users; never mark it safe
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["size_buckets"] = fmt.SIZE_BUCKETS
    env.finalize = _shown  # before autoescaping: every printed string, never markup the code made
    return env


def _shown(value: Any) -> Any:
    return fmt.shown(value) if value.__class__ is str else value


@dataclass(frozen=True)
class SiteContext:
    """Everything the pages are rendered from."""

    env: jinja2.Environment
    board: Board
    rankings: Rankings
    links: Links
    hw: dict[str, HwView]
    best: dict[tuple[str, str], str]  # (task, protocol) -> run key of the best model
    details: dict[str, ClassDetail]  # per-class F1 and confusion of those runs
    aggregate_index: dict[str, list[pages.AggregateEntry]]
    common: dict[str, Any]
    signature: str  # of the whole store (pages that show a bit of everything depend on it)
    forms: dict[str, dict[str, Any]]  # task -> the pick form's data (of the task pages being rendered)
    rows: rows.RowMaker
    runs_json: str | None  # the runs of results.json (Downloads.runs_json); None: the downloads are kept
    reuse_rows: bool = True  # take unchanged task rows from the previous build's data files (TaskRowReuse)


@dataclass(frozen=True)
class PageJob:
    paths: tuple[str, ...]  # relative to the site folder; render() returns one content per path
    kind: str  # downloads | index | protocol | task | model
    name: str = ""
    inputs: str = ""  # digest of everything the files are made of


def page_jobs(ctx: SiteContext, inputs: PageInputs, downloads: bool) -> list[PageJob]:
    """The files of every page but the task pages (see task_job), the slowest first so a pool starts on
    it at once. `inputs`: made once per build for these and the task pages. downloads: whether results.json
    is rendered (Downloads.needed; its runs come in ctx.runs_json)."""
    links, board = ctx.links, ctx.board
    common = _common_digest(ctx)
    whole = deps.digest(common, ctx.signature)
    jobs = [PageJob((JSON,), "downloads", "", ctx.signature)] if downloads else []
    jobs.append(PageJob(("index.html",), "index", "", whole))
    for p in board.protocols:
        slug = links.protocols[p]
        n = len(_protocol_groups(board, ctx.rankings, p))
        paths = (f"protocols/{slug}.html", *(f"data/protocols/{slug}.{i}.js" for i in range(1, n + 1)))
        jobs.append(PageJob(paths, "protocol", p, whole))
    for m in board.models:
        path = f"models/{links.models[m.name]}.html"
        jobs.append(PageJob((path,), "model", m.name, deps.digest(common, inputs.model(ctx, m.name))))
    return jobs


def task_job(ctx: SiteContext, inputs: PageInputs, task: str, form: dict[str, Any] | None) -> PageJob:
    """The files of a task page, to render with its pick form `form` (Renderer.add(job, forms={task: form}))."""
    paths = task_paths(ctx, task)
    return PageJob(paths, "task", task, deps.digest(_common_digest(ctx), inputs.task(ctx, task, form)))


def task_paths(ctx: SiteContext, task: str) -> tuple[str, ...]:
    """The files of a task page: the page, and a data file per protocol the task has results of."""
    slug = ctx.links.tasks[task]
    n = sum(1 for p in ctx.board.protocols if (task, p) in ctx.board.by_task_protocol)
    return (f"tasks/{slug}.html", *(f"data/tasks/{slug}.{i}.js" for i in range(1, n + 1)))


def _common_digest(ctx: SiteContext) -> str:
    return deps.digest(deps.renderer_version(), ctx.common)


def page_count(board: Board) -> int:
    """How many page jobs a build has: page_jobs' and a task_job per task."""
    return 2 + len(board.protocols) + len(board.tasks) + len(board.models)


class PageInputs:
    """What the task and model pages are made of, as plain tuples to digest. A result's identity is
    its runs' (key, finished_at) and its status; it is worked out once per build and shared by its task
    page and its model page (at 150k results this digesting is a few seconds of every build)."""

    def __init__(self, board: Board, links: Links) -> None:
        self.identity = {key: deps.result_identity(r) for key, r in board.results.items()}
        # What a row shows of a model's metadata (a tuple: cheaper to digest than the dataclass).
        self.model_keys = {
            m.name: (m.name, m.family, m.modality, m.params, links.models[m.name]) for m in board.models
        }

    def task(self, ctx: SiteContext, task: str, form: dict[str, Any] | None) -> tuple[Any, ...]:
        board = ctx.board
        sections = []
        hardware: set[str] = set()
        for protocol in board.protocols:
            results = board.by_task_protocol.get((task, protocol), ())
            placements = ctx.rankings.per_task.get((task, protocol), {})
            best = ctx.best.get((task, protocol))
            sections.append(
                (
                    protocol,
                    board.snapshot.protocol_configs.get(protocol),
                    [
                        (
                            self.identity[(task, protocol, r.model)],
                            deps.placement_key(placements.get(r.model)),
                            self.model_keys[r.model],
                        )
                        for r in results
                    ],
                    best,
                    ctx.details.get(best) if best else None,
                )
            )
            hardware.update(r.timing.hardware for r in results if r.timing)
        return (
            board.task(task),
            board.superseded_runs.get(task, 0),
            sections,
            [ctx.hw[fp] for fp in sorted(hardware)],
            form,
        )

    def model(self, ctx: SiteContext, model: str) -> tuple[Any, ...]:
        board = ctx.board
        results = board.by_model.get(model, ())
        rows = []
        for r in results:
            p = ctx.rankings.per_task.get((r.task, r.protocol), _NO_PLACEMENTS).get(r.model)
            rows.append(
                (
                    r.task,
                    ctx.links.tasks[r.task],
                    board.main_metric(r.task),
                    r.protocol,
                    self.identity[(r.task, r.protocol, model)],
                    deps.placement_key(p if p and p.tested else None),
                )
            )
        summary = pages.model_summary(ctx.aggregate_index.get(model, []))
        timed = sorted({r.timing.hardware for r in results if r.timing is not None})
        return (board.model_meta[model], rows, summary, [ctx.hw[fp] for fp in timed])


_NO_PLACEMENTS: dict[str, Any] = {}


Files = tuple[tuple[str, dict[str, Any]], ...]  # per path of a job: its content, and what to record with it


def render(ctx: SiteContext, job: PageJob, out: Path, before: Sequence[dict[str, Any] | None]) -> Files:
    """The files of `job`; `before`: what the previous build recorded of each (see TaskRowReuse)."""
    if job.kind == "downloads":
        assert ctx.runs_json is not None
        return _plain(results_json(ctx.board.snapshot, ctx.runs_json, ctx.rankings))
    if job.kind == "index":
        return _plain(_index(ctx))
    if job.kind == "protocol":
        return _plain(*_protocol_page(ctx, job.name))
    if job.kind == "task":
        reused = before if ctx.reuse_rows else [None] * len(job.paths)
        return _task_page(ctx, job.name, TaskRowReuse(out, job.paths, reused, _task_rows_key(ctx, job.name)))
    return _plain(_model_page(ctx, job.name))


def _plain(*contents: str) -> Files:
    return tuple((content, {}) for content in contents)


class Renderer:
    """Renders and syncs the files of every job whose inputs changed (the others are kept as they are).
    `start` forks one pool of workers, which inherit the context as it is then (no pickling of the
    board), and hands them the jobs; `add` hands them one more job with what it needs beyond that context
    (a task page's pick form, made in this process while the workers render). In this process instead
    when asked for (workers=1), for small sites (a pool costs more than it saves) and where fork is
    unavailable. Use as a context manager: leaving it early (an error) stops the workers."""

    def __init__(self, writer: IncrementalWriter, workers: int | None, n_pages: int) -> None:
        self.writer = writer
        self.n = workers if workers is not None else min(os.cpu_count() or 1, MAX_WORKERS)
        small = workers is None and n_pages < PARALLEL_FROM_PAGES
        self.parallel = self.n > 1 and not small and can_fork()
        self.rendered = 0  # jobs whose inputs changed
        self._ctx: SiteContext | None = None
        self._pool: Any = None
        self._pending: list[Any] = []  # AsyncResults of batches

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def start(self, ctx: SiteContext, jobs: Sequence[PageJob]) -> None:
        """Render `jobs` from `ctx` (the context every later `add` starts from)."""
        self._ctx = ctx
        todo = self._todo(jobs)
        if not self.parallel:
            for job in todo:
                self._render_here(ctx, job)
            return
        n = self.n
        head, rest = todo[:1], todo[1:]  # the slowest job alone, so another worker takes the pages
        for batch in [head] + [list(rest[i :: n * 4]) for i in range(n * 4)]:
            if batch:
                self._send([(job, self._before(job), {}) for job in batch])

    def add(self, job: PageJob, **changes: Any) -> None:
        """Render one more job from the started context with these fields replaced."""
        assert self._ctx is not None, "Renderer.add before Renderer.start"
        if not self._todo([job]):
            return
        if not self.parallel:
            self._render_here(replace(self._ctx, **changes), job)
        else:
            self._send([(job, self._before(job), changes)])

    def finish(self) -> int:
        """Wait for every job; returns how many were rendered."""
        for result in self._pending:
            for path, entry, written in result.get():
                self.writer.record(path, entry, written)
        self._pending = []
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None
        return self.rendered

    def _todo(self, jobs: Sequence[PageJob]) -> list[PageJob]:
        todo = [job for job in jobs if not self.writer.reuse(job.paths, job.inputs)]
        self.rendered += len(todo)
        return todo

    def _before(self, job: PageJob) -> list[dict[str, Any] | None]:
        return [self.writer.previous(p) for p in job.paths]

    def _render_here(self, ctx: SiteContext, job: PageJob) -> None:
        files = render(ctx, job, self.writer.out, self._before(job))
        for path, (content, extra) in zip(job.paths, files, strict=True):
            self.writer.write(path, content, job.inputs, extra)

    def _send(self, batch: list[tuple[PageJob, list[dict[str, Any] | None], dict[str, Any]]]) -> None:
        if self._pool is None:
            assert self._ctx is not None
            self._pool = forked_pool(self.n, (self._ctx, self.writer.out))  # the workers fork here
        self._pending.append(self._pool.apply_async(_render_batch, (batch,)))


def _render_batch(
    batch: list[tuple[PageJob, list[dict[str, Any] | None], dict[str, Any]]],
) -> list[tuple[str, dict[str, Any], bool]]:
    started, out = inherited()
    synced = []
    for job, before, changes in batch:
        ctx = replace(started, **changes) if changes else started
        for path, (content, extra), previous in zip(job.paths, render(ctx, job, out, before), before, strict=True):
            synced.append((path, *sync_file(out, path, content, previous, job.inputs, extra)))
    return synced


def rows_script(table_id: str, rows: Sequence[str]) -> str:
    """A table's data file: every row's HTML, handed to site.js. A script rather than JSON because
    browsers refuse fetch() on file:// pages, while a script element loads there as over HTTP."""
    return f"{_rows_prefix(table_id)}{json.dumps(list(rows), separators=(',', ':'))}{_ROWS_END}"


def encoded_rows_script(table_id: str, encoded: Sequence[str]) -> str:
    """rows_script of rows given as the text of their JSON strings (RowMaker.task_rows): the same bytes."""
    return f"{_rows_prefix(table_id)}{_json_array(encoded)}{_ROWS_END}"


def decoded_rows(encoded: Sequence[str]) -> list[str]:
    """The HTML of rows given as the text of their JSON strings."""
    rows = json.loads(_json_array(encoded))
    assert isinstance(rows, list)
    return rows


def _json_array(encoded: Sequence[str]) -> str:
    """The JSON array of strings given as the text between their quotes (as json.dumps separates them)."""
    return f'["{_BETWEEN_ROWS.join(encoded)}"]' if encoded else "[]"


def _rows_prefix(table_id: str) -> str:
    return f"harnessRows({json.dumps(table_id)},"


_ROWS_END = ");\n"
_BETWEEN_ROWS = '","'
_ENCODED_ROW_END = "</tr>\\n"  # how every task row ends (RowMaker.task_rows), as the text of its JSON string


def read_encoded_rows(path: Path, table_id: str) -> list[str] | None:
    """The task rows of a data file encoded_rows_script wrote, as the text of their JSON strings (not
    re-encoded: a build that keeps them writes them back as they are), or None when it holds anything else.
    The file is parsed, so that nothing but whole JSON strings is copied into the next build's file; each
    row ends with "</tr>\\n", and a quote after an "n" is not escaped: each '","' after a row's end
    separates two rows."""
    try:
        text = path.read_text(encoding="utf-8")
        prefix = _rows_prefix(table_id)
        if not (text.startswith(prefix) and text.endswith(_ROWS_END)):
            return None
        array = text[len(prefix) : -len(_ROWS_END)]
        decoded = json.loads(array)
    except (OSError, ValueError):
        return None
    if decoded == []:
        return []
    if not (isinstance(decoded, list) and array.startswith('["') and array.endswith('"]')):
        return None
    rows = array[2:-2].split(_BETWEEN_ROWS)
    if len(rows) != len(decoded) or not all(row.endswith(_ENCODED_ROW_END) for row in rows):
        return None
    return rows


ROW_KEYS = "rows"  # recorded with a task table's data file: its rows' keys (RowMaker.row_key), in order
ROWS_MADE_FROM = "rows_from"  # ... and the digest of what all its row bodies share (_task_rows_key)


class TaskRowReuse:
    """The row bodies (RowMaker.task_rows) of a task page's tables as the previous build wrote them, by row
    key, as the text of JSON strings. A table's are read back from its data file only when the previous
    build recorded their keys, made them from the same renderer, task and hardware views, and nobody touched
    the file since: the same rule, and the same trust in the state file, as for keeping a whole page
    (IncrementalWriter.reuse)."""

    def __init__(self, out: Path, paths: Sequence[str], before: Sequence[dict[str, Any] | None], made_from: str):
        self.out, self.paths, self.before, self.made_from = out, paths, before, made_from

    def bodies(self, table: int) -> dict[str, str]:
        """Row key -> body of table `table` (1-based: the page's data file of that number), JSON-encoded."""
        entry = self.before[table] if table < len(self.before) else None
        if not isinstance(entry, dict) or entry.get(ROWS_MADE_FROM) != self.made_from:
            return {}
        keys = entry.get(ROW_KEYS)
        path = self.out / self.paths[table]
        if not isinstance(keys, list) or not all(k.__class__ is str for k in keys) or not untouched(path, entry):
            return {}  # (a state file may be forged)
        rows = read_encoded_rows(path, f"t{table}")
        if rows is None or len(rows) != len(keys):
            return {}
        bodies = {}
        for key, row in zip(keys, rows, strict=True):
            # The model cell ends the row's head (names are escaped; JSON leaves "</th>" as it is).
            _, sep, body = row.partition("</th>")
            if sep:
                bodies[key] = body
        return bodies

    def record(self, keys: list[str]) -> dict[str, Any]:
        return {ROW_KEYS: keys, ROWS_MADE_FROM: self.made_from}


def _task_rows_key(ctx: SiteContext, task: str) -> str:
    """What every row body of a task page shares: the renderer, the task's metadata (its metric columns)
    and the hardware views (the hardware cell)."""
    return deps.digest(deps.renderer_version(), ctx.board.task(task), sorted(ctx.hw.items()))


def _protocol_groups(board: Board, rankings: Rankings, protocol: str) -> list[TaskGroup]:
    return [g for g in board.groups if (g.name, protocol) in rankings.aggregate]


def _index(ctx: SiteContext) -> str:
    board = ctx.board
    folded = _curve_points(board)
    shown = (
        (g, p)
        for g in board.groups
        for p in board.protocols
        if (g.name, p) in ctx.rankings.aggregate and p not in folded.get(g.name, ((), ()))[0]
    )
    boards = [
        (rows.board_table(board, ctx.rankings, ctx.links, g, p, "", limit=INDEX_ROWS), f"b{i}")
        for i, (g, p) in enumerate(shown, 1)
    ]
    return ctx.env.get_template("index.html").render(
        root="",
        boards=boards,
        folded=[
            (g, protocols, [(t, ctx.links.task(t, "")) for t in tasks])
            for g in board.groups
            if g.name in folded
            for protocols, tasks in [folded[g.name]]
        ],
        inline_limit=INDEX_ROWS,
        page_size=INDEX_ROWS,
        tasks=pages.task_list(board, ctx.links, ""),
        n_models=len(board.models),
        provenance=pages.provenance(board, ctx.hw),
        **ctx.common,
    )


def _curve_points(board: Board) -> dict[str, tuple[list[str], list[str]]]:
    """group -> (protocols that, on every task of the group where they ran, are a smaller point of a learning
    curve (a k-series member below its largest size), fewest labelled examples first; the tasks they ran on).
    The index folds their tables into one line: a k = 1, 2, 4, 16 series would otherwise add four near-identical
    tables per group; the task pages plot them as curves and the protocol pages keep their full tables."""
    smaller: dict[str, dict[str, int]] = {}
    for task in board.task_meta:
        for _, members in curves.series(board, task):
            smaller.setdefault(task, {}).update(members[:-1])
    out: dict[str, tuple[list[str], list[str]]] = {}
    for g in board.groups:
        folded: list[tuple[int, str]] = []
        tasks: set[str] = set()
        for protocol in board.protocols:
            ran = [t for t in g.tasks if (t, protocol) in board.by_task_protocol]
            if ran and all(protocol in smaller.get(t, {}) for t in ran):
                folded.append((min(smaller[t][protocol] for t in ran), protocol))
                tasks.update(ran)
        if folded:
            out[g.name] = ([p for _, p in sorted(folded)], [t for t in g.tasks if t in tasks])
    return out


def _protocol_page(ctx: SiteContext, protocol: str) -> tuple[str, ...]:
    slug = ctx.links.protocols[protocol]
    tables = [
        rows.board_table(ctx.board, ctx.rankings, ctx.links, g, protocol, "../")
        for g in _protocol_groups(ctx.board, ctx.rankings, protocol)
    ]
    html = ctx.env.get_template("protocol.html").render(
        root="../", protocol=protocol, tables=tables, slug=slug, page_size=PAGE_ROWS, **ctx.common
    )
    return (html, *(rows_script(f"t{i}", t.rows) for i, t in enumerate(tables, 1)))


def _task_page(ctx: SiteContext, task: str, reuse: TaskRowReuse) -> Files:
    board = ctx.board
    meta = board.task(task)
    slug = ctx.links.tasks[task]
    form = ctx.forms.get(task)
    pick_ids = {(c[0], c[1]): str(i) for i, c in enumerate(form["candidates"])} if form else {}
    plot_metric = rows.plot_metric(meta)
    sections: list[dict[str, Any]] = []
    for protocol in board.protocols:
        results = board.by_task_protocol.get((task, protocol))
        if not results:
            continue
        best_key = ctx.best.get((task, protocol))
        pick = [pick_ids.get((r.model, r.protocol), "") for r in results]
        encoded, keys = ctx.rows.task_rows(results, pick, reuse.bodies(len(sections) + 1))
        sections.append(
            {
                "protocol": protocol,
                "rows": decoded_rows(encoded[:PAGE_ROWS]),  # printed in the page; the data file has them all
                "encoded": encoded,
                "keys": keys,
                "total": len(results),
                "rows_src": f"../data/tasks/{slug}.{len(sections) + 1}.js",
                "best": results[0].model if best_key else None,
                "best_href": ctx.links.model(results[0].model, "../"),
                "classes": pages.class_view(meta, ctx.details.get(best_key)) if best_key else None,
                "plots": rows.pareto_plots(protocol, results, ctx.links, ctx.hw, plot_metric),
                "contended": sum(1 for r in results if r.status == "done" and r.timing and r.timing.contended),
            }
        )
    html = ctx.env.get_template("task.html").render(
        root="../",
        task=meta,
        main_metric=board.main_info(task),
        metric_columns=meta.scalar_metrics,
        plot_label=plot_metric.label if plot_metric else "",
        sections=sections,
        page_size=PAGE_ROWS,
        hardware=pages.task_hardware(board, task, ctx.hw),
        superseded=board.superseded_runs.get(task, 0),
        pick=_pick_view(ctx, form),
        curves=curves.curve_plots(board, task, ctx.links),
        **ctx.common,
    )
    data = ((encoded_rows_script(f"t{i}", s["encoded"]), reuse.record(s["keys"])) for i, s in enumerate(sections, 1))
    return ((html, {}), *data)


def _pick_view(ctx: SiteContext, form: dict[str, Any] | None) -> dict[str, Any] | None:
    if not form or not form["candidates"]:
        return None
    public = {k: v for k, v in form.items() if k != "cache_keys"}
    return {
        "json": script_json(public),
        "hardware": [ctx.hw[fp] for fp in form["hardware"] if fp in ctx.hw],
        "protocols": sorted({c[1] for c in form["candidates"]}),
        "n": len(form["candidates"]),
    }


def script_json(data: Any) -> str:
    """JSON safe inside <script type="application/json">: no "<", ">" or "&" (a name like
    "</script>" cannot end the element)."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _model_page(ctx: SiteContext, model: str) -> str:
    board = ctx.board
    results = board.by_model.get(model, ())
    html_rows = ctx.rows.model_rows(results)
    meta = board.model_meta[model]
    return ctx.env.get_template("model.html").render(
        root="../",
        model=meta,
        params=format_count(meta.params, fmt.DASH),
        summary=pages.model_summary(ctx.aggregate_index.get(model, [])),
        rows=html_rows,
        hardware=[ctx.hw[fp] for fp in sorted({r.timing.hardware for r in results if r.timing is not None})],
        latency=pages.latency_summary(results, ctx.hw),
        **ctx.common,
    )
