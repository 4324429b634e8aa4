"""Formatting shared by pages: numbers (every number function turns None or NaN into an em dash) and text."""

from __future__ import annotations

import math
import shlex
from datetime import UTC, datetime
from functools import lru_cache
from math import isfinite

from harness.console import plain
from harness.records import PERCENTILE_MIN_SAMPLES, MetricValue
from harness.store.rows import RunRow, Timing

DASH = "—"
SIZE_BUCKETS = (
    ("lt10m", "< 10M", 1e7),
    ("10m-100m", "10M–100M", 1e8),
    ("100m-1b", "100M–1B", 1e9),
    ("ge1b", "≥ 1B", math.inf),
)


def shown(text: str) -> str:
    """Text a page prints (a name, an error) with its control and bidi-reordering characters written as
    \\x1b / \\u202e, as the CLI prints them (console.plain): a model named "pix\\u202eslegol" from a store
    written elsewhere would show as "pixlogels" and reorder the text after it. Escaping for HTML is separate."""
    return text if text.isprintable() else plain(text)


# score, interval and sort_value run for every cell of every row (millions at 150k results): they test
# for missing values inline instead of calling _missing.


def _missing(v: float | None) -> bool:
    return v is None or not isfinite(v)


def score(v: float | None) -> str:
    return f"{v:.3f}" if v is not None and isfinite(v) else DASH


_CI95 = "[{:.3f}, {:.3f}]".format
_SEED_RANGE = "seed range {:.3f}–{:.3f}".format
_INF = math.inf


def interval(m: MetricValue | None, spread: str) -> str:
    if m is None:
        return ""
    lo, hi = m.ci_low, m.ci_high
    if lo is None or hi is None or not (isfinite(lo) and isfinite(hi)):
        return ""
    return _SEED_RANGE(lo, hi) if spread == "seeds" else _CI95(lo, hi)


def metric_cell(m: MetricValue, spread: str) -> tuple[str, str]:
    """(sort_value(m.value), score(m.value) then interval(m, spread) when there is one): a task page's
    metric cell. Flat, with the missing-value tests inline: it runs for every cell, ~750,000 times at
    150,000 results, where the four calls it replaces cost more than the formatting."""
    v, lo, hi = m.value, m.ci_low, m.ci_high
    if -_INF < v < _INF:
        sort, text = repr(float(v)), f"{v:.3f}"
    else:
        sort, text = "", DASH
    if lo is None or hi is None or not (-_INF < lo < _INF and -_INF < hi < _INF):
        return sort, text
    return sort, f"{text} {_SEED_RANGE(lo, hi) if spread == 'seeds' else _CI95(lo, hi)}"


def ms(v: float | None) -> str:
    if _missing(v):
        return DASH
    assert v is not None
    return f"{v:.3g}" if v < 100 else f"{v:,.0f}"


def latency(t: Timing | None, at: str) -> tuple[str, str]:
    """(a batch-1 percentile in ms, a title saying why it is withheld); a dash when n does not support it."""
    if t is None:
        return DASH, ""
    need = PERCENTILE_MIN_SAMPLES[at]
    if t.n_timed < need:
        return DASH, f"{at} withheld: needs at least {need} timed samples, this timing has {t.n_timed}"
    return ms(getattr(t, f"{at}_ms")), ""


def contention(t: Timing | None) -> tuple[str, str]:
    """("contended" and a title with the figures) for a timing taken while other work held the CPU/GPU."""
    if t is None or not t.contended:
        return "", ""
    figures = [
        f"{label} {value:.0%}"
        for label, value in (("run-queue wait", t.run_wait_frac), ("other processes' CPU", t.others_cpu_frac))
        if value is not None
    ]
    return "contended", (
        "Timed while other processes competed for the CPU/GPU"
        + (f" ({', '.join(figures)})" if figures else "")
        + ": this latency measures the machine, not the model. Left out of plots, latency summaries, pick and compare."
    )


def rate(v: float | None) -> str:
    if _missing(v):
        return DASH
    assert v is not None
    return f"{v:.3g}" if v < 1000 else f"{v:,.0f}"


def size_bucket(n: int | None) -> str:
    if n is None:
        return "unknown"
    return next(key for key, _, upper in SIZE_BUCKETS if n < upper)


def sort_value(v: float | int | None) -> str:
    """data-v attribute for the JS sorter: empty for missing values (sorted last)."""
    return repr(float(v)) if v is not None and isfinite(v) else ""


def reproduce_command(run: RunRow) -> tuple[str, bool]:
    """(shell command, suite path is known) for re-running exactly this result with `harness run`."""
    known = bool(run.suite_path)
    suite = run.suite_path if known else f"suites/{run.suite}.yaml"
    args = (suite, "--only-model", run.model, "--only-task", run.task, "--only-protocol", run.protocol)
    return "harness run " + " ".join(_quote(a) for a in args), known


@lru_cache(maxsize=65536)
def _quote(arg: str) -> str:
    return shlex.quote(arg)  # the same few names recur on every row


def short_reason(text: str | None, limit: int = 300) -> str:
    """First line of an error, clipped, for titles and table cells (the full text is in the downloads)."""
    if not text:
        return ""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


def timestamp(iso: str) -> str:
    """'2025-03-01T12:01:00+00:00' -> '2025-03-01 12:01 UTC'; anything unparsable is shown as stored."""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M") + (" UTC" if moment.tzinfo is not None else "")
