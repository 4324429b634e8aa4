"""`harness show` (typer command function; registered in harness.cli)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from harness.console import output_console
from harness.errors import HarnessError
from harness.report import DEFAULT_TOP
from harness.store import DEFAULT_DB


def show(
    db: Annotated[Path, typer.Option("--db", help="SQLite results database.")] = DEFAULT_DB,
    task: Annotated[str | None, typer.Option("--task", help="Only this task.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
    top: Annotated[
        int,
        typer.Option(
            "--top", min=0, help="Runs listed per task table, best first (and unfinished runs under it); 0 lists all."
        ),
    ] = DEFAULT_TOP,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the stored run records as JSON (the `harness export` schema).")
    ] = False,
) -> None:
    """Print the leaderboard tables stored in the results database."""
    from harness.report import leaderboard_tables
    from harness.store import StoreReader

    if as_json:
        from harness.export import ExportFilter, export

        export(db, "json", None, ExportFilter(tuple(filter(None, [task])), tuple(filter(None, [model]))), False, sys.stdout)
        return
    tables = leaderboard_tables(StoreReader(db), task, model, top)
    if not tables:
        raise HarnessError(f"No results in {db}" + (f" for task {task!r}" if task else "") + (f" and model {model!r}" if model else "") + ".")
    console = output_console()
    for table in tables:
        console.print(table)
