"""Baseline export: stored runs as one JSON file (`harness export-baseline`), and reading it back, so a
CI job can compare against a committed baseline without the database it came from."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from harness import RESULT_SCHEMA_VERSION, __version__
from harness.errors import HarnessError
from harness.metrics.core import described_bounds
from harness.metrics.registry import stored_task_metrics
from harness.records import MetricValue, ScoreKind, TimingRecord
from harness.store.reader import StoredValueError, _numbers, _timing_numbers
from harness.store.rows import ExamplePredictions, RunResult
from harness.store.schema import SCORE_DTYPE, SCORE_KINDS
from harness.typed_config import bad_name

BASELINE_FORMAT = "harness-baseline"
BASELINE_FORMAT_VERSION = 1


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


def baseline_text(source: str, runs: Sequence[RunResult]) -> str:
    """One run per line so a committed baseline diffs readably; predictions as compact parallel arrays."""
    header = {
        "format": BASELINE_FORMAT,
        "format_version": BASELINE_FORMAT_VERSION,
        "result_schema_version": RESULT_SCHEMA_VERSION,
        "harness_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": source,
    }
    lines = []
    for r in runs:
        entry = run_to_json(r)
        # What compare's reader of the file would refuse is refused here, naming the run: a baseline
        # written from this store would fail every compare, and re-exporting it would write the same file.
        _check_run_entry(entry, f"{source}: runs[key={r.key}]", _FIX_THE_STORE)
        lines.append(json.dumps(entry, sort_keys=True, separators=(",", ":"), allow_nan=False))
    head = json.dumps(header, sort_keys=True, indent=1)[:-2]  # drop the closing "\n}"
    body = ",\n".join(lines)
    return f'{head},\n "runs": [\n{body}\n]}}\n'


def read_baseline(path: Path) -> list[dict[str, Any]]:
    """The run entries of a baseline file, each checked to have the types run_from_json relies on."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(
            f"Baseline file {path} does not exist (create one with `harness export-baseline`)."
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise HarnessError(f"{path} is not a readable baseline JSON file ({exc}).") from None
    except RecursionError:
        raise HarnessError(
            f"{path} is not a readable baseline JSON file (nested too deeply; `harness export-baseline` writes "
            "runs two or three levels deep)."
        ) from None
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
    first: dict[tuple[Any, ...], int] = {}
    for i, entry in enumerate(raw):
        _check_run_entry(entry, f"{path}: runs[{i}]")
        slot = (entry["model"], entry["task"], entry["protocol"], entry["seed"])
        if slot in first:  # export-baseline writes one run per slot; which to compare against was left to order
            raise HarnessError(
                f"{path}: runs[{first[slot]}] and runs[{i}] are both {slot[0]!r} / {slot[1]!r} / {slot[2]!r} / seed "
                f"{slot[3]}; a baseline holds one run of each (model, task, protocol, seed). {_REEXPORT}"
            )
        first[slot] = i
    return raw


_NUMBER = (int, float)
_REEXPORT = "Re-export the baseline."
_FIX_THE_STORE = (
    "A baseline cannot hold it (compare would refuse the file): rename, re-run or delete that run in the store, "
    "or leave it out (--label, --task)."
)
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


def _bad(where: str, expected: str, value: Any, fix: str = _REEXPORT) -> HarnessError:
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return HarnessError(f"{where}: expected {expected}, got {type(value).__name__} {shown}. {fix}")


def _finite(v: Any) -> bool:
    return isinstance(v, _NUMBER) and not isinstance(v, bool) and math.isfinite(v)


def _check_run_entry(d: Any, where: str, fix: str = _REEXPORT) -> None:
    """Every field a baseline run entry is read through has the type the reader relies on (compare reading a
    file; export-baseline writing one, with `fix` saying what to do about the run in the store)."""
    if not isinstance(d, dict):
        raise _bad(where, "an object (one run)", d, fix)
    for name, (types, required) in _RUN_FIELDS.items():
        if name not in d:
            if required:
                raise HarnessError(f'{where}: missing field "{name}". {fix}')
            continue
        value = d[name]
        if isinstance(value, bool) or not isinstance(value, types):
            expected = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise _bad(f"{where}.{name}", expected, value, fix)
    for name in ("model", "task", "protocol", "suite", "label"):
        if isinstance(d.get(name), str) and d[name] and bad_name(d[name]):  # printed by compare as written
            raise _bad(
                f"{where}.{name}", "a name without control characters (newline, tab, escape codes, NUL)", d[name], fix
            )
    if d["status"] not in ("done", "failed", "not_applicable"):
        raise _bad(f"{where}.status", "done, failed or not_applicable", d["status"], fix)
    for name, stat in (d.get("metrics") or {}).items():
        ok = isinstance(stat, list) and 1 <= len(stat) <= 3 and _finite(stat[0])
        if not ok or any(v is not None and not _finite(v) for v in stat):
            raise _bad(f"{where}.metrics.{name}", "[value, ci_low, ci_high] finite numbers (a CI end may be null)", stat, fix)
    n_labels = d.get("n_labels")
    if n_labels is not None:
        _check_n_labels(d, n_labels, where, fix)
    _check_task_metrics(d, where, fix)
    preds = d.get("predictions")
    if preds:
        ids = preds.get("ids")
        if not isinstance(ids, list):
            raise _bad(f"{where}.predictions.ids", "a list of example ids", ids, fix)
        # Ids pair the two sides' examples: a repeated one paired the wrong predictions ("labels differ").
        odd = [i for i in ids if not isinstance(i, str)][:1] or [i for i in [_repeated(ids)] if i is not None]
        if odd:
            raise _bad(f"{where}.predictions.ids", "distinct example ids (strings)", odd[0], fix)
        for part in ("labels", "preds"):
            values = preds.get(part)
            if not (isinstance(values, list) and len(values) == len(ids)) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in values
            ):
                raise _bad(f"{where}.predictions.{part}", f"a list of {len(ids)} integer class indices", values, fix)
            outside = next((v for v in values if v < 0 or (n_labels is not None and v >= n_labels)), None)
            if outside is not None:
                indices = f"0 to {n_labels - 1} (n_labels is {n_labels})" if n_labels is not None else "0 or more"
                raise _bad(f"{where}.predictions.{part}", f"class indices from {indices}", outside, fix)
    _check_timing_types(d, where, fix)
    _check_numbers(d, where, fix)


