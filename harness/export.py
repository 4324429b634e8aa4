"""Stored runs as portable records: JSON / JSON Lines (one record per run, schema in
harness/schemas/run_record.schema.json) and flat CSV / Parquet tables.

Reads the store through its read-only reader: exporting never writes to, or creates, a results file.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal

from harness.data.task_options import limited_run_note
from harness.errors import HarnessError
from harness.outfile import write_out
from harness.store import RunFilter, StoreReader

ExportFormat = Literal["json", "jsonl", "csv", "parquet"]
# Version of the exported record layout (harness/schemas/run_record.schema.json); bump on a breaking change.
RECORD_VERSION = 1
EVERY_RUN = RunFilter()


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def iter_records(reader: StoreReader, where: RunFilter = EVERY_RUN, predictions: bool = False) -> Iterator[dict[str, Any]]:
    """One run record per stored run (every status), ordered by task, protocol, model, seed."""
    for columns in reader.export_rows(where.tasks, where.models, where.protocols, predictions):
        run, model, task = columns.run, columns.model, columns.task
        key = run["key"]
        labels = [str(x) for x in _json(task.get("labels_json"), [])]
        metrics = {
            m.name: {"value": _finite(m.value), "ci_low": _finite(m.ci_low), "ci_high": _finite(m.ci_high)}
            for m in columns.metrics
        }
        timing = {k: _finite(v) for k, v in columns.timing.items() if k != "run_key"} if columns.timing else None
        config = _json(run["config_json"], {})
        record: dict[str, Any] = {
            "record_version": RECORD_VERSION,
            "key": key,
            "suite": run["suite"],
            "label": run["label"],
            "model": {
                "name": run["model"],
                "family": model.get("family") or (config.get("model") or {}).get("family"),
                "source": model.get("source"),
                "revision": model.get("revision"),
                "params": model.get("params"),
                "license": model.get("license") or None,
            },
            "task": {
                "name": run["task"],
                "version": run["task_version"],
                "data_fingerprint": run["data_fingerprint"],
                "labels": labels,
                "n_test": task.get("n_test"),
                "limited": limited_run_note(run["task_version"]),
            },
            "protocol": run["protocol"],
            "seed": run["seed"],
            "status": run["status"],
            "error": run["error"],
            "metrics": metrics,
            "timing": timing,
            "selected": _json(run["selected_json"], {}),
            "config": config,
            "started_at": run["started_at"],
            "finished_at": run["finished_at"],
            "duration_s": _finite(run["duration_s"]),
            "hardware": run["hardware"],
            "harness_version": run["harness_version"],
            "git_hash": run["git_hash"],
            "result_schema_version": run["schema_version"],
            "environment": _json(run["env_json"], {}),
        }
        if columns.predictions is not None:
            record["predictions"] = [
                {"example_id": p.example_id, "label": p.label, "pred": p.pred, "score": _finite(p.score)}
                for p in columns.predictions
            ]
        yield record


# ---- flat tables (csv, parquet) ------------------------------------------------------------------------

# A spreadsheet opening a CSV runs a cell that starts with one of these as a formula ("CSV injection"): a
# model named =HYPERLINK(...) is a valid name. Such text cells get a leading ' (OWASP's advice), which a
# spreadsheet shows as text; numbers are never touched, and JSON, JSONL and Parquet keep the text as it is.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """`value` for a CSV cell: text that a spreadsheet would run as a formula, prefixed with '."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


RUN_COLUMNS = (
    "key", "suite", "label", "model", "family", "params", "task", "task_version", "limited", "data_fingerprint",
    "protocol", "seed", "status", "error", "started_at", "finished_at", "duration_s", "hardware",
    "harness_version", "git_hash",
)  # fmt: skip
TIMING_COLUMNS = ("device", "batch_size", "p50_ms", "p95_ms", "p99_ms", "items_per_s", "peak_mem_mb")
PREDICTION_COLUMNS = ("key", "model", "task", "task_version", "protocol", "seed", "example_id", "label", "label_name", "pred", "pred_name", "score")


