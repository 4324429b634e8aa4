"""Regression check between two result sets (`harness compare`) and baseline export.

results.py  reads a results database (read-only) or an exported baseline JSON into a ResultSet
policy.py   what counts as a failure (YAML file and/or flags)
engine.py   pairs runs and tests the differences (paired tests on per-example predictions)
latency.py  latency within one hardware fingerprint, with a noise margin
render.py   table / markdown / JUnit XML / JSON output
"""

from harness.compare.engine import (
    ComparisonReport,
    LatencyComparison,
    MetricComparison,
    PairComparison,
    compare_results,
)
from harness.compare.policy import Policy, load_policy
from harness.compare.render import FORMATS, render_json, render_junit, render_markdown, render_table
from harness.compare.results import ResultSet, load_results, write_baseline
from harness.store.rows import RunResult

__all__ = [
    "FORMATS",
    "ComparisonReport",
    "LatencyComparison",
    "MetricComparison",
    "PairComparison",
    "Policy",
    "ResultSet",
    "RunResult",
    "compare_results",
    "load_policy",
    "load_results",
    "render_json",
    "render_junit",
    "render_markdown",
    "render_table",
    "write_baseline",
]
