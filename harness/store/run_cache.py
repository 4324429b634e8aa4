"""A copy of a large store's runs as the site reads them (StoreReader.snapshot), so that a rebuild after a few
new runs reads only those from SQLite.

Reading 150,000 runs with their metrics and timings is ~4 s of Python building a million small tuples;
loading this copy takes ~1.4 s. A run's row never changes under the same key without its status or
finished_at changing (one transaction writes a run with its metrics and timing; a re-run replaces it), so
the copy is checked against one scan of (key, status, finished_at): the runs that differ, and the new ones,
are read from the store, and the runs gone from it are dropped. The result is the list a full read makes.

The copy lives in the user's cache folder ($HARNESS_SITE_CACHE, else $XDG_CACHE_HOME/harness/site-runs,
else ~/.cache/harness/site-runs), one file per store path, never in the published site folder;
HARNESS_SITE_CACHE=off turns it off (writing it costs ~2 CPU-s at 150,000 runs, wasted where nothing reads
it again). It is written
with `marshal` (plain tuples, dicts, strings and numbers: loading it runs no code, unlike pickle) and is
dropped, not trusted, when it cannot be read, was written by another harness or Python, or is malformed.
Small stores (under MIN_RUNS runs) are read in full and leave no copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import harness
from harness.cache_dirs import harness_cache_root
from harness.digests import code_digest
from harness.records import MetricValue
from harness.store.rows import RunRow, Timing

MIN_RUNS = 20_000  # below this a full read takes well under a second
_FORMAT = 1
# Version 4 writes a string that several runs share once, and loads it once: at 150,000 runs it loads in 1.9
# against 2.7 CPU-s for version 2 (no references), into 456 against 560 MB; it writes in 2.3 against 1.6 s,
# off the pages' path (the downloads' process).
_MARSHAL_VERSION = 4
_STORE_CODE = ("reader.py", "rows.py", "run_cache.py")  # the code that makes a RunRow: a change drops every copy
_N_FIELDS, _N_TIMING, _N_METRIC = len(RunRow._fields) - 4, len(Timing._fields), len(MetricValue._fields)


@lru_cache(maxsize=1)
def _stamp() -> tuple[Any, ...]:
    code = code_digest(Path(__file__).parent / name for name in _STORE_CODE)
    return (_FORMAT, harness.__version__, code, sys.version_info[:2], _MARSHAL_VERSION)


OFF = "off"  # HARNESS_SITE_CACHE=off: no copy (a throwaway CI container, where it would never be read again)


def cache_folder() -> Path | None:
    """Where the copies live; None when HARNESS_SITE_CACHE is "off"."""
    explicit = os.environ.get("HARNESS_SITE_CACHE")
    if explicit == OFF:
        return None
    if explicit:
        return Path(explicit)
    return harness_cache_root() / "site-runs"


def for_store(db: Path) -> RunCache | None:
    """The copy of the store at `db` in the cache folder, or None when the cache is off."""
    folder = cache_folder()
    return None if folder is None else RunCache(db, folder)


class RunCache:
    """The cached runs of the store at `db`; `runs` reads through it, `save` (after a build) updates it.

    The copy is a base file of every run plus a small delta file (the runs that changed since the base, and
    the keys gone): writing the whole base costs ~2.5 s at 150,000 runs, so a build that found a few new runs
    writes only the delta, and the base again once the delta holds a fifth of it."""

    def __init__(self, db: Path, folder: Path, min_runs: int | None = None) -> None:
        name = hashlib.sha256(os.fsencode(Path(db).resolve())).hexdigest()[:32]
        self.path = folder / f"{name}.marshal"
        self.delta_path = folder / f"{name}.delta.marshal"
        self.min_runs = MIN_RUNS if min_runs is None else min_runs
        self.changed = False  # whether `runs` found the copy missing or out of date
        self.read_from_store = 0  # runs `runs` read from SQLite (all of them without a usable copy)
        self._base: dict[str, RunRow] = {}  # the base file's runs, as loaded
        self._base_id = ""

    def runs(
        self,
        states: list[tuple[str, str, str]],
        read: Callable[[list[str] | None], list[RunRow]],
        order: Callable[[RunRow], Any],
    ) -> list[RunRow]:
        """The store's runs in `order`, from the copy where it is current. states: every run's (key, status,
        finished_at) in the store; read: read the runs with these keys from the store (None: every run)."""
        cached = self._load() if len(states) >= self.min_runs or self.path.exists() else None
        if cached is None:
            self.changed = len(states) >= self.min_runs
            self.read_from_store = len(states)
            return read(None)
        kept, stale = [], []
        for key, status, finished_at in states:
            row = cached.get(key)
            if row is not None and row.status == status and row.finished_at == finished_at:
                kept.append(row)
            else:
                stale.append(key)
        self.changed = bool(stale) or len(kept) != len(cached)
        self.read_from_store = len(stale)
        runs = kept + read(stale) if stale else kept
        runs.sort(key=order)
        return runs

    def save(self, runs: Sequence[RunRow]) -> None:
        """Bring the copy up to `runs` (atomically; a failure to write leaves the build as it is)."""
        base = self._base
        changed = [r for r in runs if base.get(r.key) is not r]  # what `runs` did not take from the base file
        keys = {r.key for r in runs}
        removed = tuple(k for k in base if k not in keys)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not base or len(changed) + len(removed) > len(base) // 5:
                self._base_id = os.urandom(8).hex()
                _write(self.path, (_stamp(), self._base_id, _flat(runs)))
                self.delta_path.unlink(missing_ok=True)
            else:
                _write(self.delta_path, (_stamp(), self._base_id, _flat(changed), removed))
        except OSError:
            pass

    def load_beside(self, name: str, made_by: str) -> Any:
        """What save_beside(name, made_by, ...) saved beside the copy (something made from these runs, e.g. the
        downloads' lines), or None: missing, unreadable, or saved by other code (`made_by`: a digest of it)."""
        try:
            stamp, by, data = marshal.loads(self._beside(name).read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return None
        return data if stamp == _stamp() and by == made_by else None

    def save_beside(self, name: str, made_by: str, data: Any) -> None:
        """Keep `data` (plain tuples, strings, numbers) for load_beside; a failure to write is ignored."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _write(self._beside(name), (_stamp(), made_by, data))
        except OSError:
            pass

    def _beside(self, name: str) -> Path:
        return self.path.with_name(f"{self.path.stem}.{name}.marshal")

    def drop(self) -> None:
        """Delete the copy and what was saved beside it (e.g. after a build failed on a value it may have held)."""
        try:  # called while a build fails: never raise over its error
            beside = list(self.path.parent.glob(f"{self.path.stem}.*.marshal"))
        except OSError:
            beside = []
        for path in (self.path, self.delta_path, *beside):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)

    def _load(self) -> dict[str, RunRow] | None:
        try:
            stamp, base_id, flat = marshal.loads(self.path.read_bytes())
            if stamp != _stamp() or base_id.__class__ is not str:
                return None
            self._base, self._base_id = _rows(flat), base_id
        except (OSError, EOFError, ValueError, TypeError, IndexError):
            return None
        runs = dict(self._base)
        try:
            stamp, of, flat, removed = marshal.loads(self.delta_path.read_bytes())
            if stamp == _stamp() and of == base_id:
                for key in removed:
                    runs.pop(key, None)
                runs.update(_rows(flat))
        except (OSError, EOFError, ValueError, TypeError, IndexError):
            pass  # no delta, or a damaged one: the runs it held are read from the store
        return runs


def _flat(runs: Iterable[RunRow]) -> Any:
    return tuple(
        (tuple(r[:_N_FIELDS]), tuple(tuple(m) for m in r.metrics.values()), None if r.timing is None else tuple(r.timing),
         tuple(r.metric_notes.items()), r.warnings)
        for r in runs
    )  # fmt: skip


def _write(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(marshal.dumps(data, _MARSHAL_VERSION))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _rows(flat: tuple[Any, ...]) -> dict[str, RunRow]:
    """RunRows from their flat form (as StoreReader builds them: tuple.__new__, no per-field checks; a
    malformed copy raises TypeError, ValueError or IndexError)."""
    new = tuple.__new__
    out: dict[str, RunRow] = {}
    no_notes: dict[str, str] = {}
    for fields, metrics, timing, notes, cautions in flat:
        if (
            len(fields) != _N_FIELDS or fields[0].__class__ is not str or (timing and len(timing) != _N_TIMING)
            or cautions.__class__ is not tuple
        ):  # fmt: skip
            raise ValueError("malformed run")
        values = {}
        for m in metrics:
            if len(m) != _N_METRIC:
                raise ValueError("malformed metric")
            values[m[0]] = new(MetricValue, m)
        timing = None if timing is None else new(Timing, timing)
        out[fields[0]] = new(RunRow, (*fields, values, timing, dict(notes) if notes else no_notes, cautions))
    return out
