"""The downloads next to the pages: every stored run as CSV and as JSON (the same flat rows).

Numbers are rounded (metrics to 6 decimals, timings to 4) to keep the files small enough to publish
(GitHub refuses files over 100 MB); the database keeps full precision. Per-class scores and
per-example predictions stay in the database, which any SQLite tool opens.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from types import NoneType
from typing import Any

import numpy as np

from harness.export import FORMULA_START, spreadsheet_safe
from harness.metrics.stats import Placement
from harness.records import MetricValue
from harness.sitegen.ranking import Rankings
from harness.store.rows import RunRow, StoreSnapshot, Timing

RUN_FIELDS = (
    "key", "suite", "suite_path", "model", "task", "task_version", "data_fingerprint", "protocol", "seed",
    "status", "error", "started_at", "finished_at", "duration_s", "harness_version", "git_hash",
)  # fmt: skip
TIMING_FIELDS = (
    "hardware", "device", "batch_size", "p50_ms", "p95_ms", "p99_ms", "items_per_s", "peak_mem_mb", "params",
    "n_timed", "contended",
)  # fmt: skip
TIMING_DIGITS = {"p50_ms": 4, "p95_ms": 4, "p99_ms": 4, "items_per_s": 2, "peak_mem_mb": 2}  # decimals kept


def metric_ids(snapshot: StoreSnapshot) -> tuple[str, ...]:
    """Every single-number metric the stored tasks declare, in declaration order (first task first)."""
    ids = dict.fromkeys(
        m.id for t in sorted(snapshot.tasks.values(), key=lambda t: t.name) for m in t.scalar_metrics
    )
    return tuple(ids)


def columns(metrics: Sequence[str]) -> tuple[str, ...]:
    return (
        *RUN_FIELDS,
        *(f"{m}{suffix}" for m in metrics for suffix in ("", "_ci_low", "_ci_high")),
        *TIMING_FIELDS,
        "warnings",  # what the protocol recorded about the result's reliability, one per line
    )


RANK_COLUMNS = ("task", "protocol", "model", "rank", "tied_with", "p_value", "tested")
AGGREGATE_COLUMNS = (
    "group",
    "protocol",
    "model",
    "score",
    "n_tasks",
    "n_tasks_total",
    "tasks_at_rank_1",
    "mean_rank",
    "rank",
    "tied_with",
    "p_value",
    "tested",
)


def _round(v: float | None, digits: int) -> float | None:
    return None if v is None or not math.isfinite(v) else round(v, digits)


# ---- encoding: a table is written column by column, each distinct value formatted once -----------------
#
# A store of 150,000 runs makes 6 million cells; csv.writer and json.dumps, cell by cell, took ~9 s.
# Here every column is formatted as a whole: each distinct value once (a test set of 100 examples has
# few distinct accuracies; names and statuses repeat), floats rounded with numpy where that is exact.
# Each cell's text is what csv.writer (excel dialect, "\n" line ends) and json.dumps (compact separators,
# allow_nan=False) write for it; tests/test_exports.py checks that against both on awkward values.

_DUMP = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_json_str: Callable[[str], str] = json.encoder.encode_basestring_ascii  # json.dumps' (ensure_ascii)
_CSV_SPECIAL = re.compile(r'[,"\r\n]')  # what makes csv.writer quote a field (delimiter, quote, line ends)


def _csv_cell(v: Any) -> str:
    """csv.writer's text for one field of a row of several fields (text a spreadsheet would run as a formula
    prefixed with ', as `harness export` writes it)."""
    if v is None:
        return ""
    v = spreadsheet_safe(v)
    text = repr(v) if isinstance(v, float) else str(v)
    if not _CSV_SPECIAL.search(text):
        return text
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([v])  # quoted: the quoting rule is csv's own
    return buf.getvalue()[:-1]


@dataclass(frozen=True)
class Column:
    """One column of a download: each cell's CSV text and JSON text."""

    csv: list[str]
    json: list[str]


