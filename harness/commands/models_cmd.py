"""`harness models` (typer command function; registered in harness.cli)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from harness.console import esc, output_console
from harness.store import DEFAULT_DB
from harness.units import format_count_1dp


def models(
    suite_file: Annotated[
        Path | None, typer.Argument(help="Suite YAML: list its models. Without it: the model families.")
    ] = None,
    db: Annotated[Path, typer.Option("--db", help="SQLite results database.")] = DEFAULT_DB,
    as_json: Annotated[bool, typer.Option("--json", help="Print the listing as JSON (for scripts).")] = False,
) -> None:
    """List model families, or a suite's models with the metadata stored for them."""
    from harness.models import families

    console = output_console()
    rows = [f for _, f in sorted(families().items())]
    if suite_file is None and as_json:
        listed = [{"family": f.name, "modality": f.modality, "implementation": f.implementation} for f in rows]
        sys.stdout.write(json.dumps(listed, indent=2) + "\n")
        return
    if suite_file is None:
        table = Table(title="Model families", title_justify="left", header_style="bold")
        table.add_column("family")
        table.add_column("modality")
        table.add_column("implementation")
        for f in rows:
            table.add_row(esc(f.name), f.modality, esc(f.implementation))
        console.print(table)
        return
    from harness.config import load_suite
    from harness.store import StoreReader
    from harness.store.rows import ModelMeta

    suite = load_suite(suite_file)
    stored: dict[str, ModelMeta] = StoreReader(db).models() if db.exists() else {}
    if as_json:
        listing = [
            {**m.spec.as_dict(), "modality": families()[m.spec.family].modality, "params": meta.params if meta else None,
             "license": (meta.license if meta else None) or m.spec.license or None}
            for m, meta in ((m, stored.get(m.spec.name)) for m in suite.models)
        ]  # fmt: skip
        sys.stdout.write(json.dumps(listing, indent=2, default=str) + "\n")
        return
    table = Table(title=f"Models in {esc(suite_file)}", title_justify="left", header_style="bold")
    for col in ("name", "family", "modality", "source", "revision", "params", "license"):
        table.add_column(col)
    for m in suite.models:
        meta = stored.get(m.spec.name)
        params = meta.params if meta else None
        cells = (m.spec.name, m.spec.family, families()[m.spec.family].modality, m.spec.source, m.spec.revision or "-",
                 format_count_1dp(params) if params else "(not run yet)", (meta.license if meta else None) or m.spec.license or "-")  # fmt: skip
        table.add_row(*(esc(c) for c in cells))
    console.print(table)
