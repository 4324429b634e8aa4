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


# Unicode characters that change how the text around them is shown: the bidirectional overrides,
# embeddings, isolates and marks reorder what follows ("Trojan Source": a model named "pix\u202eslegol" shows
# as "pixlogels"), and the line and paragraph separators break a line. Shown as \u202e, never sent raw.
REORDERING = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"

# Control characters other than newline and tab: ESC starts terminal sequences (colours, clearing the
# screen, setting the window title), CR overwrites the line. Shown as \x1b etc., never sent raw.
_CONTROL = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{REORDERING}]")


def plain(value: object) -> str:
    """Text printed with markup off, its control characters shown as esc() shows them."""
    return _CONTROL.sub(_shown, str(value))


def _shown(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def esc(value: object) -> str:
    """Anything a user named (model, task, file, error text) made safe to embed in rich markup: a name
    such as ``a[/]b`` would otherwise be read as a closing tag and crash the command, and a control
    character (an ESC sequence in a task file's label) would drive the terminal."""
    return escape(plain(value))


def one_paragraph(value: object) -> str:
    """An error message as one line for esc(): a newline or tab in it (a name given on the command line,
    a third-party message) shown as \\n / \\t, so the error stays one paragraph."""
    return str(value).replace("\r\n", "\n").replace("\n", "\\n").replace("\t", "\\t")
