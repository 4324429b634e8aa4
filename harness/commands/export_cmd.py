"""`harness export` and `harness schema` (typer command functions; registered in harness.cli)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from harness.console import esc, one_paragraph
from harness.outfile import check_out
from harness.store import DEFAULT_DB


def export(
    db: Annotated[Path, typer.Option("--db", help="Results database to export (opened read-only).")] = DEFAULT_DB,
    fmt: Annotated[
        Literal["json", "jsonl", "csv", "parquet"],
        typer.Option("--format", help="json (an array of run records), jsonl (one per line), csv or parquet (flat rows)."),
    ] = "json",
    out: Annotated[Path | None, typer.Option("--out", help="Output file (default: standard output; parquet needs a file).")] = None,
    task: Annotated[list[str] | None, typer.Option("--task", help="Only this task (repeatable).")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", help="Only this model (repeatable).")] = None,
    protocol: Annotated[list[str] | None, typer.Option("--protocol", help="Only this protocol (repeatable).")] = None,
    predictions: Annotated[
        bool,
        typer.Option("--predictions", help="Include per-example predictions (json/jsonl: in each record; csv/parquet: "
                     "one row per prediction instead of one per run)."),
    ] = False,  # fmt: skip
) -> None:
    """Export stored runs for your own tooling. JSON records follow `harness schema run-record`."""
    from harness.export import export as export_runs
    from harness.store import RunFilter

    if out is not None:
        check_out(out, "--out", (db,), example=f"runs.{fmt}")
    where = RunFilter(tuple(task or ()), tuple(model or ()), tuple(protocol or ()))
    n = export_runs(db, fmt, out, where, predictions, sys.stdout)
    if out is not None:
        Console(stderr=True).print(f"{n} run(s) exported to {esc(one_paragraph(out))} ({fmt}).", highlight=False)
    elif n == 0:
        Console(stderr=True).print("No stored run matches.", highlight=False)


def schema(
    which: Annotated[
        Literal["run-record", "suite"], typer.Argument(help="run-record (harness export's records) or suite (suite files).")
    ],
) -> None:
    """Print a published JSON Schema (also in docs/schemas/)."""
    from harness.schemas import run_record_schema, suite_schema

    document = run_record_schema() if which == "run-record" else suite_schema()
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
