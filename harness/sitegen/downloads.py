"""The downloads: results.csv, and the runs that results.json holds beside the rankings; then the store's
RunCache, when the build found it out of date.

All three need only the store's snapshot, not the rankings. On a large store they are made in one forked process
started as soon as the snapshot is read, while this process builds the board and ranks (a phase that keeps
one core busy), instead of later in the render pool, where every core is busy. At 150,000 runs that moves
~4 CPU-s (encoding 150,000 rows of ~40 columns) off the busiest phase of a build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.sitegen.exports import results_csv, run_rows
from harness.sitegen.forking import can_fork, forked_pool, inherited
from harness.sitegen.writer import IncrementalWriter, sync_file
from harness.store.rows import StoreSnapshot
from harness.store.run_cache import RunCache

CSV = "results.csv"
JSON = "results.json"
FORK_FROM_RUNS = 20_000  # below this encoding the runs takes well under a second: no process


class Downloads:
    """Makes results.csv and the runs' JSON for results.json (see `runs_json`), in a forked process when
    `fork` and the store is large. Use as a context manager: leaving it early (an error) stops the process."""

    def __init__(
        self, writer: IncrementalWriter, snapshot: StoreSnapshot, inputs: str, fork: bool, cache: RunCache | None = None
    ) -> None:
        self.writer = writer
        self._pool: Any = None
        self._pending: Any = None
        self._saving: Any = None
        self._done: tuple[dict[str, Any], bool, str] | None = None
        self._recorded = False
        # Kept from the previous build (same inputs, untouched): results.json is then not rendered either.
        self.needed = not writer.reuse((CSV, JSON), inputs)
        if not self.needed:
            return
        job = (snapshot, writer.out, writer.previous(CSV), inputs, cache if cache and cache.changed else None)
        if fork and len(snapshot.runs) >= FORK_FROM_RUNS and can_fork():
            self._pool = forked_pool(1, job)
            self._pending = self._pool.apply_async(_export)
            self._saving = self._pool.apply_async(_save_cache)  # after the downloads, which the pages wait for
        else:
            self._done = _make(*job[:4])
            _save_cache(job)

    def finish(self) -> None:
        """Wait for the process (the cache it saves last); call once the build is otherwise done."""
        if self._saving is not None:
            self._saving.get()
            self._saving = None
        self._stop()

    def __enter__(self) -> Downloads:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def runs_json(self) -> str | None:
        """The runs' JSON text for results.json (waits for the process; records results.csv); None when
        the previous build's downloads are kept."""
        if not self.needed:
            return None
        if self._done is None:
            self._done = self._pending.get()
        entry, written, runs = self._done
        if not self._recorded:
            self.writer.record(CSV, entry, written)
            self._recorded = True
        return runs

    def _stop(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None


def _make(
    snapshot: StoreSnapshot, out: Path, before: dict[str, Any] | None, inputs: str
) -> tuple[dict[str, Any], bool, str]:
    rows = run_rows(snapshot)
    entry, written = sync_file(out, CSV, results_csv(snapshot, rows), before, inputs)
    return entry, written, rows.json()


def _export() -> tuple[dict[str, Any], bool, str]:
    return _make(*inherited()[:4])


def _save_cache(job: tuple[Any, ...] | None = None) -> None:
    snapshot, *_, cache = job or inherited()
    if cache is not None:
        cache.save(snapshot.runs)
