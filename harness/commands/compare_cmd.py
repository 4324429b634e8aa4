"""`harness compare` and `harness export-baseline` (typer command functions; registered in harness.cli).

Exit codes of compare: 0 no regression, 1 significant regression (significance after the Holm correction
across all pairs unless --correction none; or a required model/task missing,
or a candidate run failed), 2 usage or data error (raised as HarnessError; the CLI prints it).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from harness.compare import (
    FORMATS,
    compare_results,
    load_policy,
    load_results,
    render_json,
    render_junit,
    render_markdown,
    render_table,
    write_baseline,
)
from harness.compare.policy import parse_correction, parse_percentile
from harness.console import one_paragraph, output_console, plain
from harness.errors import HarnessError, close_match
from harness.outfile import check_out, write_out
from harness.store import DEFAULT_DB


def compare(
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="Baseline results: a .db results database or a .json file from export-baseline.",
        ),
    ] = None,
    candidate: Annotated[
        Path | None, typer.Option("--candidate", help="Candidate results (.db or .json). Default: --db.")
    ] = None,
    db: Annotated[
        Path, typer.Option("--db", help="Database used for a side given only by a label.")
    ] = DEFAULT_DB,
    baseline_label: Annotated[
        str | None,
        typer.Option(
            "--baseline-label", help="Select baseline runs: label:X, suite:X, git:HASH or a bare name."
        ),
    ] = None,
    candidate_label: Annotated[
        str | None,
        typer.Option("--candidate-label", help="Select candidate runs (same syntax as --baseline-label)."),
    ] = None,
    task: Annotated[str | None, typer.Option("--task", help="Compare only this task.")] = None,
    policy_file: Annotated[
        Path | None, typer.Option("--policy", help="YAML policy file (keys as the flags below).")
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option("--metric", help="Gated metric: any registered metric. Default: each task's main metric."),
    ] = None,
    plugin: Annotated[
        list[Path] | None,
        typer.Option("--plugin", help="Plugin .py file defining metrics the tasks use (repeatable)."),
    ] = None,
    max_drop: Annotated[
        float | None, typer.Option("--max-drop", help="Tolerated significant drop, e.g. 0.01.")
    ] = None,
    alpha: Annotated[float | None, typer.Option("--alpha", help="Significance level (default 0.05).")] = None,
    correction: Annotated[
        str | None,
        typer.Option(
            "--correction",
            help="Multiple-testing correction across the gate tests of all pairs: holm (default; Holm-Bonferroni, "
            "so many pairs do not fail by chance) or none (each pair at alpha on its own). Both p-values are shown.",
        ),
    ] = None,
    max_latency_ratio: Annotated[
        float | None,
        typer.Option(
            "--max-latency-ratio",
            help="Fail when slower than this ratio beyond noise (e.g. 1.2). Default: report only.",
        ),
    ] = None,
    latency_at: Annotated[
        str | None, typer.Option("--latency-at", help="Latency percentile: p50, p95 or p99.")
    ] = None,
    require_model: Annotated[
        list[str] | None,
        typer.Option("--require-model", help="Fail if absent from the candidate (repeatable)."),
    ] = None,
    require_task: Annotated[
        list[str] | None,
        typer.Option("--require-task", help="Fail if absent from the candidate (repeatable)."),
    ] = None,
    fail_on_not_comparable: Annotated[
        bool | None,
        typer.Option(
            "--fail-on-not-comparable/--allow-not-comparable",
            help="Fail when data, task version, protocol config or model revision changed. Default: allow.",
        ),
    ] = None,
    allow_nothing_comparable: Annotated[
        bool,
        typer.Option(
            "--allow-nothing-comparable",
            help="Pass when the two sides share no finished run (default: that fails, exit 1).",
        ),
    ] = False,
    n_boot: Annotated[
        int | None, typer.Option("--n-boot", help="Paired bootstrap resamples (default 1000).")
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help=f"Output: {', '.join(FORMATS)}.")] = "table",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the report to this file instead of stdout.")
    ] = None,
) -> None:
    """Regression check: candidate vs baseline, paired per (model, task, protocol). Exit 1 on a significant
    regression (Holm-corrected across all pairs tested unless --correction none)."""
    if output_format not in FORMATS:
        raise HarnessError(
            f'--format "{output_format}" is not one of {", ".join(FORMATS)}.{close_match(output_format, FORMATS)}'
        )
    if baseline is None and baseline_label is None:
        raise HarnessError(
            "Say what to compare against: --baseline FILE (.db or .json from `harness export-baseline`), or "
            "--baseline-label X --candidate-label Y for two labelled result sets in one database (--db)."
        )
    base_path, cand_path = baseline or db, candidate or db
    same_file = base_path.resolve() == cand_path.resolve() or (
        base_path.is_file() and cand_path.is_file() and os.path.samefile(base_path, cand_path)  # a hard link
    )
    if same_file and baseline_label == candidate_label:
        raise HarnessError(
            f"Baseline and candidate are the same result set ({base_path}"
            + (f" [{baseline_label}]" if baseline_label else "")
            + "). Give --baseline-label and --candidate-label to compare two labels in one database."
        )
    overrides = {
        "metric": metric,
        "max_drop": max_drop,
        "alpha": alpha,
        "correction": parse_correction(correction, "--correction") if correction is not None else None,
        "max_latency_ratio": max_latency_ratio,
        "latency_at": parse_percentile(latency_at, "--latency-at") if latency_at else None,
        "required_models": tuple(require_model) if require_model else None,
        "required_tasks": tuple(require_task) if require_task else None,
        "fail_on_not_comparable": fail_on_not_comparable,
        "allow_nothing_comparable": True if allow_nothing_comparable else None,
        "n_boot": n_boot,
    }
    policy = load_policy(policy_file, overrides)
    if out is not None:
        check_out(out, "--out", (base_path, cand_path, policy_file, *(plugin or [])))
    base = load_results(base_path, baseline_label, task=task)
    cand = load_results(cand_path, candidate_label, task=task)
    if not base.runs:
        raise _no_runs(f"The baseline {base.source}", base_path, baseline_label, task)
    if base_path.resolve() == cand_path.resolve() and {r.key for r in base.runs} == {r.key for r in cand.runs}:
        raise HarnessError(
            f"--baseline-label {baseline_label!r} and --candidate-label {candidate_label!r} select the same "
            f"{len(base.runs)} runs of {base_path}: comparing them with themselves always passes. Give labels of "
            "two different result sets (harness show lists what is stored; a run's label is set by harness run --label)."
        )
    from harness.registry import discover_metrics

    # A plugin's print() (at import, or in its metric) went into the report on stdout: JSON no script could parse.
    with contextlib.redirect_stdout(sys.stderr):
        report = compare_results(base, cand, policy, discover_metrics(plugin or []))

    if output_format == "table":
        if out is None:
            render_table(report, output_console())
        else:
            buffer = io.StringIO()
            render_table(report, Console(file=buffer, width=200, no_color=True))
            write_out(buffer.getvalue().encode("utf-8"), out)
    else:
        render = {"markdown": render_markdown, "junit": render_junit, "json": render_json}[output_format]
        text = render(report)
        if out is None:
            sys.stdout.write(text)
        else:
            write_out(text.encode("utf-8"), out)
    if out is not None:
        from harness.compare.render import summary_line

        Console(stderr=True).print(plain(one_paragraph(f"{summary_line(report)} Report written to {out}.")), markup=False, highlight=False)
    raise typer.Exit(report.exit_code)


def export_baseline(
    out: Annotated[
        Path, typer.Option("--out", help="Baseline JSON to write (commit it to your repository).")
    ],
    db: Annotated[Path, typer.Option("--db", help="Results database to export from.")] = DEFAULT_DB,
    label: Annotated[
        str | None,
        typer.Option("--label", help="Only these runs: label:X, suite:X, git:HASH or a bare name."),
    ] = None,
    task: Annotated[str | None, typer.Option("--task", help="Only this task.")] = None,
) -> None:
    """Export runs (metrics, config, fingerprints, per-example predictions) to a small JSON baseline."""
    if out.suffix.lower() != ".json":
        raise HarnessError(f"--out {out}: a baseline is a .json file (e.g. baseline.json).")
    check_out(out, "--out", (db,), example="baseline.json")
    results = load_results(db, label, task=task)
    if not results.runs:
        raise _no_runs(f"Nothing to export: {results.source}", db, label, task)
    write_baseline(results, out)
    with_preds = sum(r.predictions is not None for r in results.runs)
    size_kb = out.stat().st_size / 1024
    Console(stderr=True).print(
        plain(one_paragraph(f"Wrote {len(results.runs)} runs ({with_preds} with per-example predictions, {size_kb:.0f} KiB) to {out}.")),
        markup=False,
        highlight=False,
    )


def _no_runs(what: str, path: Path, selector: str | None, task: str | None) -> HarnessError:
    """`WHAT has no runs [for task 'x'. Did you mean "y"?]`: the stored task names are read only to explain."""
    if task is None:
        return HarnessError(f"{what} has no runs.")
    tasks = sorted({r.task for r in load_results(path, selector).runs})
    hint = close_match(task, tasks) or f" Stored: {', '.join(map(repr, tasks)) or 'none'}."
    return HarnessError(f"{what} has no runs for task {task!r}.{hint}")
