"""The downloads: results.csv, and the runs that results.json holds beside the rankings; then the store's
RunCache, when the build found it out of date, and the runs' lines beside it (exports.RunLines: a build
re-encodes only the new and changed runs; after one model at 150,000 runs the downloads take ~1.4 instead of
~4.4 CPU-s, scripts/bench_downloads.py).

All three need only the store's snapshot, not the rankings. On a large store they are made in one forked process
started as soon as the snapshot is read, while this process builds the board and ranks (a phase that keeps
one core busy), instead of later in the render pool, where every core is busy. At 150,000 runs that moves
~4 CPU-s (encoding 150,000 rows of ~40 columns) off the busiest phase of a build.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from harness import export
from harness.digests import code_digest
from harness.sitegen import exports, forking
from harness.sitegen.exports import RunLines, Table, results_csv, run_rows, run_rows_reusing
from harness.sitegen.forking import can_fork, forked_pool, inherited
from harness.sitegen.writer import IncrementalWriter, sync_file
from harness.store.rows import StoreSnapshot
from harness.store.run_cache import RunCache

CSV = "results.csv"
JSON = "results.json"


class Downloads:
    """Makes the runs' JSON for results.json (see `runs_json`), results.csv and, when the build found them out
    of date, the store's RunCache and the runs' lines: in that order, in a forked process when `fork` and the
    store is large. The pages wait only for the JSON; `finish` waits for the rest and only then writes
    results.csv into the site folder (after the build claimed its files: IncrementalWriter.claim). Use as a
    context manager: leaving it early (an error) stops the process."""

    def __init__(
        self, writer: IncrementalWriter, snapshot: StoreSnapshot, inputs: str, fork: bool, cache: RunCache | None = None
    ) -> None:
        self.writer = writer
        self._pool: Any = None
        self._json: Any = None  # AsyncResult of the runs' JSON
        self._rest: Any = None  # ... of results.csv's bytes made (then the cache is saved)
        self._job: _Job | None = None  # the job when made in this process
        # Kept from the previous build (same inputs, untouched): results.json is then not rendered either.
        self.needed = not writer.reuse((CSV, JSON), inputs)
        if not self.needed:
            return
        job = _Job(snapshot, writer.out, writer.previous(CSV), inputs, cache)
        if fork and len(snapshot.runs) >= forking.FORK_FROM_RUNS and can_fork():
            self._pool = forked_pool(1, job)
            self._json = self._pool.apply_async(_inherited_json)
            self._rest = self._pool.apply_async(_inherited_rest)
        else:
            self._job = job
            self._json = _Done(job.runs_json())
            job.rest()
            self._rest = _Done(None)

    def __enter__(self) -> Downloads:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def runs_json(self) -> str | None:
        """The runs' JSON text for results.json (waits for it); None when the previous build's downloads are kept."""
        return self._json.get() if self.needed else None

    def finish(self) -> None:
        """Wait for results.csv and the cache, then write results.csv (and record it); call once the build
        is otherwise done."""
        if self.needed:
            self._rest.get()
            if self._job is not None:
                entry, written = self._job.write()
            else:  # where its bytes are: the pool's one process
                entry, written = self._pool.apply_async(_inherited_write).get()
            self.writer.record(CSV, entry, written)
        self._stop()

    def _stop(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None


LINES = "lines"  # the runs' lines, saved beside the RunCache


class _Job:
    def __init__(
        self, snapshot: StoreSnapshot, out: Path, before: dict[str, Any] | None, inputs: str, cache: RunCache | None
    ) -> None:
        self.snapshot, self.out, self.before, self.inputs, self.cache = snapshot, out, before, inputs, cache
        self.rows: Table | None = None
        self.lines: RunLines | None = None  # to save beside the cache: they changed
        self.csv: str | None = None  # results.csv, made by `rest`, written by `write`

    def runs_json(self) -> str:
        if self.cache is None or len(self.snapshot.runs) < self.cache.min_runs:
            self.rows = run_rows(self.snapshot)
        else:
            previous = RunLines.of(self.cache.load_beside(LINES, _lines_made_by()))
            self.rows, lines, encoded = run_rows_reusing(self.snapshot, previous)
            if encoded or previous is None or len(previous.rows) != len(lines.rows):
                self.lines = lines
        return self.rows.json()

    def rest(self) -> None:
        """Make results.csv, then save the cache and the lines."""
        assert self.rows is not None, "runs_json first"
        self.csv = results_csv(self.snapshot, self.rows)
        if self.cache is not None:
            if self.cache.changed:
                self.cache.save(self.snapshot.runs)
            if self.lines is not None:
                self.cache.save_beside(LINES, _lines_made_by(), self.lines.flat())

    def write(self) -> tuple[dict[str, Any], bool]:
        """Write results.csv into the site folder: its state entry, whether it was written."""
        assert self.csv is not None, "rest first"
        return sync_file(self.out, CSV, self.csv, self.before, self.inputs)


@lru_cache(maxsize=1)
def _lines_made_by() -> str:
    """The code that makes a run's line: another version's lines are not read."""
    return code_digest([Path(exports.__file__), Path(export.__file__)])  # export: its CSV formula guard


class _Done:
    def __init__(self, value: Any) -> None:
        self.value = value

    def get(self) -> Any:
        return self.value


def _inherited_json() -> str:
    job: _Job = inherited()
    return job.runs_json()


def _inherited_rest() -> None:
    job: _Job = inherited()
    job.rest()


def _inherited_write() -> tuple[dict[str, Any], bool]:
    job: _Job = inherited()
    return job.write()
