"""Data loading, splitting and hygiene for tasks.

Modules: loaders (HF datasets: hub ids, local dataset folders, csv/jsonl/parquet, imagefolder),
labels (raw values -> label indices), splits (stratified, group-aware, subsampling), assemble
(raw examples -> TaskData), yaml_task (tasks declared in YAML), task_options (per-suite options and
in-process caching), hygiene (duplicates and leaks), signatures (source signatures).
"""

from harness.data.hygiene import (
    HygieneReport,
    HygieneWarning,
    apply_dedupe,
    cached_hygiene_report,
    format_report,
    hygiene_report,
)
from harness.data.splits import stratified_split, subsample_task_data
from harness.data.yaml_task import YamlTask

__all__ = [
    "HygieneReport",
    "HygieneWarning",
    "YamlTask",
    "apply_dedupe",
    "cached_hygiene_report",
    "format_report",
    "hygiene_report",
    "stratified_split",
    "subsample_task_data",
]
