"""Executors run planned jobs: `local` (in-process, the default) or `ray` (a Ray cluster, extra harness[ray]).

Importing this package never imports ray; the Ray executor does, when it starts.
"""

from __future__ import annotations

from harness.errors import HarnessError, close_match
from harness.executors.base import (
    ExecutionStats,
    Executor,
    JobWorker,
    ProgressCallback,
    SweepContext,
    TaskSource,
)
from harness.executors.local import LocalExecutor

EXECUTORS = ("local", "ray")

__all__ = [
    "EXECUTORS",
    "ExecutionStats",
    "Executor",
    "JobWorker",
    "LocalExecutor",
    "ProgressCallback",
    "SweepContext",
    "TaskSource",
    "make_executor",
]


def make_executor(name: str = "local", address: str | None = None) -> Executor:
    """The executor named on the command line (`--executor`, `--address`)."""
    if name == "local":
        if address:
            raise HarnessError(
                f"--address {address} only applies to --executor ray; drop it or add --executor ray."
            )
        return LocalExecutor()
    if name == "ray":
        from harness.executors.ray import RayExecutor, RayOptions

        return RayExecutor(RayOptions(address=address or None))
    raise HarnessError(f'Unknown executor "{name}".{close_match(name, EXECUTORS)} Expected one of: {", ".join(EXECUTORS)}.')
