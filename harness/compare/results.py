"""Result sets read for comparison: a results database (opened read-only) or an exported baseline JSON.

A result set is the newest run per (model, task, protocol, seed) among the runs a selector picks:
`label:X`, `suite:X`, `git:PREFIX`, or a bare value tried as label, then suite, then git hash.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from harness import RESULT_SCHEMA_VERSION, __version__
from harness.errors import HarnessError, close_match
from harness.metrics import MetricInfo
from harness.metrics.registry import stored_task_metrics
from harness.records import ScoreKind, TimingRecord
from harness.store import SCORE_DTYPE, SCORE_KINDS, connect_readonly

BASELINE_FORMAT = "harness-baseline"
BASELINE_FORMAT_VERSION = 1
SELECTOR_COLUMNS = {"label": "label", "suite": "suite", "git": "git_hash"}
SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class MetricStat:
    value: float
    ci_low: float | None = None
    ci_high: float | None = None


@dataclass(frozen=True, eq=False)
class ExamplePredictions:
    """Per-example test predictions of one run, sorted by example id."""

    ids: tuple[str, ...]
    labels: np.ndarray
    preds: np.ndarray
    scores: np.ndarray | None = None  # (N, n_labels) class scores, rows in ids order; None: not stored
    score_kind: ScoreKind | None = None


@dataclass(frozen=True, eq=False)
class RunResult:
    key: str
    suite: str
    label: str
    model: str
    task: str
    task_version: str
    data_fingerprint: str
    protocol: str
    seed: int
    status: str
    error: str | None
    config: Mapping[str, Any]
    git_hash: str | None
    finished_at: str
    metrics: Mapping[str, MetricStat] = field(default_factory=dict)
    predictions: ExamplePredictions | None = None
    timing: TimingRecord | None = None
    n_labels: int | None = None  # the task's declared label count (macro metrics average over all of them)
    params: int | None = None
    # The task's declared metrics as stored (harness.metrics.TaskMetric.describe()) and its main metric id.
    task_metrics: tuple[Mapping[str, Any], ...] = ()
    main_metric: str = ""

    def metric_infos(self) -> tuple[MetricInfo, ...]:
        return tuple(MetricInfo.from_description(d) for d in self.task_metrics)

    @property
    def pair_key(self) -> tuple[str, str, str]:
        return (self.model, self.task, self.protocol)


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


def open_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection: comparing or picking never writes to (or creates) a results file."""
    conn = connect_readonly(path)
    conn.row_factory = sqlite3.Row
    return conn


def load_db(
    path: Path, selector: str | None = None, *, task: str | None = None, protocol: str | None = None
) -> ResultSet:
    conn = open_readonly(path)
    try:
        all_rows = [dict(r) for r in conn.execute("SELECT * FROM runs ORDER BY finished_at")]
        source = f"{path}" + (f" [{selector}]" if selector else "")
        rows = select_rows(all_rows, selector, str(path))
        rows = [
            r
            for r in rows
            if (task is None or r["task"] == task) and (protocol is None or r["protocol"] == protocol)
        ]
        n_labels = _task_label_counts(conn)
        declared = _task_metrics(conn)
        params = {r["name"]: r["params"] for r in conn.execute("SELECT name, params FROM models")}
        has_scores = _has_table(conn, "class_scores")
        runs = [_run_from_db(conn, row, n_labels, declared, params, has_scores) for row in rows]
    except sqlite3.DatabaseError as exc:
        raise HarnessError(
            f"Could not read {path}: {exc}. Is it a database from this harness version?"
        ) from exc
    finally:
        conn.close()
    kept, superseded = _newest_per_job(runs)
    return ResultSet(source, kept, superseded)


def _task_label_counts(conn: sqlite3.Connection) -> dict[tuple[str, str, str | None], int]:
    """Label count per (task, version, data fingerprint); (task, version, None): that of the newest data."""
    out: dict[tuple[str, str, str | None], int] = {}
    for r in conn.execute("SELECT name, version, fingerprint, labels_json FROM tasks ORDER BY rowid"):
        try:
            n = len(json.loads(r["labels_json"]))
            out[(r["name"], r["version"], r["fingerprint"])] = n
            out[(r["name"], r["version"], None)] = n  # the newest row: runs whose own data row is gone
        except (TypeError, ValueError):
            continue
    return out


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", [name]).fetchone() is not None