def flat_run_rows(records: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """One row per run: identity columns, then every metric (value, ci_low, ci_high), then timing."""
    metric_names = sorted({name for r in records for name in r["metrics"]})
    columns = [*RUN_COLUMNS, *(f"{n}{s}" for n in metric_names for s in ("", "_ci_low", "_ci_high")), *TIMING_COLUMNS]
    rows = []
    for r in records:
        row: dict[str, Any] = {
            "key": r["key"], "suite": r["suite"], "label": r["label"], "model": r["model"]["name"],
            "family": r["model"]["family"], "params": r["model"]["params"], "task": r["task"]["name"],
            "task_version": r["task"]["version"], "limited": r["task"]["limited"],
            "data_fingerprint": r["task"]["data_fingerprint"], "protocol": r["protocol"], "seed": r["seed"],
            "status": r["status"], "error": r["error"], "started_at": r["started_at"], "finished_at": r["finished_at"],
            "duration_s": r["duration_s"], "hardware": r["hardware"], "harness_version": r["harness_version"],
            "git_hash": r["git_hash"],
        }  # fmt: skip
        for name in metric_names:
            m = r["metrics"].get(name) or {}
            row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"] = m.get("value"), m.get("ci_low"), m.get("ci_high")
        timing = r["timing"] or {}
        row.update({c: timing.get(c) for c in TIMING_COLUMNS})
        rows.append(row)
    return columns, rows


def flat_prediction_rows(records: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """One row per (run, test example), with label names next to the label indices."""
    rows = []
    for r in records:
        labels = r["task"]["labels"]

        def name(i: int, labels: list[str] = labels) -> str | None:
            return labels[i] if 0 <= i < len(labels) else None

        for p in r.get("predictions") or ():
            rows.append({
                "key": r["key"], "model": r["model"]["name"], "task": r["task"]["name"], "task_version": r["task"]["version"],
                "protocol": r["protocol"], "seed": r["seed"], "example_id": p["example_id"], "label": p["label"],
                "label_name": name(p["label"]), "pred": p["pred"], "pred_name": name(p["pred"]), "score": p["score"],
            })  # fmt: skip
    return list(PREDICTION_COLUMNS), rows


# ---- writing -------------------------------------------------------------------------------------------


def export(db: Path, fmt: ExportFormat, out: Path | None, where: RunFilter, predictions: bool, stdout: IO[str]) -> int:
    """Write the selected runs of `db` to `out` (stdout when None; parquet needs a file). Returns the run count."""
    if fmt == "parquet" and out is None:
        raise HarnessError("--format parquet writes a binary file: give --out FILE.parquet.")
    reader = StoreReader(db)
    try:
        reader.check_filter(where)
        records = list(iter_records(reader, where, predictions))
    finally:
        reader.close()
    if fmt in ("json", "jsonl"):
        text = (
            json.dumps(records, indent=2, allow_nan=False) + "\n"
            if fmt == "json"
            else "".join(json.dumps(r, allow_nan=False) + "\n" for r in records)
        )
        _write_text(text, out, stdout)
        return len(records)
    columns, rows = flat_prediction_rows(records) if predictions else flat_run_rows(records)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writerow({c: spreadsheet_safe(c) for c in columns})  # the header: metric names are stored text
        writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in rows)
        _write_text(buffer.getvalue(), out, stdout)
    else:
        import pandas as pd

        assert out is not None
        frame = pd.DataFrame(rows, columns=columns)
        buffer_bytes = io.BytesIO()
        frame.to_parquet(buffer_bytes, index=False, engine="pyarrow")
        write_out(buffer_bytes.getvalue(), out)
    return len(records)


def _write_text(text: str, out: Path | None, stdout: IO[str]) -> None:
    if out is None:
        stdout.write(text)
        return
    write_out(text.encode("utf-8"), out)
