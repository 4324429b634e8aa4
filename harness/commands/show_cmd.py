"""`harness show` (typer command function; registered in harness.cli)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from harness.console import output_console
from harness.errors import HarnessError
from harness.store import DEFAULT_DB


def show(
    db: Annotated[Path, typer.Option("--db", help="SQLite results database.")] = DEFAULT_DB,
    task: Annotated[str | None, typer.Option("--task", help="Only this task.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
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
    tables = leaderboard_tables(StoreReader(db), task, model)
    if not tables:
        raise HarnessError(f"No results in {db}" + (f" for task {task!r}" if task else "") + (f" and model {model!r}" if model else "") + ".")
    console = output_console()
    for table in tables:
        console.print(table)
