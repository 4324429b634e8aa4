"""`harness site` (typer command function; registered in harness.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from harness.console import esc, one_paragraph, output_console, plain
from harness.sitegen import BuildStats, build_site
from harness.store import DEFAULT_DB

if TYPE_CHECKING:
    from harness.metrics import MetricRegistry


def site(
    db: Annotated[Path, typer.Option("--db", help="SQLite results database to publish.")] = DEFAULT_DB,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the static site (created; updated in place).")
    ] = Path("site"),
    plugin: Annotated[
        list[Path] | None,
        typer.Option("--plugin", help="Plugin .py file defining metrics the tasks use (for their tie groups)."),
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Read every run from the store and render every page, reusing nothing from the last build "
            "(after changing the store other than with harness run, e.g. editing it by hand).",
        ),
    ] = False,
) -> None:
    """Build a static leaderboard site from the stored results (no model is run)."""
    from harness.registry import discover_metrics

    console = output_console()
    stats = build_with_status(console, db, out, discover_metrics(plugin or []), full=full)
    console.print(
        plain(one_paragraph(
            f"Site in {out}/: {len(stats.written)} files written, {len(stats.unchanged)} unchanged, "
            f"{len(stats.removed)} removed ({stats.seconds['total']:.1f} s)."
        )),
        markup=False,
        highlight=False,
    )
    console.print(f"Open {stats.index.resolve().as_uri()}", markup=False, highlight=False, soft_wrap=True)


def build_with_status(
    console: Console, db: Path, out: Path, metrics: MetricRegistry | None = None, full: bool = False
) -> BuildStats:
    """build_site, saying on a terminal's status line what it does (a large store takes tens of seconds);
    a log (CI) gets no status lines."""
    if not console.is_terminal:
        return build_site(db, out, metrics=metrics, full=full)
    with console.status("Checking the store ...") as status:

        def progress(step: str) -> None:
            status.update(f"{esc(step)} ...")

        return build_site(db, out, metrics=metrics, progress=progress, full=full)
