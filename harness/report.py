"""Rich renderables for the terminal: leaderboard tables per task from the store."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rich.table import Table

from harness.store import Store


def _ci(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    if value is None:
        return "-"
    lo, hi = row.get(f"{name}_ci_low"), row.get(f"{name}_ci_high")
    return f"{value:.3f} [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else f"{value:.3f}"


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _params(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def leaderboard_tables(store: Store, task: str | None = None, model: str | None = None) -> list[Table]:
    """One table per task: finished runs sorted by macro-F1 (failed / not applicable listed below)."""
    rows = store.results_table(task)
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if model is None or row["model"] == model:
            by_task[row["task"]].append(row)
    tables = []
    for task_name in sorted(by_task):
        table = Table(title=f"{task_name}", title_justify="left", header_style="bold")
        for col, justify in (
            ("model", "left"), ("protocol", "left"), ("seed", "right"), ("macro-F1 [95% CI]", "right"),
            ("accuracy [95% CI]", "right"), ("p50 ms", "right"), ("p95 ms", "right"), ("items/s", "right"),
            ("params", "right"), ("status", "left"),
        ):  # fmt: skip
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        ordered = sorted(
            by_task[task_name],
            key=lambda r: (r["status"] != "done", -(r["macro_f1"] or 0.0), r["model"], r["protocol"], r["seed"]),
        )
        for r in ordered:
            status = r["status"]
            if status == "done":
                status_text = "done"
            elif status == "not_applicable":
                status_text = f"n/a: {r['error'] or ''}"[:70]
            else:
                status_text = f"[red]FAILED[/red]: {(r['error'] or '').splitlines()[0][:70]}"
            table.add_row(
                r["model"], r["protocol"], str(r["seed"]), _ci(r, "macro_f1"), _ci(r, "accuracy"),
                _fmt(r["p50_ms"], ".2f"), _fmt(r["p95_ms"], ".2f"), _fmt(r["items_per_s"], ",.0f"),
                _params(r["params"]), status_text,
            )  # fmt: skip
        tables.append(table)
    return tables