def encode_column(values: Sequence[Any], digits: int | None = None) -> Column:
    """Each value as csv.writer and json.dumps write it; floats rounded to `digits` first when given
    (then a non-finite float is written as a missing value, like None)."""
    kinds = set(map(type, values))
    if digits is not None and kinds <= {float, NoneType}:
        return _float_column(values, digits)
    if digits is None and (kinds <= {str, int, NoneType} or kinds <= {str, bool, NoneType}):
        return _distinct_column(values, kinds)
    cells = [_round(v, digits) for v in values] if digits is not None else values
    return Column(list(map(_csv_cell, cells)), list(map(_DUMP, cells)))


def _distinct_column(values: Sequence[Any], kinds: set[type]) -> Column:
    """Strings, ints or bools (no two distinct ones compare equal), or None: each distinct one formatted once."""
    distinct = dict.fromkeys(values)
    distinct.pop(None, None)
    keys = list(distinct)
    if kinds <= {str, NoneType}:
        # no field needs quoting or a formula guard: written as it is
        plain = not _CSV_SPECIAL.search("".join(keys)) and not any(k.startswith(FORMULA_START) for k in keys)
        as_csv = keys if plain else list(map(_csv_cell, keys))
        as_json = list(map(_json_str, keys))
    else:
        as_csv, as_json = list(map(_csv_cell, keys)), list(map(_DUMP, keys))
    if len(keys) == len(values):  # all distinct, none missing: already in order
        return Column(as_csv, as_json)
    csv_of = dict(zip(keys, as_csv, strict=True))
    json_of = dict(zip(keys, as_json, strict=True))
    csv_of[None], json_of[None] = "", "null"
    return Column(list(map(csv_of.__getitem__, values)), list(map(json_of.__getitem__, values)))


def _float_column(values: Sequence[float | None], digits: int) -> Column:
    """Floats (or None), rounded: see encode_floats."""
    return encode_floats([values], [digits])


def encode_floats(columns: Sequence[Sequence[Any]], digits: Sequence[int]) -> Column:
    """Consecutive columns of floats (or None) as one column whose cells are the fields joined by commas,
    each float rounded to its column's digits. Formatted in numpy, not one Python string per value:
    the rows of a character matrix per column (_float_cells), joined through a boolean mask; a missing
    value is empty in CSV, null in JSON."""
    if not all(set(map(type, values)) <= {float, NoneType} for values in columns):
        parts = [encode_column(values, d) for values, d in zip(columns, digits, strict=True)]
        return Column(
            list(map(",".join, zip(*(p.csv for p in parts), strict=True))),
            list(map(",".join, zip(*(p.json for p in parts), strict=True))),
        )
    n = len(columns[0])
    blocks: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    gaps = np.zeros(n, dtype=bool)  # rows with a missing value somewhere
    for values, d in zip(columns, digits, strict=True):
        chars, start, end = _float_cells(np.array(values, dtype=np.float64), d)
        at = np.arange(chars.shape[1])
        gaps |= end == 0
        blocks += (chars, np.full((n, 1), ord(","), dtype=np.uint8))
        masks += ((at >= start[:, None]) & (at < end[:, None]), np.ones((n, 1), dtype=bool))
    if not n:
        return Column([], [])
    blocks[-1] = np.full((n, 1), ord("\n"), dtype=np.uint8)  # the last comma ends the row instead
    text = np.concatenate(blocks, axis=1)[np.concatenate(masks, axis=1)].tobytes().decode("ascii")
    as_csv = text[:-1].split("\n")
    if not gaps.any():
        return Column(as_csv, as_csv)
    as_json = as_csv.copy()  # JSON writes null where CSV writes nothing (numbers hold no commas)
    for i in np.flatnonzero(gaps).tolist():
        as_json[i] = ",".join([cell or "null" for cell in as_csv[i].split(",")])
    return Column(as_csv, as_json)


