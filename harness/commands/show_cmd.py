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
    from harness.export import export
    from harness.report import leaderboard_tables
    from harness.store import RunFilter, StoreReader

    where = RunFilter(tuple(filter(None, [task])), tuple(filter(None, [model])))
    if as_json:
        export(db, "json", None, where, False, sys.stdout)
        return
    reader = StoreReader(db)
    reader.check_filter(where)
    tables = leaderboard_tables(reader, task, model, top)
    if not tables:
        which = " and ".join(f"{kind} {name!r}" for kind, name in (("task", task), ("model", model)) if name)
        raise HarnessError(f"No results in {db}" + (f" for {which}" if which else "") + ".")
    console = output_console()
    for table in tables:
        console.print(table)