def _task_metrics(conn: sqlite3.Connection) -> dict[tuple[str, str], tuple[tuple[dict[str, Any], ...], str]]:
    out = {}
    for r in conn.execute("SELECT name, version, spec_json FROM tasks ORDER BY rowid"):  # newest data last
        out[(r["name"], r["version"])] = stored_task_metrics(_loads(r["spec_json"]))
    return out


def _class_scores(conn: sqlite3.Connection, key: str, n: int) -> tuple[np.ndarray | None, ScoreKind | None]:
    row = conn.execute("SELECT kind, n_examples, n_labels, scores FROM class_scores WHERE run_key = ?", [key]).fetchone()
    if row is None or row["kind"] not in SCORE_KINDS or row["n_examples"] != n:
        return None, None
    values = np.frombuffer(row["scores"], dtype=SCORE_DTYPE)
    if values.size != n * row["n_labels"]:
        return None, None
    return values.reshape(n, row["n_labels"]), row["kind"]


def _run_from_db(
    conn: sqlite3.Connection,
    row: Mapping[str, Any],
    n_labels: Mapping[tuple[str, str, str | None], int],
    declared: Mapping[tuple[str, str], tuple[tuple[dict[str, Any], ...], str]],
    params: Mapping[str, int | None],
    has_scores: bool,
) -> RunResult:
    key = row["key"]
    metrics = {
        m["name"]: MetricStat(m["value"], m["ci_low"], m["ci_high"])
        for m in conn.execute("SELECT name, value, ci_low, ci_high FROM metrics WHERE run_key = ?", [key])
    }
    pred_rows = conn.execute(
        "SELECT example_id, label, pred FROM predictions WHERE run_key = ? ORDER BY example_id", [key]
    ).fetchall()
    predictions = None
    if pred_rows:
        scores, kind = _class_scores(conn, key, len(pred_rows)) if has_scores else (None, None)
        predictions = ExamplePredictions(
            ids=tuple(r[0] for r in pred_rows),
            labels=np.array([r[1] for r in pred_rows], dtype=np.int64),
            preds=np.array([r[2] for r in pred_rows], dtype=np.int64),
            scores=scores,
            score_kind=kind,
        )
    t = conn.execute("SELECT * FROM timings WHERE run_key = ?", [key]).fetchone()
    timing = TimingRecord.from_mapping(t) if t else None
    model_params = params.get(row["model"])
    task_metrics, main_metric = declared.get((row["task"], row["task_version"])) or stored_task_metrics(None)
    return RunResult(
        key=key,
        suite=row["suite"],
        label=row["label"] or "",
        model=row["model"],
        task=row["task"],
        task_version=row["task_version"],
        data_fingerprint=row["data_fingerprint"],
        protocol=row["protocol"],
        seed=int(row["seed"]),
        status=row["status"],
        error=row["error"],
        config=_loads(row["config_json"]),
        git_hash=row["git_hash"],
        finished_at=row["finished_at"],
        metrics=metrics,
        predictions=predictions,
        timing=timing,
        n_labels=n_labels.get(
            (row["task"], row["task_version"], row["data_fingerprint"]), n_labels.get((row["task"], row["task_version"], None))
        ),
        params=model_params if model_params is not None else (timing.params if timing else None),
        task_metrics=task_metrics,
        main_metric=main_metric,
    )


