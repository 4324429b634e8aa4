"""store -> static site: load in bulk, rank, render the pages whose inputs changed, write only what changed.

An unchanged store (same signature, same renderer) returns before loading anything."""

from __future__ import annotations

import gc
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from harness.errors import HarnessError
from harness.metrics import MetricRegistry
from harness.sitegen import deps, pages, pickform
from harness.sitegen.charts import heat_css
from harness.sitegen.downloads import CSV, Downloads
from harness.sitegen.links import Links, hw_views
from harness.sitegen.ranking import RankingConfig, Rankings, SharedResamples, compute_rankings
from harness.sitegen.render import (
    TEMPLATES,
    PageInputs,
    PageJob,
    Renderer,
    SiteContext,
    page_count,
    page_jobs,
    task_job,
    task_paths,
    template_env,
)
from harness.sitegen.results import Board, build_board
from harness.sitegen.rows import RowMaker
from harness.sitegen.slugs import slugify_all
from harness.sitegen.writer import IncrementalWriter, WriteStats, site_lock
from harness.store import StoreReader, run_cache

STATIC_FILES = ("site.css", "site.js")
HEAT_CSS = "static/heat.css"


@dataclass(frozen=True)
class BuildStats:
    out: Path
    written: tuple[str, ...]  # paths relative to `out`
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]
    rank_groups_computed: int  # tie-group computations not served from the previous build's cache
    pages_rendered: int  # page jobs whose inputs changed (each job: a page and its data files)
    seconds: dict[str, float] = field(
        default_factory=dict
    )  # load, rank, prepare, render (+ downloads), total

    @property
    def index(self) -> Path:
        return self.out / "index.html"


def build_site(
    db: Path,
    out: Path,
    *,
    ranking: RankingConfig | None = None,
    workers: int | None = None,
    metrics: MetricRegistry | None = None,
    progress: Callable[[str], None] | None = None,
    full: bool = False,
) -> BuildStats:
    """Build (or update in place) the static site for the results in `db` under `out`.

    full: reuse nothing the previous build made (its pages and rows, rankings, pick forms, the cached copy of
    the store's runs): read every run from the store and render every page. An incremental build takes a run
    as unchanged while its (key, status, finished_at) are, which holds for every store harness writes; a
    store edited by other means needs this.
    workers: processes rendering pages (default: one per CPU, at most 8; 1 renders in this process).
    progress: called with what the build does next, at the start of each phase of a build that loads
    the store (e.g. for a status line; a large store takes tens of seconds).
    """
    out = Path(out)
    created = [p for p in (out, *out.parents) if not p.exists()]  # the folders this build makes
    with site_lock(out):  # outside the try: a build refused for another one's lock removes nothing
        try:
            with _gc_paused():
                return _build(Path(db), out, ranking or RankingConfig(), workers, metrics, progress or _quiet, full)
        except BaseException as exc:
            if created:  # a failed first build leaves no half-written site (an existing one is updated in place)
                shutil.rmtree(out, ignore_errors=True)
                for folder in created[1:]:  # the folders made for it, unless something else was put there
                    try:
                        folder.rmdir()
                    except OSError:
                        break
            if isinstance(exc, (TypeError, ValueError)):
                if cache := run_cache.for_store(Path(db)):  # the copy may have held the value: the next build reads the store
                    cache.drop()
                _blame_a_stored_value(Path(db))
            raise


def _blame_a_stored_value(db: Path) -> None:
    """A HarnessError naming the table, column, row and value when the store holds text where a number
    belongs (a hand-edited store), the likely cause of a TypeError or ValueError while rendering; checked
    only after a build failed, as it costs a scan of every numeric column (see StoreReader.check_stored_numbers)."""
    with StoreReader(db) as reader:
        reader.check_stored_numbers()


