"""Rich consoles for command output."""

from __future__ import annotations

import re

from rich.console import Console
from rich.markup import escape


def output_console() -> Console:
    """stdout console; piped output (CI logs, files) gets 120 columns instead of rich's 80-column guess,
    which folds wide result tables into unreadable slivers."""
    console = Console()
    return console if console.is_terminal else Console(width=120)


# Control characters other than newline and tab: ESC starts terminal sequences (colours, clearing the
# screen, setting the window title), CR overwrites the line. Shown as \x1b etc., never sent raw.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(value: object) -> str:
    """Text printed with markup off, its control characters shown as esc() shows them."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def esc(value: object) -> str:
    """Anything a user named (model, task, file, error text) made safe to embed in rich markup: a name
    such as ``a[/]b`` would otherwise be read as a closing tag and crash the command, and a control
    character (an ESC sequence in a task file's label) would drive the terminal."""
    return escape(plain(value))


def one_paragraph(value: object) -> str:
    """An error message as one line for esc(): a newline or tab in it (a name given on the command line,
    a third-party message) shown as \\n / \\t, so the error stays one paragraph."""
    return str(value).replace("\r\n", "\n").replace("\n", "\\n").replace("\t", "\\t")
