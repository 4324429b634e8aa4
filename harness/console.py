"""Rich consoles for command output."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape


def output_console() -> Console:
    """stdout console; piped output (CI logs, files) gets 120 columns instead of rich's 80-column guess,
    which folds wide result tables into unreadable slivers."""
    console = Console()
    return console if console.is_terminal else Console(width=120)


def esc(value: object) -> str:
    """Anything a user named (model, task, file, error text) made safe to embed in rich markup: a name
    such as ``a[/]b`` would otherwise be read as a closing tag and crash the command."""
    return escape(str(value))