def _check_task_metrics(d: dict[str, Any], where: str, fix: str) -> None:
    """The task's declared metrics and its main metric, as the store keeps them: a main metric that is none of
    them was replaced by the first one declared, and compare gated on that, silently."""
    declared, main = d.get("task_metrics"), d.get("main_metric")
    ids = None
    if declared:
        described = isinstance(declared, list) and all(
            isinstance(x, dict) and isinstance(x.get("id"), str) and isinstance(x.get("name"), str)
            and isinstance(x.get("params", {}), dict) and x.get("shape", "scalar") in ("scalar", "per_class", "matrix")
            for x in declared
        )  # fmt: skip
        if not described:
            raise _bad(f"{where}.task_metrics", "a list of metric descriptions (objects with an id, a name, params)", declared, fix)
        ids = [x["id"] for x in declared if x.get("shape", "scalar") == "scalar"]
    if main is not None and not isinstance(main, str):
        raise _bad(f"{where}.main_metric", "a metric id (a string)", main, fix)
    if main and ids is not None and main not in ids:
        raise _bad(f"{where}.main_metric", f"one of the task's metrics ({', '.join(ids)})", main, fix)


def _repeated(values: Sequence[Any]) -> Any:
    seen: set[Any] = set()
    for v in values:
        if v in seen:
            return v
        seen.add(v)
    return None


MAX_LABELS = 10_000  # without the task's label list: compare builds (resamples, labels, labels) confusion stacks


def _check_n_labels(d: dict[str, Any], n_labels: int, where: str, fix: str) -> None:
    """n_labels is the number of labels the run's task lists (10**15 made compare ask numpy for petabytes)."""
    task = (d.get("config") or {}).get("task")
    prompting = task.get("prompting") if isinstance(task, dict) else None
    labels = prompting.get("labels") if isinstance(prompting, dict) else None
    if isinstance(labels, list):
        if n_labels != len(labels):
            raise _bad(f"{where}.n_labels", f"{len(labels)}, the number of labels config.task.prompting.labels lists", n_labels, fix)
    elif not 1 <= n_labels <= MAX_LABELS:
        raise _bad(f"{where}.n_labels", f"a number of labels from 1 to {MAX_LABELS:,}", n_labels, fix)


def _check_numbers(d: dict[str, Any], where: str, fix: str) -> None:
    """The entry's metrics and timing hold numbers a run can make: the store reader's checks (a value in its
    metric's range, a CI low to high, no negative latency, percentiles in order)."""
    declared = d.get("task_metrics")
    descriptions = {str(x["id"]): x for x in declared if isinstance(x, dict) and "id" in x} if isinstance(declared, list) else {}
    timing = d.get("timing")
    try:
        for name, stat in (d.get("metrics") or {}).items():
            metric_id = name.split("/", 1)[0]
            bounds = described_bounds(descriptions.get(metric_id) or {"name": metric_id})
            value, ci_low, ci_high = (*stat, None, None)[:3]
            _numbers(d["key"], name, value, ci_low, ci_high, bounds)
        if timing:
            _timing_numbers(d["key"], {k: int(v) if isinstance(v, bool) else v for k, v in timing.items()})
    except StoredValueError as exc:
        raise HarnessError(f"{where}: {exc}. {fix}") from None


def _check_timing_types(d: dict[str, Any], where: str, fix: str) -> None:
    timing = d.get("timing")
    if timing:
        for name, f in _TIMING_FIELDS.items():
            if name not in timing:
                if f.default is dataclasses.MISSING:
                    raise HarnessError(f'{where}.timing: missing field "{name}". {fix}')
                continue
            value, kind = timing[name], str(f.type)
            if value is None:
                ok = "None" in kind
            elif "str" in kind:
                ok = isinstance(value, str)
            elif "bool" in kind:
                ok = isinstance(value, bool)
            else:
                ok = _finite(value)
            if not ok:
                raise _bad(f"{where}.timing.{name}", kind.replace(" | None", " or null"), value, fix)


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
    return RunResult.of(
        d,
        d.get("config") or {},
        metrics={name: MetricValue(name, *v) for name, v in (d.get("metrics") or {}).items()},
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