def _quiet(step: str) -> None:
    pass


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The build makes millions of small acyclic objects (tuples, dicts, strings); the cyclic collector
    re-scanning them over and over cost a third of the time. Nothing here forms cycles worth collecting."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _build(
    db: Path,
    out: Path,
    ranking: RankingConfig,
    workers: int | None,
    metrics: MetricRegistry | None,
    progress: Callable[[str], None],
    full: bool,
) -> BuildStats:
    clock = _Clock()
    writer = IncrementalWriter(out, trust_previous=not full)
    with StoreReader(db) as reader:
        # Nothing the site shows changed, and nobody touched its files: done without loading anything.
        signature = deps.digest(reader.signature(), deps.renderer_version(), asdict(ranking), db.name)
        if not full and writer.extra.get("inputs") == signature and writer.reuse_all():
            clock.lap("load")
            stats = writer.finish(extra=writer.extra)
            return _stats(out, stats, 0, 0, clock)
        progress(f"Reading the results in {db.name}")
        cache = run_cache.for_store(db)
        if full and cache:
            cache.drop()  # read every run from the store; the copy is written again from what was read
        snapshot = reader.snapshot(cache)
        if not snapshot.runs:
            raise HarnessError(
                f"{db} has no runs yet; run a suite first (harness run suites/demo.yaml), then build the site."
            )
        # One BLAS/OpenMP thread from here on: the matrices (n_boot x examples) are small, and whenever
        # another process holds a core (the downloads', the render workers, anyone's) idle threads spin
        # or wait on each other. At 150k runs: ranking took the same 2.5 s with two threads for 1.6x the
        # CPU, and 7-11 s beside a busy process; the pick forms 8.2 CPU-s instead of 4.3 beside the workers.
        with (
            threadpool_limits(limits=1),
            Downloads(writer, snapshot, signature, fork=workers != 1, cache=cache) as downloads,
        ):
            board = build_board(snapshot)
            clock.lap("load")
            previous = writer.extra.get("ranking_cache") if not full else None
            shared = SharedResamples(reader, ranking.n_boot, ranking.seed)  # predictions, bootstrap vectors
            old = previous if isinstance(previous, dict) else None
            progress(
                f"Ranking {len(snapshot.runs):,} runs: {len(board.models):,} models on "
                f"{len(board.by_task_protocol):,} task tables (paired tests)"
            )
            rankings = compute_rankings(board, reader, ranking, old, metrics, shared)
            clock.lap("rank")
            progress(f"Rendering {page_count(board):,} pages")
            best = _best_runs(board)
            details = reader.class_details((key, board.task(task).labels) for (task, _), key in best.items())
            ctx = replace(_context(board, rankings, signature, db.name), best=best, details=details)
            inputs = PageInputs(board, ctx.links)
            jobs = page_jobs(ctx, inputs, downloads=downloads.needed)
            writer.claim(_site_paths(ctx, jobs, downloads.needed))  # before any is written: refuses a user's file
            ctx = replace(ctx, runs_json=downloads.runs_json(), reuse_rows=not full)  # waits for the downloads' process
            with Renderer(writer, workers, page_count(board)) as renderer:
                # Every page but the task pages renders in workers while this process makes the pick forms;
                # each task page is handed to them as soon as its form is made.
                renderer.start(ctx, jobs)
                clock.lap("prepare")
                cached = writer.extra.get("pick_cache") if not full else None
                pick_cache = dict(cached) if isinstance(cached, dict) else {}
                forms = {}
                for task, form in pickform.iter_forms(board, reader, ranking, pick_cache, metrics, shared):
                    forms[task] = form
                    renderer.add(task_job(ctx, inputs, task, form), forms={task: form})
                del shared  # its predictions and vectors are not needed by the pages
                clock.lap("pick")
                rendered = renderer.finish()
            downloads.finish()
    for name in STATIC_FILES:
        writer.write(f"static/{name}", (TEMPLATES / "static" / name).read_bytes())
    writer.write(HEAT_CSS, heat_css())
    keep = _used_pick_keys(forms)
    used = {k: v for k, v in pick_cache.items() if k in keep}
    stats = writer.finish(extra={"ranking_cache": dict(rankings.cache), "pick_cache": used, "inputs": signature})
    clock.lap("render")
    return _stats(out, stats, rankings.groups_computed, rendered, clock)


def _context(board: Board, rankings: Rankings, signature: str, db_name: str) -> SiteContext:
    """What the pages are rendered from, without the task pages' parts (best runs, their per-class
    details, the pick forms: `replace` them in)."""
    links = Links(
        models=slugify_all(m.name for m in board.models),
        tasks=slugify_all(t.name for t in board.tasks),
        protocols=slugify_all(board.protocols),
        groups=slugify_all(g.name for g in board.groups),
    )
    hw = hw_views(board.hardware, {r.timing.hardware for r in board.results.values() if r.timing})
    return SiteContext(
        env=template_env(),
        board=board,
        rankings=rankings,
        links=links,
        hw=hw,
        best={},
        details={},
        aggregate_index=pages.aggregate_index(rankings),
        common={
            "db_name": db_name,
            "protocols": board.protocols,
            "protocol_slugs": links.protocols,
            "modalities": sorted({m.modality or "unknown" for m in board.models}),
        },
        signature=signature,
        forms={},
        rows=RowMaker(board, rankings, links, hw),
        runs_json=None,
    )


def _stats(out: Path, stats: WriteStats, groups_computed: int, rendered: int, clock: _Clock) -> BuildStats:
    return BuildStats(
        out=out,
        written=tuple(stats.written),
        unchanged=tuple(stats.unchanged),
        removed=tuple(stats.removed),
        rank_groups_computed=groups_computed,
        pages_rendered=rendered,
        seconds=clock.laps | {"total": clock.total()},
    )


def _site_paths(ctx: SiteContext, jobs: list[PageJob], downloads: bool) -> list[str]:
    """Every file the build writes: the pages' (those of `jobs`, and every task page's), results.csv when the
    downloads are made (results.json is a job), the static files."""
    paths = [path for job in jobs for path in job.paths]
    paths += [path for task in ctx.board.tasks for path in task_paths(ctx, task.name)]
    return [*paths, *([CSV] if downloads else []), *(f"static/{name}" for name in STATIC_FILES), HEAT_CSS]


def _used_pick_keys(forms: dict[str, dict[str, Any]]) -> set[str]:
    return {k for form in forms.values() for k in form.get("cache_keys", ())}


def _best_runs(board: Board) -> dict[tuple[str, str], str]:
    """(task, protocol) -> run key of the model with the best main metric (lists are sorted best first)."""
    return {
        key: results[0].representative.key
        for key, results in board.by_task_protocol.items()
        if results and results[0].status == "done"
    }


class _Clock:
    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self.last
        self.last = now

    def total(self) -> float:
        return time.perf_counter() - self.start
