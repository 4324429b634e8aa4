"""The task pages' pick forms, made in a process forked once the rankings are done.

The forms need the board and the paired tests' predictions, not the rankings' placements nor the page
inputs. While this process prepares the pages (digests of every page's inputs, ~2 s at 150,000 runs, on one
core) the other core was idle; the forms (1.5-2.7 CPU-s there) were then made here while the render workers
waited for the task pages. The forked process inherits the rankings' loaded predictions and bootstrap
vectors, and reads any others through its own connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from harness.metrics import MetricRegistry
from harness.sitegen import forking, pickform
from harness.sitegen.forking import can_fork, forked_pool, inherited
from harness.sitegen.ranking import RankingConfig, SharedResamples
from harness.sitegen.results import Board
from harness.store import StoreReader

Form = dict[str, Any]


class FormMaker:
    """Every task's pick form (see pickform.iter_forms), in a forked process when `fork` and the board is
    large, else here as they are asked for. `cache` (the p-values of run pairs, from the previous build) is
    extended with the pairs tested. Use as a context manager: leaving it early (an error) stops the process."""

    def __init__(
        self,
        board: Board,
        reader: StoreReader,
        store_signature: str,
        cfg: RankingConfig,
        cache: dict[str, float],
        metrics: MetricRegistry | None,
        shared: SharedResamples,
        fork: bool,
    ) -> None:
        self.cache = cache
        self._job = _Job(board, reader, store_signature, cfg, cache, metrics, shared)
        self._pool: Any = None
        self._result: Any = None
        if fork and len(board.results) >= forking.FORK_FROM_RUNS and can_fork():
            self._pool = forked_pool(1, self._job)
            self._result = self._pool.apply_async(_inherited_forms)

    def __enter__(self) -> FormMaker:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def __iter__(self) -> Iterator[tuple[str, Form]]:
        """(task, its form), task by task; waits for the forked process, if any, on the first."""
        made = self._result.get() if self._result is not None else None
        self._stop()
        if made is None:  # made here (no process; or the store changed after this build's snapshot)
            yield from self._job.forms(self._job.reader, self._job.shared)
            return
        forms, cache = made
        self.cache.update(cache)
        yield from forms.items()

    def _stop(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None


class _Job:
    def __init__(
        self,
        board: Board,
        reader: StoreReader,
        store_signature: str,
        cfg: RankingConfig,
        cache: dict[str, float],
        metrics: MetricRegistry | None,
        shared: SharedResamples,
    ) -> None:
        self.board, self.reader, self.store_signature, self.cfg = board, reader, store_signature, cfg
        self.cache, self.metrics, self.shared = cache, metrics, shared

    def forms(self, reader: StoreReader, shared: SharedResamples) -> Iterator[tuple[str, Form]]:
        return pickform.iter_forms(self.board, reader, self.cfg, self.cache, self.metrics, shared)

    def forked(self) -> tuple[dict[str, Form], dict[str, float]] | None:
        """In the forked process: the forms and the extended cache, read through a connection of its own
        (the parent's must not be used across a fork). None when the store changed since the parent's
        snapshot (a sweep writing meanwhile): the parent then makes them in its own read transaction."""
        with StoreReader(self.reader.path) as reader:
            if reader.signature() != self.store_signature:
                return None
            forms = dict(self.forms(reader, self.shared.reading_from(reader)))
        return forms, self.cache


def _inherited_forms() -> tuple[dict[str, Form], dict[str, float]] | None:
    job: _Job = inherited()
    return job.forked()
