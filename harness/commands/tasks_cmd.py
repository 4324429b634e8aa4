"""`harness tasks` (typer command function; registered in harness.cli)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from harness.console import esc, output_console, plain
from harness.errors import HarnessError


def tasks(
    query: Annotated[
        str | None, typer.Argument(help="Only tasks whose name, description, labels or source contain this text.")
    ] = None,
    plugin: Annotated[
        list[Path] | None, typer.Option("--plugin", help="Task plugin: a .py file, a task .yaml file or a folder of them.")
    ] = None,
    modality: Annotated[str | None, typer.Option("--modality", help="Only tasks of this modality: text or image.")] = None,
    check: Annotated[str | None, typer.Option("--check", help="Load this task and print its data-hygiene report.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the task metadata as JSON (for scripts).")] = False,
) -> None:
    """List available tasks with their metadata."""
    from harness.registry import TaskRegistry

    console = output_console()
    registry = TaskRegistry.discover(plugin or [])
    if check:
        from harness.data.hygiene import cached_hygiene_report, format_class_balance, format_report

        data = registry.get(check).load()
        report = f"{format_report(cached_hygiene_report(data))}\n{format_class_balance(data)}"
        console.print(plain(report), markup=False, highlight=False)
        return
    if modality is not None and modality not in ("text", "image"):
        raise HarnessError(f"--modality: expected text or image, got {modality!r}.")
    specs = [s for s in sorted(registry.specs(), key=lambda s: s.name) if modality in (None, s.modality) and _matches(s, query)]
    if as_json:
        sys.stdout.write(json.dumps([{**s.as_dict(), "origin": registry.origin(s.name)} for s in specs], indent=2) + "\n")
        return
    if not specs:
        raise HarnessError(f"No task matches{f' {query!r}' if query else ''}{f' with modality {modality}' if modality else ''}. "
                           f"Available: {', '.join(registry.names())}.")  # fmt: skip
    table = Table(title="Tasks", title_justify="left", header_style="bold")
    for col in ("name", "version", "modality", "labels", "main metric", "source", "license"):
        table.add_column(col, max_width=36 if col in ("source", "license") else None, no_wrap=col == "license", overflow="ellipsis")
    for spec in specs:
        labels = ", ".join(spec.labels)
        resolved = registry.task_metrics(spec.name)
        cells = (spec.name, spec.version, spec.modality, labels if len(labels) < 60 else labels[:57] + "...",
                 resolved.main_metric.label, spec.source, spec.license)  # fmt: skip
        table.add_row(*(esc(c) for c in cells))
    console.print(table)


def _matches(spec: Any, query: str | None) -> bool:
    if not query:
        return True
    text = " ".join([spec.name, spec.description, spec.source, *spec.labels, *spec.label_verbalizers.values()])
    return query.lower() in text.lower()
