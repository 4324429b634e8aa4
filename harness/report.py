"""Rich renderables for the terminal: leaderboard tables per task from the store.

Columns and order come from each task's declared metrics (stored with the task): the main metric with
its 95% CI first, then the task's other single-number metrics; rows sorted best first by the main metric
(lower-is-better metrics ascending). A table lists the `top` best runs (DEFAULT_TOP) and says how many
more there are: at 1,000 models a task holds thousands of runs, and printing all 150,000 of a large store took
rich minutes.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from harness.console import esc, one_paragraph, plain
from harness.data.task_options import limited_run_note
from harness.metrics import MetricInfo
from harness.metrics.registry import stored_metric_infos
from harness.records import PERCENTILE_MIN_SAMPLES
from harness.store import StoreReader
from harness.units import format_count_1dp

WITHHELD = "—"
DEFAULT_TOP = 30  # runs listed per task table (and unfinished runs listed under it); 0 lists every run
MAX_OTHER_METRICS = 2  # terminal width: the main metric + CI + this many of the task's other metrics


def _latency(row: dict[str, Any], at: str) -> str:
    """A batch-1 percentile; "—" when n is too small to support it; "*" marks a contended timing, "?" on the
    p50 one timed before the contention guard existed."""
    value = row.get(f"{at}_ms")
    if value is None:
        return "-"
    n = row.get("n_timed")
    if n is not None and n < PERCENTILE_MIN_SAMPLES[at]:
        return WITHHELD
    mark = "*" if row.get("contended") else ("?" if row.get("contended") is None and at == "p50" else "")
    return f"{value:.1f}{mark}"


def _contention_figures(row: dict[str, Any]) -> str:
    figures = [
        f"{label} {row[key]:.0%}"
        for key, label in (("run_wait_frac", "run-queue wait"), ("others_cpu_frac", "other processes' CPU"))
        if row.get(key) is not None
    ]
    return ", ".join(figures)



def _ci_range(m: dict[str, Any] | None) -> str:
    lo, hi = (m or {}).get("ci_low"), (m or {}).get("ci_high")
    return f"{lo:.3f}-{hi:.3f}" if lo is not None and hi is not None else "-"


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _weights_column(runs: list[dict[str, Any]]) -> bool:
    """Show which weights each run used when it matters: a model with several weight versions in this
    task, or runs recorded before weights were hashed."""
    done = [r for r in runs if r["status"] == "done"]
    versions: dict[str, set[str | None]] = defaultdict(set)
    for r in done:
        versions[r["model"]].add(r.get("model_weights"))
    return any(len(v) > 1 or None in v for v in versions.values())


def _value(row: dict[str, Any], metric: MetricInfo) -> str:
    m = row["metrics"].get(metric.id)
    if m is not None:
        return _fmt(m["value"], ".3f")
    return "n/a" if metric.id in row["metric_notes"] else "-"


def leaderboard_tables(
    store: StoreReader, task: str | None = None, model: str | None = None, top: int = DEFAULT_TOP
) -> list[RenderableType]:
    """Per task: finished runs sorted by the task's main metric, then the runs that were not applicable or
    failed, at most `top` of each (0: all); a declared metric that does not apply to a run's class scores
    shows n/a with the reason below."""
    from harness.data.hygiene import leak_summary

    rows = store.results_table(task)
    hygiene = store.task_hygiene()
    data_versions = store.task_data_versions()
    specs = store.task_specs()
    # Limited runs (harness run --limit) get a table of their own, titled as such: never mixed with full runs.
    by_task: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if model is None or row["model"] == model:
            by_task[(row["task"], limited_run_note(row["task_version"]) or "")].append(row)
    out: list[RenderableType] = []
    for task_name, limited in sorted(by_task):
        runs, older = _newest_per_slot(by_task[(task_name, limited)])
        infos, main_id = stored_metric_infos(specs.get(task_name))
        main = next((m for m in infos if m.id == main_id), MetricInfo(main_id, main_id))
        declared_others = [m for m in infos if m.scalar and m.id != main.id]
        others = declared_others[:MAX_OTHER_METRICS]
        multi_seed = len({r["seed"] for r in runs}) > 1
        weights = _weights_column(runs)
        several_data = len({r["data_fingerprint"] for r in runs}) > 1
        direction = "higher" if main.higher_is_better else "lower"
        title = esc(f"{task_name} — ranked by {main.label} ({direction} is better)") + (
            f" [bold yellow]LIMITED RUN: {esc(limited)}[/bold yellow]" if limited else ""
        )
        table = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
        table.add_column("model", overflow="fold", min_width=10)
        table.add_column("protocol", overflow="fold", min_width=8)
        if multi_seed:
            table.add_column("seed", justify="right")
        if several_data:
            table.add_column("data", no_wrap=True)
        if weights:
            table.add_column("weights", no_wrap=True)
        for col in (main.label, "95% CI", *(m.label for m in others)):
            table.add_column(esc(col), justify="right")  # headers may wrap; values are short
        for col in ("p50 ms", "p95", "p99", "n", "items/s", "params"):
            table.add_column(col, justify="right", no_wrap=True)
        every_done = sorted(
            (r for r in runs if r["status"] == "done"),
            key=lambda r: (main.sort_key((r["metrics"].get(main.id) or {}).get("value")), r["model"], r["protocol"]),
        )
        done = every_done[:top] if top else every_done
        notes: list[tuple[str, str]] = []
        cautions: list[str] = []
        for r in done:
            cells = [esc(r["model"]), esc(r["protocol"])] + ([str(r["seed"])] if multi_seed else [])
            cells += [f"v{esc(r['task_version'])} {r['data_fingerprint'][:8]}"] if several_data else []
            cells += [esc(r["model_weights"] or "not recorded")] if weights else []
            cells += [_value(r, main), _ci_range(r["metrics"].get(main.id)), *(_value(r, m) for m in others)]
            cells += [
                _latency(r, "p50"), _latency(r, "p95"), _latency(r, "p99"), _fmt(r["n_timed"], "d"),
                _fmt(r["items_per_s"], ",.0f"), format_count_1dp(r["params"]),
            ]  # fmt: skip
            table.add_row(*cells)
            notes += [(f"{r['model']} / {r['protocol']}: {name}", str(why)) for name, why in r["metric_notes"].items()]
            cautions += [f"{r['model']} / {r['protocol']}: {why}" for why in r["warnings"]]
        out.append(table)
        if len(done) < len(every_done):
            out.append(Text(f"  ... and {_more(len(every_done) - len(done), 'finished run')} ranked below these ({_ALL})"))
        if older:
            out.append(
                Text(
                    f"  {older:,} older run{'s' if older != 1 else ''} of a listed model, protocol and seed not shown: "
                    "each row is the newest finished one, as on the site and in compare (harness export lists every run)"
                )
            )
        if len(declared_others) > len(others):
            rest = ", ".join(m.label for m in declared_others[len(others) :])
            out.append(_line(f"  also stored: {rest} (site task pages and the metrics table show every metric)"))
        out.extend(_latency_notes(done))
        versions = data_versions.get(task_name, [])
        if len(versions) > 1:
            listed = ", ".join(f"version {v} data {fp[:8]} ({n} run{'s' if n != 1 else ''})" for v, fp, n in versions)
            out.append(
                Text.from_markup("  [bold yellow]different data:[/bold yellow] ", end="")
                + _line(f"runs of {task_name} were computed on {len(versions)} different data sets ({listed}); "
                         "compare results only within one data set (the data column).")
            )  # fmt: skip
        leaks = leak_summary(hygiene.get(task_name))
        if leaks:
            out.append(Text.from_markup("  [bold yellow]data leak:[/bold yellow] ", end="") + _line(leaks))
        for where, why in notes:
            out.append(Text.from_markup("  [dim]n/a[/dim] ", end="") + _line(f"{where}: {why}"))
        for caution in cautions:
            out.append(Text.from_markup("  [bold yellow]warning:[/bold yellow] ", end="") + _line(caution))
        unfinished = sorted((r for r in runs if r["status"] != "done"), key=lambda r: (r["status"], r["model"]))
        for r in unfinished[:top] if top else unfinished:
            reason = (r["error"] or "").splitlines()[0] if r["error"] else ""
            tag = "[dim]n/a[/dim]" if r["status"] == "not_applicable" else "[bold red]FAILED[/bold red]"
            out.append(Text.from_markup(f"  {tag} ", end="") + _line(f"{r['model']} / {r['protocol']}: {reason}"))
        if top and len(unfinished) > top:
            out.append(Text(f"  ... and {_more(len(unfinished) - top, 'run')} not applicable or failed ({_ALL})"))
    return out


_ALL = "--top 0 lists every run; --task and --model narrow the tables"


def _newest_per_slot(runs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The run the site and compare take of each (model, protocol, seed, task data): the newest finished one,
    else the newest (a re-run under a new job key, e.g. after a library upgrade, leaves the old run stored).
    Returns them in the given order and how many were left out."""
    best: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in runs:
        slot = (r["model"], r["protocol"], r["seed"], r["task_version"], r["data_fingerprint"])
        held = best.get(slot)
        if held is None or (r["status"] == "done", r["finished_at"]) > (held["status"] == "done", held["finished_at"]):
            best[slot] = r
    kept = {id(r) for r in best.values()}
    return [r for r in runs if id(r) in kept], len(runs) - len(best)


