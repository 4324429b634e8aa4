"""`harness pick` (typer command function; registered in harness.cli).

Exit codes: 0 a model was recommended, 1 no candidate satisfies the constraints, 2 usage or data error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from harness.compare.policy import parse_percentile
from harness.console import esc, output_console, plain
from harness.metrics.evaluate import MAX_N_BOOT
from harness.pick import (
    Candidate,
    Constraints,
    PickResult,
    pick,
)
from harness.report import DEFAULT_TOP
from harness.store import DEFAULT_DB
from harness.units import format_bytes, format_count, parse_bytes, parse_count


def pick_command(
    task: Annotated[str, typer.Option("--task", help="Task to pick a model for.")],
    db: Annotated[Path, typer.Option("--db", help="Results database.")] = DEFAULT_DB,
    protocol: Annotated[
        str | None, typer.Option("--protocol", help="Only this protocol (e.g. linear_probe).")
    ] = None,
    max_latency_ms: Annotated[
        float | None, typer.Option("--max-latency-ms", help="Latency limit in ms (batch 1).")
    ] = None,
    at: Annotated[
        str, typer.Option("--at", help="Latency percentile for the limit and the ranking: p50, p95, p99.")
    ] = "p50",
    max_params: Annotated[
        str | None, typer.Option("--max-params", help="Parameter limit, e.g. 50M or 1.5B.")
    ] = None,
    max_memory: Annotated[
        str | None, typer.Option("--max-memory", help="Peak memory limit, e.g. 512MB or 2GB.")
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option("--metric", help="Quality metric: any registered metric. Default: the task's main metric."),
    ] = None,
    plugin: Annotated[
        list[Path] | None,
        typer.Option("--plugin", help="Plugin .py file defining metrics the task uses (repeatable)."),
    ] = None,
    hardware: Annotated[
        str | None,
        typer.Option(
            "--hardware",
            help="Hardware fingerprint (or prefix) for latency, or 'current'. Default: this machine "
            "if it has timings, else the most common one.",
        ),
    ] = None,  # fmt: skip
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level for the tie group.")] = 0.05,
    n_boot: Annotated[
        int,
        typer.Option(
            "--n-boot", min=100, max=MAX_N_BOOT, help="Paired bootstrap resamples (more tell more candidates apart)."
        ),
    ] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON (for scripts).")] = False,
    top: Annotated[
        int,
        typer.Option(
            "--top", min=0, help="Candidates listed, best first (the tie group and the pick always); 0 lists all."
        ),
    ] = DEFAULT_TOP,
) -> None:
    """Recommend the cheapest model statistically tied with the best one that meets the constraints."""
    from harness.errors import HarnessError

    if max_latency_ms is not None and not 0 < max_latency_ms < math.inf:
        raise HarnessError(
            f"--max-latency-ms must be a positive number of milliseconds, got {max_latency_ms:g}."
        )
    if hardware is not None and not hardware.strip():
        raise HarnessError("--hardware must be a hardware fingerprint (or a prefix of one) or 'current', got ''.")
    constraints = Constraints(
        max_latency_ms=max_latency_ms,
        at=parse_percentile(at, "--at"),
        max_params=parse_count(max_params) if max_params is not None else None,
        max_memory_bytes=parse_bytes(max_memory) if max_memory is not None else None,
    )
    from harness.registry import discover_metrics

    with contextlib.redirect_stdout(sys.stderr):  # a plugin's print() would go into the --json output
        result = pick(
            db, task, protocol=protocol, constraints=constraints, metric=metric, hardware=hardware, alpha=alpha,
            n_boot=n_boot, metrics=discover_metrics(plugin or []),
        )  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps(result_as_dict(result), indent=2) + "\n")
    else:
        render_pick(result, output_console(), top)
    raise typer.Exit(0 if result.recommendation is not None else 1)


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _candidate_dict(c: Candidate) -> dict[str, Any]:
    d = dataclasses.asdict(c)
    d["name"] = c.name
    d["eligible"] = c.eligible
    d["excluded_by"] = sorted(c.violations)
    return d


def result_as_dict(result: PickResult) -> dict[str, Any]:
    return _clean(
        {
            "task": result.task,
            "protocol": result.protocol,
            "metric": result.metric,
            "alpha": result.alpha,
            "hardware": result.hardware,
            "hardware_reason": result.hardware_reason,
            "constraints": dataclasses.asdict(result.constraints),
            "recommendation": _candidate_dict(result.recommendation) if result.recommendation else None,
            "tie_group": list(result.tie_group),
            "explanation": result.explanation,
            "excluded_most_by": result.excluded_most_by,
            "nearest_miss": _candidate_dict(result.nearest_miss) if result.nearest_miss else None,
            "notes": list(result.notes),
            "candidates": [_candidate_dict(c) for c in result.candidates],
        }
    )


def render_pick(result: PickResult, console: Console, top: int = DEFAULT_TOP) -> None:
    """The candidates table (the `top` best, and every member of the tie group and the nearest miss), the
    notes and the explanation. At 1,000 models a table of every candidate took longer than the pick."""
    at = result.constraints.at
    console.print(
        f"[bold]{esc(result.task)}[/]: {len(result.candidates)} candidates; latency from {result.hardware_reason}.",
        highlight=False,
    )
    several_protocols = len({c.protocol for c in result.candidates}) > 1
    table = Table()
    columns = ["model", *(["protocol"] if several_protocols else []), f"{result.metric} [95% CI]"]
    for col in [*columns, f"{at} ms", "params", "peak mem", "rank", "Pareto", "status"]:
        table.add_column(esc(col))
    chosen = result.recommendation.name if result.recommendation else None
    always = {*result.tie_group, *(c.name for c in (result.recommendation, result.nearest_miss) if c is not None)}
    listed = [c for i, c in enumerate(result.candidates) if not top or i < top or c.name in always]
    for c in listed:
        ci = f" [{c.ci_low:.3f}, {c.ci_high:.3f}]" if c.ci_low is not None and c.ci_high is not None else ""
        table.add_row(
            esc(c.model),
            *([esc(c.protocol)] if several_protocols else []),
            esc(f"{c.value:.4f}{ci}"),
            f"{c.latency_ms:.2f}" if c.latency_ms is not None else "-",
            format_count(c.params, "unknown"),
            format_bytes(c.peak_mem_mb * 2**20) if c.peak_mem_mb is not None else "-",
            str(c.rank) if c.rank is not None else "-",
            "+".join(x for x, on in (("lat", c.pareto_latency), ("size", c.pareto_size)) if on) or "-",
            _status(c, chosen, result.tie_group),
        )
    console.print(table)
    if len(listed) < len(result.candidates):
        console.print(f"... and {len(result.candidates) - len(listed):,} more candidates ({_ALL})", highlight=False)
    notes = result.notes[:top] if top else result.notes
    for note in notes:
        console.print(f"• {plain(note)}", markup=False, highlight=False)
    if len(notes) < len(result.notes):
        console.print(f"• ... and {len(result.notes) - len(notes):,} more notes ({_ALL})", highlight=False)
    style = "green" if result.recommendation else "red"
    console.print(plain(result.explanation), style=style, markup=False, highlight=False)


_ALL = "--top 0 lists them all; --json gives every candidate and note"


def _status(c: Candidate, chosen: str | None, tie_group: tuple[str, ...]) -> str:
    if c.name == chosen:
        return "[bold green]recommended[/]"
    if c.violations:
        return "[red]over " + ", ".join(sorted(c.violations)) + "[/]"
    if c.name in tie_group:
        return "tied with best" if c.tied_with else "best"
    return "worse than best"
