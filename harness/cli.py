"""Command-line interface (typer + rich): assembles the app from the command functions in harness.commands.

Any HarnessError is printed as a one-paragraph message with exit code 2 — never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable
from pathlib import PurePath
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from typer.core import TyperCommand

from harness.commands.compare_cmd import compare, export_baseline
from harness.commands.export_cmd import export, schema
from harness.commands.models_cmd import models
from harness.commands.pick_cmd import pick_command
from harness.commands.run_cmd import run
from harness.commands.serve_cmd import browse, serve
from harness.commands.show_cmd import show
from harness.commands.site_cmd import site
from harness.commands.tasks_cmd import tasks
from harness.commands.validate_cmd import validate
from harness.console import esc, one_paragraph
from harness.errors import HarnessError

# Our own rich progress bar reports jobs; per-model loading bars from transformers would interleave with it.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _print_what_the_terminal_cannot_show_escaped() -> None:
    """A terminal or pipe whose encoding lacks a character we print (PYTHONIOENCODING=ascii, a Latin-1 locale,
    a Windows code page) gets it as \\u2014 instead of a UnicodeEncodeError traceback ending the command."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="backslashreplace")


_print_what_the_terminal_cannot_show_escaped()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def _print_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    err_console.print(f"[yellow]warning:[/yellow] {esc(message)}", highlight=False)


warnings.showwarning = _print_warning  # data-hygiene and other user-facing warnings: one readable line


# Options naming a stored or known thing: an empty one (an unset shell variable) is refused rather than read as
# "no filter", which showed, compared or exported everything.
_NAME_OPTIONS = frozenset(
    {
        "task", "model", "protocol", "metric", "baseline_label", "candidate_label", "only_model", "only_task", "check",
        "require_model", "require_task",
    }
)


class _Command(TyperCommand):
    """A harness command: an empty value for a name option (above) or for a path is refused. A path is checked
    as given, before typer turns it into a Path: Path("") is Path("."), and `site --out ''` built the site into
    the current folder. A path is a parameter typer converts to a Path, or one declared with metavar PATH that
    the command converts itself (run's --db)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # Any: click's Context, vendored or not by version
        given = list(args)
        rest = super().parse_args(ctx, args)
        if ctx.resilient_parsing:  # shell completion
            return rest
        raw, _, _ = self.make_parser(ctx).parse_args(args=given)
        for param in self.params:
            value = raw.get(param.name)
            if value != "" and not (isinstance(value, list | tuple) and "" in value):
                continue
            converted = ctx.params.get(param.name)
            if param.name in _NAME_OPTIONS:
                what = "a name"
            elif param.metavar == "PATH" or isinstance(converted, PurePath) or (
                isinstance(converted, list | tuple) and any(isinstance(v, PurePath) for v in converted)
            ):
                what = "a path"
            else:
                continue
            if param.param_type_name == "argument":
                shown, leave = f"The {(param.name or '').upper()} argument", "leave it out"
            else:
                shown, leave = max(param.opts, key=len), "leave the option out"
            _fail(f"{shown} is empty; give {what}" + ("." if param.required else f", or {leave}."))
        return rest


def user_errors(fn: F) -> F:
    """Turn HarnessError into a clean message + exit 2."""

    command = fn.__name__.removesuffix("_command").replace("_", "-")  # pick_command -> pick

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():  # signal handlers: main thread only
            return run(*args, **kwargs)
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            return run(*args, **kwargs)
        finally:
            signal.signal(signal.SIGTERM, previous)

    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HarnessError as exc:
            _fail(str(exc))
        except BrokenPipeError:
            _reader_left()
        except SystemExit as exc:  # our commands end with typer.Exit; this came from plugin/task/model code
            frames = traceback.extract_tb(exc.__traceback__)
            if frames and frames[-1].name == "on_broken_pipe":  # rich's own exit when the reader left
                _reader_left()
            where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
            _fail(
                f"sys.exit({exc.code!r}) was called{where} while `harness {command}` ran (plugin, task or model "
                "code?); the command did not finish."
            )
        except OSError as exc:
            if exc.filename is None and exc.errno in _OUTPUT_FULL:  # stdout on a full disk (> /dev/full)
                _fail(f"`harness {command}` could not write its output ({exc.strerror}); the command did not finish.")
            if exc.filename is None:  # not about a path: a bug, whose traceback we want
                raise
            _fail(_path_error(exc, command))
        except RuntimeError as exc:
            # pathlib's resolve() raises RuntimeError, not OSError, for a symbolic link that leads back to itself
            if not str(exc).startswith("Symlink loop from "):
                raise
            loop = str(exc).removeprefix("Symlink loop from ").strip("'")
            _fail(
                f"`harness {command}` cannot use the path {loop}: it is a symbolic link that leads back to itself "
                "(a loop). Give the file itself."
            )
        except KeyboardInterrupt as exc:
            after = _AFTER_CTRL_C.get(command, "")
            if isinstance(exc, Terminated):
                _fail(f"`harness {command}` did not finish.{after}", "Terminated (SIGTERM):", 143)
            _fail(f"`harness {command}` did not finish.{after}", "Interrupted (Ctrl-C):", 130)

    return wrapper  # type: ignore[return-value]


_OUTPUT_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EIO)


def _reader_left() -> NoReturn:
    """The program reading our output stopped (`harness show | head -1`): exit quietly, as SIGPIPE would
    (128 + 13), with stdout pointed at /dev/null so that flushing it at exit raises nothing."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise typer.Exit(141)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI job cancelled, `timeout`, `docker stop`): the command unwinds as on Ctrl-C, so that what
    it cleans up then (a store or a first site it created and left empty or half-built) is cleaned up too;
    the default action killed it where it stood."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


def _fail(message: str, label: str = "Error:", code: int = 2) -> NoReturn:
    """The one way a command ends on a user error: one paragraph on stderr (what was named escaped, newlines
    shown as \\n), then exit `code`."""
    err_console.print(f"[bold red]{label}[/bold red] {esc(one_paragraph(message))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code) from None


def _path_error(exc: OSError, command: str) -> str:
    """A path the system refused that no check before caught (e.g. a name too long for the file system,
    which pathlib's exists() raises instead of answering False)."""
    path = str(exc.filename)
    shown = path if len(path) <= 160 else f"{path[:80]}...{path[-40:]} ({len(path):,} characters)"
    hint = ""
    if exc.errno == errno.ENAMETOOLONG:
        hint = " A path here may be at most 4,096 bytes long, and each name in it 255."
    return f"`harness {command}` cannot use the path {shown}: {exc.strerror or type(exc).__name__}.{hint}"


# What an interrupted command left behind, where that is not "nothing".
_AFTER_CTRL_C = {
    "run": " The jobs that finished are stored (each in one transaction; the one interrupted left nothing): "
    "run the same command again to resume the rest.",
    "site": " A first build removed its folder; an existing site keeps the pages written so far, and the next "
    "`harness site` brings it up to date.",
}


app = typer.Typer(add_completion=True, no_args_is_help=True, help="Benchmark pretrained models; publish a leaderboard.")
COMMANDS: tuple[tuple[str, Callable[..., Any]], ...] = (  # in --help order
    ("tasks", tasks),
    ("models", models),
    ("show", show),
    ("run", run),
    ("validate", validate),
    ("export", export),
    ("schema", schema),
    ("compare", compare),
    ("export-baseline", export_baseline),
    ("pick", pick_command),
    ("site", site),
    ("serve", serve),
    ("browse", browse),
)
for _name, _command in COMMANDS:
    app.command(_name, cls=_Command)(user_errors(_command))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