def _more(n: int, what: str) -> str:
    return f"{n:,} more {what}{'s' if n != 1 else ''}"


def _latency_notes(done: list[dict[str, Any]]) -> list[RenderableType]:
    """Legends for the marks the table used: contended timings and withheld percentiles."""
    notes: list[RenderableType] = []
    contended = [r for r in done if r.get("contended")]
    if contended:
        notes.append(
            Text(
                "  * contended: other processes competed for the CPU/GPU while this was timed (our threads waited "
                "for a CPU >= 10% of the time while others used >= 10% of our CPUs, or steal/others over the "
                "limit; see docs/store.md). Its latency "
                "measures the machine, not the model: pick, compare and the site's plots leave it out. Re-run on a "
                "quiet machine."
            )
        )
        for r in contended:
            notes.append(_line(f"    {r['model']} / {r['protocol']}: {_contention_figures(r)}"))
    if any(r.get("contended") is None and r.get("p50_ms") is not None for r in done):
        notes.append(Text("  ? unchecked: timed before the contention guard existed; whether the machine was busy is unknown."))
    withheld = sorted(
        {
            f"{at} needs >= {need} samples"
            for r in done
            for at, need in PERCENTILE_MIN_SAMPLES.items()
            if r.get("n_timed") is not None and r["n_timed"] < need and r.get(f"{at}_ms") is not None
        }
    )
    if withheld:
        notes.append(Text(f"  {WITHHELD} withheld: {'; '.join(withheld)} (n = timed batch-1 samples; raise timing.min_samples)"))
    return notes


def _line(text: str) -> Text:
    """A note under a table, one line however the names it holds were written (a stored name with a newline
    would print a second, forged line) and with their control characters shown, not sent."""
    return Text(plain(one_paragraph(text)))
