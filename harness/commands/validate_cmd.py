"""`harness validate` (typer command function; registered in harness.cli).

Exit codes: 0 the suite is valid, 2 it is not (one paragraph naming the file, the key and what was expected).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.console import esc, one_paragraph, output_console


def validate(
    suite_file: Annotated[Path, typer.Argument(help="Suite YAML to check.")],
    plugin: Annotated[
        list[Path] | None, typer.Option("--plugin", help="Task plugin: a .py file, a task .yaml file or a folder of them.")
    ] = None,
    load: Annotated[
        bool, typer.Option("--load", help="Also load every task's data (slower; catches missing or malformed data files).")
    ] = False,
) -> None:
    """Check a suite and its tasks without running anything: keys, types, model families and options, model
    sources, task names and options (and with --load, the task data)."""
    from harness.config import load_suite
    from harness.errors import ConfigError, HarnessError, unknown_name
    from harness.models import family, load_adapter, resolve_source
    from harness.registry import TaskRegistry

    console = output_console()
    suite = load_suite(suite_file)
    registry = TaskRegistry.discover([*suite.plugins, *(plugin or [])])
    tasks = {}
    for i, ref in enumerate(suite.tasks):
        if ref.name not in registry.names():
            raise ConfigError(f"{suite_file}: tasks[{i}]: {unknown_name('task', ref.name, registry.names())}")
        tasks[ref.name] = registry.get(ref.name, ref.options or None)
    for i, entry in enumerate(suite.models):
        spec = entry.spec
        family(spec.family).check_options(spec, str(suite_file), f"models[{i}]")  # as `harness run` does
        try:
            if spec.source:
                resolve_source(spec.source)
        except HarnessError as exc:
            raise ConfigError(f"{suite_file}: key 'models[{i}].source': {exc}") from None
        try:
            load_adapter(spec)  # weights load only on first use
        except HarnessError as exc:
            raise ConfigError(f"{suite_file}: models[{i}] ({spec.name}): {exc}") from None
    n_jobs, idle = 0, []
    for entry in suite.models:
        pairs = [
            t for t in suite.tasks
            if (entry.tasks is None or t.name in entry.tasks) and family(entry.spec.family).modality == tasks[t.name].spec.modality
        ]  # fmt: skip
        protocols = [p for p in suite.protocols if entry.protocols is None or p.name in entry.protocols]
        n_jobs += len(pairs) * len(protocols) * len(suite.seeds)
        if not pairs:
            idle.append(entry.spec.name)
    if load:
        for name, task in tasks.items():
            data = task.load()
            sizes = ", ".join(f"{k} {v}" for k, v in data.sizes().items())
            console.print(f"  {esc(name)}: {sizes} (fingerprint {data.fingerprint})", highlight=False)
    console.print(
        f"[green]valid[/green]: {esc(one_paragraph(suite_file))} (suite {esc(suite.name)}): {len(suite.models)} model(s), "
        f"{len(suite.tasks)} task(s), {len(suite.protocols)} protocol(s), {len(suite.seeds)} seed(s): {n_jobs} job(s).",
        highlight=False,
    )
    for name in idle:
        console.print(f"[yellow]note:[/yellow] model {esc(name)} matches no task of its modality: it will not run.", highlight=False)
    raise typer.Exit(0)
