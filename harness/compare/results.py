"""Result sets read for comparison: a results database (opened read-only) or an exported baseline JSON.

A result set is the newest run per (model, task, protocol, seed) among the runs a selector picks:
`label:X`, `suite:X`, `git:PREFIX`, or a bare value tried as label, then suite, then git hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, close_match
from harness.outfile import write_out
from harness.store import StoreReader, baseline
from harness.store.rows import RunResult
from harness.store.schema import has_sqlite_header

SELECTOR_COLUMNS = {"label": "label", "suite": "suite", "git": "git_hash"}


@dataclass(frozen=True, eq=False)
class ResultSet:
    source: str  # e.g. "results/harness.db [label=main]", for messages and reports
    runs: tuple[RunResult, ...]
    superseded: int = 0  # older runs of the same (model, task, protocol, seed) that were ignored

    def by_pair(self) -> dict[tuple[str, str, str], list[RunResult]]:
        out: dict[tuple[str, str, str], list[RunResult]] = {}
        for run in sorted(self.runs, key=lambda r: (r.pair_key, r.seed)):
            out.setdefault(run.pair_key, []).append(run)
        return out


# ---- selection ---------------------------------------------------------------------------------------


def select_rows(
    rows: Sequence[Mapping[str, Any]], selector: str | None, source: str
) -> list[Mapping[str, Any]]:
    """Rows matching the selector; a selector that matches nothing is an error naming what exists."""
    if not selector:
        return list(rows)
    kind, sep, value = selector.partition(":")
    if sep and kind in SELECTOR_COLUMNS:
        kinds = [kind]
    else:
        kinds, value = list(SELECTOR_COLUMNS), selector
    for k in kinds:
        picked = [r for r in rows if _matches(r, k, value)]
        if picked:
            return picked
    available = {k: sorted({str(r[c]) for r in rows if r.get(c)}) for k, c in SELECTOR_COLUMNS.items()}
    every = [v for values in available.values() for v in values]
    listing = "; ".join(f"{k}s: {', '.join(v[:12]) or '(none)'}" for k, v in available.items())
    raise HarnessError(
        f'No runs in {source} match "{selector}".{close_match(value, every)} A selector is label:NAME, '
        f"suite:NAME, git:HASH_PREFIX, or a bare name tried in that order. Available {listing}."
    )


def _select(
    rows: Sequence[Mapping[str, Any]], selector: str | None, source: str, task: str | None, protocol: str | None
) -> list[Mapping[str, Any]]:
    return [
        r
        for r in select_rows(rows, selector, source)
        if (task is None or r["task"] == task) and (protocol is None or r["protocol"] == protocol)
    ]


def _matches(row: Mapping[str, Any], kind: str, value: str) -> bool:
    got = row.get(SELECTOR_COLUMNS[kind])
    if not got:
        return False
    if kind == "git":
        return len(value) >= 4 and str(got).startswith(value)
    return str(got) == value


def _newest_per_job(runs: Iterable[RunResult]) -> tuple[tuple[RunResult, ...], int]:
    newest: dict[tuple[str, str, str, int], RunResult] = {}
    total = 0
    for run in runs:
        total += 1
        slot = (run.model, run.task, run.protocol, run.seed)
        if slot not in newest or run.finished_at > newest[slot].finished_at:
            newest[slot] = run
    return tuple(sorted(newest.values(), key=lambda r: (r.pair_key, r.seed))), total - len(newest)


# ---- databases ---------------------------------------------------------------------------------------


def load_db(
    path: Path, selector: str | None = None, *, task: str | None = None, protocol: str | None = None
) -> ResultSet:
    source = f"{path}" + (f" [{selector}]" if selector else "")

    reader = StoreReader(path)
    try:
        runs = reader.full_runs(lambda rows: _select(rows, selector, str(path), task, protocol))
    finally:
        reader.close()
    kept, superseded = _newest_per_job(runs)
    return ResultSet(source, kept, superseded)


# ---- baseline JSON -----------------------------------------------------------------------------------


def write_baseline(results: ResultSet, out: Path) -> None:
    """The baseline JSON file of `results` (whole or not at all: a failed write leaves no truncated file)."""
    write_out(baseline.baseline_text(results.source, results.runs).encode("utf-8"), out)


def load_baseline_json(
    path: Path, selector: str | None = None, *, task: str | None = None, protocol: str | None = None
) -> ResultSet:
    rows = _select(baseline.read_baseline(path), selector, str(path), task, protocol)
    try:
        runs = [baseline.run_from_json(r) for r in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise HarnessError(
            f"{path}: malformed run entry ({type(exc).__name__}: {exc}). Re-export the baseline."
        ) from None
    kept, superseded = _newest_per_job(runs)
    return ResultSet(f"{path}" + (f" [{selector}]" if selector else ""), kept, superseded)


# ---- either ------------------------------------------------------------------------------------------


def load_results(
    path: str | Path, selector: str | None = None, *, task: str | None = None, protocol: str | None = None
) -> ResultSet:
    """Read a .db results database or a .json exported baseline (by suffix, else by content)."""
    p = Path(path)
    if p.exists() and not p.is_file() and not p.is_dir():  # a named pipe nobody writes would block the read
        raise HarnessError(f"{p} is not a regular file (a device or a pipe); expected a results .db or an exported baseline .json.")
    if p.suffix.lower() == ".json":
        return load_baseline_json(p, selector, task=task, protocol=protocol)
    if p.suffix.lower() in (".db", ".sqlite", ".sqlite3"):
        return load_db(p, selector, task=task, protocol=protocol)
    if p.is_dir():
        raise HarnessError(f"{p} is a folder; expected a results .db or an exported baseline .json file.")
    if not p.exists():
        raise HarnessError(f"{p} does not exist (expected a results .db or an exported baseline .json).")
    loader = load_db if has_sqlite_header(p) else load_baseline_json
    return loader(p, selector, task=task, protocol=protocol)
