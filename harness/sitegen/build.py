"""store -> static site: load in bulk, rank, render every page, write only what changed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from harness.errors import HarnessError
from harness.sitegen import format as fmt
from harness.sitegen import pages
from harness.sitegen.exports import results_csv, results_json
from harness.sitegen.load import StoreReader
from harness.sitegen.ranking import RankingConfig, Rankings, compute_rankings
from harness.sitegen.results import Board, build_board
from harness.sitegen.slugs import slugify_all
from harness.sitegen.writer import IncrementalWriter

TEMPLATES = Path(__file__).resolve().parent.parent / "site_templates"
STATIC_FILES = ("site.css", "site.js")


@dataclass(frozen=True)
class BuildStats:
    out: Path
    written: tuple[str, ...]  # paths relative to `out`
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]
    rank_groups_computed: int  # tie-group computations not served from the previous build's cache
    seconds: dict[str, float] = field(default_factory=dict)  # load, rank, render_write, total

    @property
    def index(self) -> Path:
        return self.out / "index.html"

    @property
    def files(self) -> int:
        return len(self.written) + len(self.unchanged)


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


def build_site(db: Path, out: Path, *, ranking: RankingConfig | None = None) -> BuildStats:
    """Build (or update) the static site for the results in `db` under `out`."""
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    writer = IncrementalWriter(out)
    with StoreReader(db) as reader:
        snapshot = reader.snapshot()
        if not snapshot.runs:
            raise HarnessError(f"{db} has no runs yet; run a suite first (harness run suites/demo.yaml), then build the site.")
        board = build_board(snapshot)
        seconds["load"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        cache = writer.extra.get("ranking_cache")
        rankings = compute_rankings(board, reader, ranking or RankingConfig(), cache if isinstance(cache, dict) else None)
        seconds["rank"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        best = _best_results(board)
        details = reader.class_details(
            (key, board.task(task).labels) for (task, _), key in best.items()
        )
    links = pages.Links(
        models=slugify_all(m.name for m in board.models),
        tasks=slugify_all(t.name for t in board.tasks),
        protocols=slugify_all(board.protocols),
    )
    env = template_env()
    hw = pages.hw_views(board.hardware, {r.timing.hardware for r in board.results.values() if r.timing})
    views = pages.result_views(board, rankings, links, hw)
    common = {
        "db_name": Path(db).name,
        "protocols": board.protocols,
        "protocol_slugs": links.protocols,
        "modalities": sorted({m.modality or "unknown" for m in board.models}),
    }
    _write_index(writer, env, board, rankings, links, hw, common)
    for protocol in board.protocols:
        html = env.get_template("protocol.html").render(
            root="../", table=pages.board_table(board, rankings, links, protocol, "../", None), **common
        )
        writer.write(f"protocols/{links.protocols[protocol]}.html", html)
    for task in board.tasks:
        html = _task_page(env, board, links, hw, views, task.name, best, details, common)
        writer.write(f"tasks/{links.tasks[task.name]}.html", html)
    agg_index = pages.aggregate_index(rankings)
    for model in board.models:
        html = _model_page(env, board, hw, views, model.name, agg_index.get(model.name, []), common)
        writer.write(f"models/{links.models[model.name]}.html", html)
    for name in STATIC_FILES:
        writer.write(f"static/{name}", (TEMPLATES / "static" / name).read_bytes())
    writer.write("results.csv", results_csv(snapshot))
    writer.write("results.json", results_json(snapshot, rankings))
    stats = writer.finish(extra={"ranking_cache": dict(rankings.cache)})
    seconds["render_write"] = time.perf_counter() - t2
    seconds["total"] = time.perf_counter() - t0
    return BuildStats(
        out=Path(out),
        written=tuple(stats.written),
        unchanged=tuple(stats.unchanged),
        removed=tuple(stats.removed),
        rank_groups_computed=rankings.tests_run,
        seconds=seconds,
    )


def _best_results(board: Board) -> dict[tuple[str, str], str]:
    """(task, protocol) -> run key of the model with the best main metric (lists are sorted best first)."""
    best = {}
    for key, results in board.by_task_protocol.items():
        top = results[0] if results else None
        if top is not None and top.status == "done":
            best[key] = top.representative.key
    return best


def _write_index(
    writer: IncrementalWriter,
    env: jinja2.Environment,
    board: Board,
    rankings: Rankings,
    links: pages.Links,
    hw: dict[str, pages.HwView],
    common: dict[str, Any],
) -> None:
    html = env.get_template("index.html").render(
        root="",
        boards=[pages.board_table(board, rankings, links, p, "", pages.INDEX_TOP_MODELS) for p in board.protocols],
        tasks=pages.task_list(board, links, ""),
        n_models=len(board.models),
        provenance=pages.provenance(board, hw),
        **common,
    )
    writer.write("index.html", html)


def _task_page(
    env: jinja2.Environment,
    board: Board,
    links: pages.Links,
    hw: dict[str, pages.HwView],
    views: dict[tuple[str, str, str], pages.ResultView],
    task: str,
    best: dict[tuple[str, str], str],
    details: dict[str, Any],
    common: dict[str, Any],
) -> str:
    meta = board.task(task)
    sections = []
    for protocol in board.protocols:
        results = board.by_task_protocol.get((task, protocol))
        if not results:
            continue
        best_key = best.get((task, protocol))
        sections.append(
            {
                "protocol": protocol,
                "rows": [views[(task, protocol, r.model)] for r in results],
                "best": results[0].model if best_key else None,
                "best_href": links.model(results[0].model, "../"),
                "classes": pages.class_view(meta, details.get(best_key)) if best_key else None,
                "plots": pages.pareto_plots(protocol, results, links, hw),
            }
        )
    return env.get_template("task.html").render(
        root="../",
        task=meta,
        main_metric=board.main_metric(task),
        sections=sections,
        hardware=pages.task_hardware(board, task, hw),
        superseded=board.superseded_runs.get(task, 0),
        **common,
    )


def _model_page(
    env: jinja2.Environment,
    board: Board,
    hw: dict[str, pages.HwView],
    views: dict[tuple[str, str, str], pages.ResultView],
    model: str,
    aggregate: list[tuple[str, Any, int]],
    common: dict[str, Any],
) -> str:
    results = board.by_model.get(model, ())
    rows = [views[(r.task, r.protocol, r.model)] for r in results]
    return env.get_template("model.html").render(
        root="../",
        model=board.model_meta[model],
        params=fmt.params(board.model_meta[model].params),
        summary=pages.model_summary(aggregate),
        rows=rows,
        hardware=sorted({r.hw for r in rows if r.hw is not None}, key=lambda h: h.id),
        latency=pages.latency_summary(results, hw),
        **common,
    )
