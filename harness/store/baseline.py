"""Baseline export: stored runs as one JSON file (`harness export-baseline`), and reading it back, so a
CI job can compare against a committed baseline without the database it came from."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from harness import RESULT_SCHEMA_VERSION, __version__
from harness.errors import HarnessError
from harness.metrics.registry import stored_task_metrics
from harness.records import MetricValue, ScoreKind, TimingRecord
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
    lines = [json.dumps(run_to_json(r), sort_keys=True, separators=(",", ":")) for r in runs]
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
    for i, entry in enumerate(raw):
        _check_run_entry(entry, f"{path}: runs[{i}]")
    return raw


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
    for name in ("model", "task", "protocol", "suite", "label"):
        if isinstance(d.get(name), str) and d[name] and bad_name(d[name]):  # printed by compare as written
            raise _bad(f"{where}.{name}", "a name without control characters (newline, tab, escape codes, NUL)", d[name])
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