def _loads(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# ---- baseline JSON -----------------------------------------------------------------------------------


def run_to_json(run: RunResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        f: getattr(run, f)
        for f in (
            "key", "suite", "label", "model", "task", "task_version", "data_fingerprint", "protocol", "seed",
            "status", "error", "git_hash", "finished_at", "n_labels", "params", "main_metric",
        )
    }  # fmt: skip
    out["task_metrics"] = [dict(d) for d in run.task_metrics]
    out["config"] = dict(run.config)
    out["metrics"] = {name: [m.value, m.ci_low, m.ci_high] for name, m in sorted(run.metrics.items())}
    if run.predictions is not None:
        p = run.predictions
        out["predictions"] = {"ids": list(p.ids), "labels": p.labels.tolist(), "preds": p.preds.tolist()}
        if p.scores is not None:  # float32 little-endian, base64: 4 bytes a score, exact
            out["predictions"]["score_kind"] = p.score_kind
            out["predictions"]["scores_shape"] = list(p.scores.shape)
            out["predictions"]["scores_f32_b64"] = base64.b64encode(
                np.ascontiguousarray(p.scores, dtype=SCORE_DTYPE).tobytes()
            ).decode("ascii")
    if run.timing is not None:
        out["timing"] = dict(run.timing.__dict__)
    return out


def write_baseline(results: ResultSet, out: Path) -> None:
    """One run per line so a committed baseline diffs readably; predictions as compact parallel arrays."""
    header = {
        "format": BASELINE_FORMAT,
        "format_version": BASELINE_FORMAT_VERSION,
        "result_schema_version": RESULT_SCHEMA_VERSION,
        "harness_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": results.source,
    }
    lines = [json.dumps(run_to_json(r), sort_keys=True, separators=(",", ":")) for r in results.runs]
    head = json.dumps(header, sort_keys=True, indent=1)[:-2]  # drop the closing "\n}"
    body = ",\n".join(lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f'{head},\n "runs": [\n{body}\n]}}\n', encoding="utf-8")


def load_baseline_json(
    path: Path, selector: str | None = None, *, task: str | None = None, protocol: str | None = None
) -> ResultSet:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(
            f"Baseline file {path} does not exist (create one with `harness export-baseline`)."
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise HarnessError(f"{path} is not a readable baseline JSON file ({exc}).") from None
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT:
        raise HarnessError(f'{path} is not a harness baseline (expected "format": "{BASELINE_FORMAT}").')
    if data.get("format_version") != BASELINE_FORMAT_VERSION:
        raise HarnessError(
            f"{path} has baseline format version {data.get('format_version')!r}; this harness reads "
            f"version {BASELINE_FORMAT_VERSION}. Re-export it with `harness export-baseline`."
        )
    raw = data.get("runs")
    if not isinstance(raw, list):
        raise HarnessError(f'{path}: "runs" must be a list of runs.')
    for i, entry in enumerate(raw):
        _check_run_entry(entry, f"{path}: runs[{i}]")
    rows = select_rows(raw, selector, str(path))
    rows = [
        r
        for r in rows
        if (task is None or r["task"] == task) and (protocol is None or r["protocol"] == protocol)
    ]
    try:
        runs = [run_from_json(r) for r in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise HarnessError(
            f"{path}: malformed run entry ({type(exc).__name__}: {exc}). Re-export the baseline."
        ) from None
    kept, superseded = _newest_per_job(runs)
    return ResultSet(f"{path}" + (f" [{selector}]" if selector else ""), kept, superseded)


_NUMBER = (int, float)
# field -> (accepted types, required); bool is never accepted where a number or string is meant.
_RUN_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    **{name: ((str,), True) for name in ("key", "suite", "model", "task", "task_version", "data_fingerprint")},
    "protocol": ((str,), True),
    "seed": ((int,), True),
    "status": ((str,), True),
    **{name: ((str, type(None)), False) for name in ("label", "error", "git_hash", "finished_at")},
    **{name: ((dict, type(None)), False) for name in ("config", "metrics", "predictions", "timing")},
    **{name: ((int, type(None)), False) for name in ("n_labels", "params")},
}
_TIMING_FIELDS = {f.name: f for f in dataclasses.fields(TimingRecord)}


def _bad(where: str, expected: str, value: Any) -> HarnessError:
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return HarnessError(f"{where}: expected {expected}, got {type(value).__name__} {shown}. Re-export the baseline.")


def _check_run_entry(d: Any, where: str) -> None:
    """Every field a baseline run entry is read through has the type the reader relies on."""
    if not isinstance(d, dict):
        raise _bad(where, "an object (one run)", d)
    for name, (types, required) in _RUN_FIELDS.items():
        if name not in d:
            if required:
                raise HarnessError(f'{where}: missing field "{name}". Re-export the baseline.')
            continue
        value = d[name]
        if isinstance(value, bool) or not isinstance(value, types):
            raise _bad(f"{where}.{name}", " or ".join("null" if t is type(None) else t.__name__ for t in types), value)
    if d["status"] not in ("done", "failed", "not_applicable"):
        raise _bad(f"{where}.status", "done, failed or not_applicable", d["status"])
    for name, stat in (d.get("metrics") or {}).items():
        ok = isinstance(stat, list) and 1 <= len(stat) <= 3 and isinstance(stat[0], _NUMBER)
        if not ok or any(isinstance(v, bool) or not isinstance(v, (*_NUMBER, type(None))) for v in stat):
            raise _bad(f"{where}.metrics.{name}", "[value, ci_low, ci_high] numbers", stat)
    preds = d.get("predictions")
    if preds:
        ids = preds.get("ids")
        if not isinstance(ids, list):
            raise _bad(f"{where}.predictions.ids", "a list of example ids", ids)
        for part in ("labels", "preds"):
            values = preds.get(part)
            if not (isinstance(values, list) and len(values) == len(ids)) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in values
            ):
                raise _bad(f"{where}.predictions.{part}", f"a list of {len(ids)} integer class indices", values)
    timing = d.get("timing")
    if timing:
        for name, f in _TIMING_FIELDS.items():
            if name not in timing:
                if f.default is dataclasses.MISSING:
                    raise HarnessError(f'{where}.timing: missing field "{name}". Re-export the baseline.')
                continue
            value, kind = timing[name], str(f.type)
            if value is None:
                ok = "None" in kind
            elif "str" in kind:
                ok = isinstance(value, str)
            elif "bool" in kind:
                ok = isinstance(value, bool)
            else:
                ok = isinstance(value, _NUMBER) and not isinstance(value, bool)
            if not ok:
                raise _bad(f"{where}.timing.{name}", kind.replace(" | None", " or null"), value)


def _json_scores(preds: Mapping[str, Any]) -> tuple[np.ndarray | None, ScoreKind | None]:
    blob, shape, kind = preds.get("scores_f32_b64"), preds.get("scores_shape"), preds.get("score_kind")
    if not blob or kind not in SCORE_KINDS or not isinstance(shape, list) or len(shape) != 2:
        return None, None
    values = np.frombuffer(base64.b64decode(blob), dtype=SCORE_DTYPE)
    return values.reshape(int(shape[0]), int(shape[1])), kind


def run_from_json(d: Mapping[str, Any]) -> RunResult:
    preds = d.get("predictions")
    timing = d.get("timing")
    scores, kind = _json_scores(preds) if preds else (None, None)
    declared = d.get("task_metrics")
    task_metrics, main_metric = (
        stored_task_metrics({"metrics": declared, "main_metric": d.get("main_metric")})
        if declared
        else stored_task_metrics(None)
    )
    return RunResult(
        key=d["key"],
        suite=d["suite"],
        label=d.get("label") or "",
        model=d["model"],
        task=d["task"],
        task_version=d["task_version"],
        data_fingerprint=d["data_fingerprint"],
        protocol=d["protocol"],
        seed=int(d["seed"]),
        status=d["status"],
        error=d.get("error"),
        config=d.get("config") or {},
        git_hash=d.get("git_hash"),
        finished_at=d.get("finished_at") or "",
        metrics={name: MetricStat(*v) for name, v in (d.get("metrics") or {}).items()},
        predictions=ExamplePredictions(
            ids=tuple(str(i) for i in preds["ids"]),
            labels=np.asarray(preds["labels"], dtype=np.int64),
            preds=np.asarray(preds["preds"], dtype=np.int64),
            scores=scores,
            score_kind=kind,
        )
        if preds
        else None,
        timing=TimingRecord.from_mapping(timing) if timing else None,
        n_labels=d.get("n_labels"),
        params=d.get("params"),
        task_metrics=task_metrics,
        main_metric=main_metric,
    )


# ---- either ------------------------------------------------------------------------------------------


def load_results(
    path: str | Path, selector: str | None = None, *, task: str | None = None, protocol: str | None = None
) -> ResultSet:
    """Read a .db results database or a .json exported baseline (by suffix, else by content)."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        return load_baseline_json(p, selector, task=task, protocol=protocol)
    if p.suffix.lower() in (".db", ".sqlite", ".sqlite3"):
        return load_db(p, selector, task=task, protocol=protocol)
    if not p.is_file():
        raise HarnessError(f"{p} does not exist (expected a results .db or an exported baseline .json).")
    with p.open("rb") as fh:
        is_sqlite = fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    loader = load_db if is_sqlite else load_baseline_json
    return loader(p, selector, task=task, protocol=protocol)
