"""Overhead of a fully cached re-run: `harness run SUITE` when every job is already in the store.

    python scripts/bench_rerun.py                      # demo suite if results/harness.db has all of it, else smoke
    python scripts/bench_rerun.py --suite suites/smoke.yaml --reps 7

Works on a copy of the database (the original is never written). When the copy lacks some of the
suite's results (e.g. no demo run yet, so smoke is used), the missing jobs are run first, cold, and
that run is reported too. Then the cached re-run is timed `--reps` times, in-process (run_suite) and
as the CLI in a fresh interpreter, interleaved with a bare `import harness.cli` for the import cost.

Work is counted, not assumed: model adapters built (harness.models.load_adapter calls), models
loaded and forward passes (the runner's SweepSummary), task data loads (the registry's CachedTask
loads) and runs written to the store.
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Counts:
    adapters_built: int = 0
    data_loads: int = 0
    runs_written: int = 0


@contextmanager
def counting() -> Iterator[Counts]:
    """Count adapter constructions, task data loads and store writes for the duration."""
    import harness.models
    from harness.data.task_options import CachedTask
    from harness.store import Store

    counts = Counts()
    originals: list[tuple[Any, str, Any]] = [
        (harness.models, "load_adapter", harness.models.load_adapter),
        (CachedTask, "_load_uncached", CachedTask._load_uncached),
        (Store, "write_run", Store.write_run),
    ]

    def counted(original: Callable[..., Any], field: str) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            setattr(counts, field, getattr(counts, field) + 1)
            return original(*args, **kwargs)

        return wrapper

    for (owner, name, original), field in zip(originals, ("adapters_built", "data_loads", "runs_written"), strict=True):
        setattr(owner, name, counted(original, field))
    try:
        yield counts
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def missing_jobs(suite_path: Path, db: Path) -> tuple[int, int]:
    """(jobs in the suite, jobs not finished in db), planning without loading any stored task's data."""
    from harness.config import load_suite
    from harness.runner import TaskLoader, plan_suite
    from harness.store import Store

    store = Store(db)
    plan = plan_suite(load_suite(suite_path), store.reader, TaskLoader())
    finished = store.reader.finished_keys([j.key for j in plan.jobs])
    return len(plan.jobs), len(plan.jobs) - len(finished)


def copy_db(src: Path, dst: Path) -> None:
    source, target = sqlite3.connect(src), sqlite3.connect(dst)
    try:
        source.backup(target)  # consistent even while another process writes src
    finally:
        source.close()
        target.close()


def run_in_process(suite_path: Path, db: Path) -> tuple[float, Any, Counts]:
    from harness.config import load_suite
    from harness.runner import run_suite
    from harness.store import Store

    with counting() as counts:
        t0 = time.perf_counter()
        summary = run_suite(load_suite(suite_path), Store(db))
        wall = time.perf_counter() - t0
    return wall, summary, counts


def timed_process(args: list[str]) -> tuple[float, str]:
    """Wall seconds of `python ARGS` in a fresh interpreter, and its stdout."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, *args], check=True, capture_output=True, text=True, cwd=ROOT)
    return time.perf_counter() - t0, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=ROOT / "results" / "harness.db", help="results to copy (read only)")
    parser.add_argument("--suite", type=Path, help="default: suites/demo.yaml if --db has all of it, else suites/smoke.yaml")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "copy.db"
        if args.db.exists():
            copy_db(args.db, db)
        suite_path = args.suite
        if suite_path is None:
            demo = ROOT / "suites" / "demo.yaml"
            suite_path = demo if db.exists() and missing_jobs(demo, db)[1] == 0 else ROOT / "suites" / "smoke.yaml"
        total, missing = missing_jobs(suite_path, db)
        print(f"suite {suite_path.relative_to(ROOT)}: {total} jobs; {total - missing} already in the store copy")
        print()
        print("| run | wall s | adapters built | models loaded | forward passes | task data loads | runs written |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        if missing:
            wall, summary, counts = run_in_process(suite_path, db)
            print(
                f"| cold: {missing} missing jobs (run_suite) | {wall:.1f} | {counts.adapters_built} | "
                f"{summary.models_loaded} | {summary.forward_passes} | {counts.data_loads} | {counts.runs_written} |"
            )
        in_process: list[float] = []
        cli: list[float] = []
        imports: list[float] = []
        counted: set[tuple[int, ...]] = set()
        cli_counted: set[str] = set()
        cli_args = ["-m", "harness.cli", "run", str(suite_path), "--db", str(db), "--quiet"]
        for _ in range(args.reps):
            wall, summary, counts = run_in_process(suite_path, db)
            if summary.ran:
                sys.exit(f"the re-run ran {summary.ran} job(s): the store copy is not complete")
            in_process.append(wall)
            counted.add(
                (counts.adapters_built, summary.models_loaded, summary.forward_passes, counts.data_loads, counts.runs_written)
            )
            seconds, output = timed_process(cli_args)
            cli.append(seconds)
            match = re.search(r"\((\d+) models loaded, (\d+) forward passes\)", " ".join(output.split()))
            cli_counted.add(f"{match.group(1)} | {match.group(2)}" if match else "? | ?")
            imports.append(timed_process(["-c", "import harness.cli"])[0])
        (work,) = counted if len(counted) == 1 else (max(counted),)  # the same every time, as expected
        print(
            f"| cached re-run, run_suite (median of {args.reps}) | {statistics.median(in_process):.2f} | "
            + " | ".join(map(str, work)) + " |"
        )
        print(
            f"| cached re-run, `harness run --quiet` in a new process (median of {args.reps}) | "
            f"{statistics.median(cli):.2f} | - | {' / '.join(sorted(cli_counted))} | - | - |"
        )
        print(f"| `python -c 'import harness.cli'` (median of {args.reps}) | {statistics.median(imports):.2f} | - | - | - | - | - |")
        print()
        print(
            f"spread (min-max): run_suite {min(in_process):.2f}-{max(in_process):.2f} s, "
            f"CLI {min(cli):.2f}-{max(cli):.2f} s, import {min(imports):.2f}-{max(imports):.2f} s"
        )


if __name__ == "__main__":
    main()
