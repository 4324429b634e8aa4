"""Rich consoles for command output."""

from __future__ import annotations

from rich.console import Console


def output_console() -> Console:
    """stdout console; piped output (CI logs, files) gets 120 columns instead of rich's 80-column guess,
    which folds wide result tables into unreadable slivers."""
    console = Console()
    return console if console.is_terminal else Console(width=120)
