"""Worker processes that inherit what they work on: a pool forked with an object (the board, the snapshot)
that its workers read as it was at the fork, instead of having it pickled to them (hundreds of MB at
150,000 runs). The render pool and the downloads' process use it."""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
from collections.abc import Iterator
from multiprocessing.pool import Pool
from typing import Any

FORK_FROM_RUNS = 20_000  # below this the downloads' process costs more than it saves
_INHERITED: Any = None  # set only while a pool forks; each worker keeps its copy


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def forked_pool(processes: int, inherited: Any) -> Pool:
    """A pool of `processes` workers forked now, each of which reads `inherited` through `inherited()`."""
    global _INHERITED
    _INHERITED = inherited
    try:
        with _workers_start_with_default_sigterm():
            return multiprocessing.get_context("fork").Pool(processes, initializer=_leave_ctrl_c_to_the_parent)
    finally:
        _INHERITED = None


@contextlib.contextmanager
def _workers_start_with_default_sigterm() -> Iterator[None]:
    """Fork with SIGTERM at its default action, so a worker terminate() reaches before its initializer ran dies.
    Forked with the parent's Python handler (the CLI's, or one a library installed), such a SIGTERM was only
    noted, then dropped once the initializer had reset the handler; the worker lived on and the parent's
    terminate() waited for it forever (a build failing right after its pool forked). Main thread only (signals)."""
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread() or previous is None:
        yield
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _leave_ctrl_c_to_the_parent() -> None:
    """A Ctrl-C reaches every process of the terminal's group. A worker it interrupted while sending a
    result (the runs' JSON is hundreds of MB) left half a message in the pipe, and the parent's
    Pool.terminate then waited for the rest forever; the others printed their tracebacks. Workers ignore
    it: the parent's KeyboardInterrupt ends the build, and its terminate() stops them (SIGTERM, left to its
    default action: a Python handler raising SystemExit there was once not acted on by an idle worker, and
    terminate() then waited for it forever)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the command's handler (harness.cli) it was forked with


def inherited() -> Any:
    """In a worker of forked_pool: the object it was forked with."""
    assert _INHERITED is not None, "only a worker of forked_pool inherits an object"
    return _INHERITED