def _float_cells(a: np.ndarray, digits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(chars (n, width) uint8, start, end): row i's characters chars[i, start[i]:end[i]] are
    repr(round(a[i], digits)); empty (start = end = 0) for NaN and infinities.

    A rounded float r is the float nearest to q / 10**digits for an integer q (round_floats finds it),
    and repr writes the shortest digits that give r back: when q has at most 15 digits those are q's own
    digits (any other decimal with as few digits lies further from r than its neighbouring floats).
    repr writes them positionally (sign, integer part, point, fraction without trailing zeros, at least
    one digit) for 1e-4 <= |r| < 1e16, and 0 as 0.0 or -0.0. Other values take Python's repr."""
    n = len(a)
    finite = np.isfinite(a)
    with np.errstate(over="ignore", invalid="ignore"):
        y = np.where(finite, a, 0.0) * 10.0**digits
        q = np.rint(y)
        fast = (
            finite
            & (1 <= digits <= 15)
            & (np.abs(y - np.floor(y) - 0.5) > np.abs(y) * 2.0**-50)  # round_floats' check
            & (np.abs(q) < 1e15)
            & ((q == 0) | (np.abs(q) >= 10.0 ** max(digits - 4, 0)))
        )
    slow = np.flatnonzero(finite & ~fast).tolist()
    slow_texts = [repr(round(float(a[i]), digits)).encode() for i in slow]
    whole, frac = np.divmod(np.abs(np.where(fast, q, 0.0)).astype(np.int64), 10**digits)
    int_digits = len(str(int(whole.max()))) if n else 1
    point = 1 + int_digits  # column 0: room for a sign
    width = max(point + 1 + digits, 4, *map(len, slow_texts))
    chars = np.zeros((n, width), dtype=np.uint8)
    powers = 10 ** np.arange(max(int_digits, digits) - 1, -1, -1, dtype=np.int64)  # most significant first
    chars[:, 1:point] = 48 + (whole[:, None] // powers[-int_digits:]) % 10
    chars[:, point] = ord(".")
    if digits:
        chars[:, point + 1 : point + 1 + digits] = 48 + (frac[:, None] // powers[-digits:]) % 10
    start = np.full(n, point - 1, dtype=np.int64)  # the integer part's first digit
    for p in range(1, int_digits):
        start -= whole >= 10**p
    negative = np.signbit(q) & fast
    start[negative] -= 1
    chars[negative, start[negative]] = ord("-")
    end = np.full(n, point + 1 + digits, dtype=np.int64)  # less the fraction's trailing zeros, keeping one
    for p in range(1, digits):
        end -= frac % 10**p == 0
    for i, text in zip(slow, slow_texts, strict=True):
        chars[i, : len(text)] = np.frombuffer(text, dtype=np.uint8)
        start[i], end[i] = 0, len(text)
    start[~finite], end[~finite] = 0, 0
    return chars, start, end


def round_floats(values: np.ndarray, digits: int) -> list[float]:
    """[round(v, digits) for v in values] for finite floats, in numpy where that gives the same float.

    Python rounds the exact binary value to `digits` decimals (half to even) and takes the nearest float;
    numpy's rint(v * 10**digits) / 10**digits does the same unless v * 10**digits, rounded to a float,
    lies so close to a half that the product's rounding error could have moved it across (or it is too
    large to hold a fraction): those few are rounded by Python."""
    if not 0 <= digits <= 15:
        return [round(float(v), digits) for v in values]
    scale = 10.0**digits  # exact for these digits
    with np.errstate(over="ignore", invalid="ignore"):
        y = values * scale
        out = (np.rint(y) / scale).tolist()
        doubt = ~(np.abs(y) < 2.0**52) | (np.abs(y - np.floor(y) - 0.5) <= np.abs(y) * 2.0**-50)
    for i in np.flatnonzero(doubt).tolist():
        out[i] = round(float(values[i]), digits)
    return out


@dataclass(frozen=True)
class Table:
    """Named fields, as encoded columns of equal length (encode_column; one column of encode_floats
    holds several consecutive fields)."""

    names: tuple[str, ...]
    columns: tuple[Column, ...]

    def csv(self) -> str:
        """Header and rows as csv.writer writes them ("\\n" line ends)."""
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(map(spreadsheet_safe, self.names))  # metric ids are stored text
        if not self.columns or not self.columns[0].csv:
            return buf.getvalue()
        rows = map(",".join, zip(*(c.csv for c in self.columns), strict=True))
        return buf.getvalue() + "\n".join(rows) + "\n"

    def json_rows(self) -> str:
        """The rows as json.dumps writes a list of lists."""
        if not self.columns or not self.columns[0].json:
            return "[]"
        rows = map(",".join, zip(*(c.json for c in self.columns), strict=True))
        return "[[" + "],[".join(rows) + "]]"

    def json(self) -> str:
        """{"columns": [...], "rows": [[...], ...]} as json.dumps writes it."""
        return _json_object(("columns", _DUMP(list(self.names))), ("rows", self.json_rows()))


def _json_object(*fields: tuple[str, str]) -> str:
    """json.dumps of a dict (compact separators), from its keys and its values' JSON texts."""
    return "{" + ",".join(f"{_DUMP(k)}:{v}" for k, v in fields) + "}"


def run_rows(snapshot: StoreSnapshot) -> Table:
    """One flat row per stored run (every status, every task version), in columns(metric_ids(...)) order;
    a metric a run's task does not declare is empty."""
    runs = snapshot.runs
    metrics = metric_ids(snapshot)
    fields = _transpose(runs, RunRow._fields)
    cols = [encode_column(fields[name], 3 if name == "duration_s" else None) for name in RUN_FIELDS]
    by_run = fields["metrics"]
    values: list[Sequence[Any]] = []
    for name in metrics:
        parts = _transpose([m.get(name) or _NO_METRIC for m in by_run], MetricValue._fields)
        values += (parts[part] for part in ("value", "ci_low", "ci_high"))
    if values:
        cols.append(encode_floats(values, [6] * len(values)))  # one block: the columns are consecutive
    timing = _transpose([t or _NO_TIMING for t in fields["timing"]], Timing._fields)
    rounded = [name for name in TIMING_FIELDS if name in TIMING_DIGITS]  # consecutive
    for name in TIMING_FIELDS:
        if name not in TIMING_DIGITS:
            cols.append(encode_column(timing[name]))
        elif name == rounded[0]:
            cols.append(encode_floats([timing[f] for f in rounded], [TIMING_DIGITS[f] for f in rounded]))
    cols.append(encode_column(["\n".join(w) if w else None for w in fields["warnings"]]))
    return Table(columns(metrics), tuple(cols))


@dataclass(frozen=True)
class RunLines:
    """Each run's row of the downloads as text (its fields' CSV and JSON joined by commas) and the run's
    (status, finished_at) it was made from, by run key: kept between builds (in the store's RunCache) so that
    a build re-encodes only the runs that are new or changed. A run's row is a function of the run alone
    (each cell is formatted on its own, see encode_column) under the same columns."""

    names: tuple[str, ...]  # the columns (they depend on the metrics every stored task declares)
    rows: Mapping[str, tuple[str, str, str, str]]  # key -> (status, finished_at, CSV line, JSON line)

    def flat(self) -> tuple[Any, ...]:
        """Plain tuples (for marshal), read back by `of`."""
        return (self.names, tuple(self.rows), tuple(self.rows.values()))

    @classmethod
    def of(cls, flat: Any) -> RunLines | None:
        """The lines `flat` holds, or None when it is not what `flat()` makes (a damaged or foreign file)."""
        try:
            names, keys, rows = flat
            if not (names.__class__ is keys.__class__ is rows.__class__ is tuple) or len(keys) != len(rows):
                return None
            if not all(n.__class__ is str for n in names) or not all(
                len(r) == 4 and r[0].__class__ is r[1].__class__ is r[2].__class__ is r[3].__class__ is str
                for r in rows
            ):
                return None
            return cls(names, dict(zip(keys, rows, strict=True)))
        except (TypeError, ValueError):
            return None


def run_rows_reusing(snapshot: StoreSnapshot, previous: RunLines | None) -> tuple[Table, RunLines, int]:
    """run_rows(snapshot), as one column of whole lines, taking each run's line from `previous` where the run's
    status and finished_at are the ones the line was made from; (table, its lines, how many runs were encoded)."""
    names = columns(metric_ids(snapshot))
    known = previous.rows if previous is not None and previous.names == names else {}
    runs = snapshot.runs
    stale = []
    for r in runs:
        line = known.get(r.key)
        if line is None or line[0] != r.status or line[1] != r.finished_at:
            stale.append(r)
    made = {}
    if stale:
        fresh = run_rows(replace(snapshot, runs=tuple(stale)))
        as_csv = map(",".join, zip(*(c.csv for c in fresh.columns), strict=True))
        as_json = map(",".join, zip(*(c.json for c in fresh.columns), strict=True))
        made = {r.key: (r.status, r.finished_at, c, j) for r, c, j in zip(stale, as_csv, as_json, strict=True)}
    rows = {r.key: made.get(r.key) or known[r.key] for r in runs}
    lines = list(rows.values())
    table = Table(names, (Column([x[2] for x in lines], [x[3] for x in lines]),) if lines else ())
    return table, RunLines(names, rows), len(stale)


_NO_METRIC = MetricValue("", None, None, None)  # type: ignore[arg-type]  # a metric the run lacks
_NO_TIMING = Timing(*(None,) * len(Timing._fields))  # type: ignore[arg-type]  # a run without timing


def _transpose(rows: Sequence[tuple[Any, ...]], names: Sequence[str]) -> dict[str, Sequence[Any]]:
    """Rows of a NamedTuple type -> its field name -> that field's values."""
    return dict(zip(names, zip(*rows, strict=True), strict=True)) if rows else {name: () for name in names}


def results_csv(snapshot: StoreSnapshot, rows: Table) -> str:
    return rows.csv()


def _placement(p: Placement | None) -> list[Any]:
    if p is None:
        return [None, None, None, False]
    return [p.rank, p.tied_with, _round(p.p_value, 6), p.tested]


def rank_rows(rankings: Rankings) -> Table:
    """One row per (task, protocol, model) placement, in RANK_COLUMNS order."""
    keys: list[tuple[str, str]] = []
    models: list[str] = []
    places: list[Placement] = []
    for key, placements in sorted(rankings.per_task.items()):
        keys += [key] * len(placements)
        models += placements
        places += placements.values()
    return Table(
        RANK_COLUMNS,
        (
            encode_column([k[0] for k in keys]),
            encode_column([k[1] for k in keys]),
            encode_column(models),
            encode_column([p.rank for p in places]),
            encode_column([p.tied_with for p in places]),
            encode_column([p.p_value for p in places], 6),
            encode_column([p.tested for p in places]),
        ),
    )


def results_json(snapshot: StoreSnapshot, runs_json: str, rankings: Rankings) -> str:
    """runs_json: run_rows(snapshot).json(), made beforehand (see harness.sitegen.downloads)."""
    aggregate = {
        "columns": list(AGGREGATE_COLUMNS),
        "rows": [
            [
                group,
                protocol,
                r.model,
                _round(r.score, 6),
                r.n_tasks,
                r.n_tasks_total,
                r.wins,
                _round(r.mean_rank, 4),
                *_placement(r.placement),
            ]
            for (group, protocol), agg in sorted(rankings.aggregate.items())
            for r in agg
        ],
    }
    return _json_object(
        ("format", _DUMP("harness-results")),
        ("version", _DUMP(1)),
        ("models", _DUMP([asdict(m) for m in sorted(snapshot.models.values(), key=lambda m: m.name)])),
        (
            "tasks",
            _DUMP(
                [
                    asdict(t)
                    for t in sorted(snapshot.tasks.values(), key=lambda t: (t.name, t.version, t.fingerprint))
                ]
            ),
        ),
        (
            "hardware",
            _DUMP([asdict(h) for h in sorted(snapshot.hardware.values(), key=lambda h: h.fingerprint)]),
        ),
        ("runs", runs_json),
        ("ranks", rank_rows(rankings).json()),
        ("aggregate_ranks", _DUMP(aggregate)),
    )
