"""Command-line interface (typer + rich). Thin: parses options, calls library code, renders results.

Any HarnessError is printed as a one-paragraph message with exit code 2 — never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from harness.console import esc, output_console
from harness.errors import HarnessError
from harness.store import DEFAULT_DB

# Our own rich progress bar reports jobs; per-model loading bars from transformers would interleave with it.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

app = typer.Typer(add_completion=True, no_args_is_help=True, help="Benchmark pretrained models; publish a leaderboard.")
console = output_console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

DB_OPTION = typer.Option(DEFAULT_DB, "--db", help="SQLite results database.")
PLUGIN_OPTION = typer.Option([], "--plugin", help="Task plugin: a .py file, a task .yaml file or a folder of them.")


def _print_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    err_console.print(f"[yellow]warning:[/yellow] {esc(message)}", highlight=False)


warnings.showwarning = _print_warning  # data-hygiene and other user-facing warnings: one readable line


def user_errors(fn: F) -> F:
    """Turn HarnessError into a clean message + exit 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HarnessError as exc:
            err_console.print(f"[bold red]Error:[/bold red] {esc(exc)}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except SystemExit as exc:  # our commands end with typer.Exit; this came from plugin/task/model code
            frames = traceback.extract_tb(exc.__traceback__)
            where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
            err_console.print(
                f"[bold red]Error:[/bold red] {esc(f'sys.exit({exc.code!r}) was called{where} while `harness {fn.__name__}` ran (plugin, task or model code?); the command did not finish.')}",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@app.command()
@user_errors
def tasks(
    query: str = typer.Argument(None, help="Only tasks whose name, description, labels or source contain this text."),
    plugin: list[Path] = PLUGIN_OPTION,
    modality: str = typer.Option(None, "--modality", help="Only tasks of this modality: text or image."),
    check: str = typer.Option(None, "--check", help="Load this task and print its data-hygiene report."),
    as_json: bool = typer.Option(False, "--json", help="Print the task metadata as JSON (for scripts)."),
) -> None:
    """List available tasks with their metadata."""
    from harness.registry import TaskRegistry

    registry = TaskRegistry.discover(plugin)
    if check:
        from harness.data.hygiene import cached_hygiene_report, format_report

        data = registry.get(check).load()
        console.print(format_report(cached_hygiene_report(data)), markup=False, highlight=False)
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


@app.command()
@user_errors
def models(
    suite_file: Path = typer.Argument(None, help="Suite YAML: list its models. Without it: the model families."),
    db: Path = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the listing as JSON (for scripts)."),
) -> None:
    """List model families, or a suite's models with the metadata stored for them."""
    from harness.models import FAMILIES, FAMILY_MODALITY

    if suite_file is None and as_json:
        families = [{"family": f, "modality": FAMILY_MODALITY[f], "implementation": FAMILIES[f]} for f in sorted(FAMILIES)]
        sys.stdout.write(json.dumps(families, indent=2) + "\n")
        return
    if suite_file is None:
        table = Table(title="Model families", title_justify="left", header_style="bold")
        table.add_column("family")
        table.add_column("modality")
        table.add_column("implementation")
        for fam in sorted(FAMILIES):
            table.add_row(fam, FAMILY_MODALITY[fam], FAMILIES[fam])
        console.print(table)
        return
    from harness.config import load_suite
    from harness.store import Store

    suite = load_suite(suite_file)
    stored = {r["name"]: r for r in Store.open_readonly(db).db.query("SELECT * FROM models")} if db.exists() else {}
    if as_json:
        listing = [
            {**m.spec.as_dict(), "modality": FAMILY_MODALITY[m.spec.family], "params": stored.get(m.spec.name, {}).get("params"),
             "license": stored.get(m.spec.name, {}).get("license") or m.spec.license or None}
            for m in suite.models
        ]  # fmt: skip
        sys.stdout.write(json.dumps(listing, indent=2, default=str) + "\n")
        return
    table = Table(title=f"Models in {esc(suite_file)}", title_justify="left", header_style="bold")
    for col in ("name", "family", "modality", "source", "revision", "params", "license"):
        table.add_column(col)
    for m in suite.models:
        row = stored.get(m.spec.name, {})
        params = row.get("params")
        cells = (m.spec.name, m.spec.family, FAMILY_MODALITY[m.spec.family], m.spec.source, m.spec.revision or "-",
                 f"{params / 1e6:.1f}M" if params else "(not run yet)", row.get("license") or m.spec.license or "-")  # fmt: skip
        table.add_row(*(esc(c) for c in cells))
    console.print(table)


@app.command()
@user_errors
def show(
    db: Path = DB_OPTION,
    task: str = typer.Option(None, "--task", help="Only this task."),
    model: str = typer.Option(None, "--model", help="Only this model."),
    as_json: bool = typer.Option(False, "--json", help="Print the stored run records as JSON (the `harness export` schema)."),
) -> None:
    """Print the leaderboard tables stored in the results database."""
    from harness.report import leaderboard_tables
    from harness.store import Store

    if as_json:
        from harness.export import ExportFilter, export

        export(db, "json", None, ExportFilter(tuple(filter(None, [task])), tuple(filter(None, [model]))), False, sys.stdout)
        return
    tables = leaderboard_tables(Store.open_readonly(db), task, model)
    if not tables:
        raise HarnessError(f"No results in {db}" + (f" for task {task!r}" if task else "") + (f" and model {model!r}" if model else "") + ".")
    for table in tables:
        console.print(table)


# -- commands contributed by other modules are registered below --
from harness.commands.compare_cmd import compare, export_baseline  # noqa: E402
from harness.commands.export_cmd import export, schema  # noqa: E402
from harness.commands.pick_cmd import pick_command  # noqa: E402
from harness.commands.run_cmd import run  # noqa: E402
from harness.commands.serve_cmd import browse, serve  # noqa: E402
from harness.commands.site_cmd import site as site_cmd  # noqa: E402
from harness.commands.validate_cmd import validate  # noqa: E402

app.command("run")(user_errors(run))
app.command("validate")(user_errors(validate))
app.command("export")(user_errors(export))
app.command("schema")(user_errors(schema))
app.command("compare")(user_errors(compare))
app.command("export-baseline")(user_errors(export_baseline))
app.command("pick")(user_errors(pick_command))
app.command("site")(user_errors(site_cmd))
app.command("serve")(user_errors(serve))
app.command("browse")(user_errors(browse))


def main() -> None:  # pragma: no cover - console entry point alias
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
