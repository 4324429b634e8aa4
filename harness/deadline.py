"""A time limit for one job (`harness run --job-timeout`): a timer signal stops the job's code where it is.

SIGALRM interrupts Python code between two bytecodes and a blocking call (a sleep, a read) at once; a single
long call into a C library (one huge matrix product) is stopped when it returns. Signals reach only the main
thread, so a limit is refused, before any job runs, where jobs would run elsewhere (Windows, a thread).
"""

from __future__ import annotations

import math
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from harness.errors import HarnessError


class JobTimedOut(BaseException):
    """Raised in a job's code when its time is up. A BaseException: a plugin's `except Exception` must not
    swallow it and carry on."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds

    def where(self) -> str:
        """The innermost line the job was running, e.g. "in point (metric.py:12)"."""
        frames = [f for f in traceback.extract_tb(self.__traceback__) if f.filename != __file__]
        if not frames:
            return ""
        last = frames[-1]
        return f" in {last.name} ({Path(last.filename).name}:{last.lineno})"


def check_job_timeout(seconds: float | None, executor: str = "local", flag: str = "--job-timeout") -> None:
    """Refuse a limit that is not a positive finite number of seconds, or that this process cannot enforce when
    the jobs run in it (the local executor; a Ray actor runs its jobs in its own main thread)."""
    if seconds is None:
        return
    if not math.isfinite(seconds) or seconds <= 0:
        raise HarnessError(f"{flag} must be a positive number of seconds (e.g. 600), got {seconds!r}.")
    if executor == "local" and not _timer_signals_here():
        raise HarnessError(_cannot_enforce(seconds))


@contextmanager
def job_deadline(seconds: float | None) -> Iterator[None]:
    """Raise JobTimedOut in the block's code once `seconds` have passed (None: no limit)."""
    if seconds is None:
        yield
        return
    if not _timer_signals_here():
        raise HarnessError(_cannot_enforce(seconds))

    def expired(signum: int, frame: FrameType | None) -> None:
        raise JobTimedOut(seconds)

    previous = signal.signal(signal.SIGALRM, expired)
    their_delay, their_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if their_delay:  # a timer someone else set (a test runner's) goes on with what it had left
            left = max(their_delay - (time.monotonic() - started), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, their_interval)


def _timer_signals_here() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def _cannot_enforce(seconds: float) -> str:
    return (
        f"A job time limit ({seconds:g} s, --job-timeout) cannot be enforced here: it stops a job with a timer "
        "signal, which needs Linux or macOS and reaches only the main thread (this run was started from another "
        "thread, or on Windows). Run it from the main thread, or leave the limit out."
    )
