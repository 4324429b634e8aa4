"""CI computation per built-in metric, and store size per run with class scores vs without.

    python scripts/bench_metrics.py                  # 10k examples x 10 classes, 1,000 resamples
    python scripts/bench_metrics.py --n 10000 --labels 10 --boot 1000 --loop-boot 50 --reps 3

Speed: for every built-in single-number metric, the time of its 95% bootstrap CI (1,000 resamples,
harness.metrics.resample.resampled_values, the path every run, tie group and compare uses) against the
generic path a metric without a vectorised form takes (its sklearn point function called on every
resample). The generic path is timed on --loop-boot resamples of the same stream and scaled to
--boot (it is linear in the resamples); the ratio is generic / vectorised, paired on the same data.
Both paths give the same numbers (tests/test_metrics.py checks every metric on shared resamples).

Data: a seeded synthetic outcome (labels uniform over the classes, a softmax of noisy logits with the
true class boosted for ~70% of examples, argmax predictions); timing does not depend on realism.

Size: one run written through Store.write_run into a fresh SQLite file (WAL checkpointed, VACUUMed),
with and without its class-score matrix, for (examples x labels) of 10k x 10 and 10k x 100.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.metrics import MetricData, MetricRegistry  # noqa: E402
from harness.metrics.builtin import BUILTIN_METRICS  # noqa: E402
from harness.metrics.core import MetricDef, TaskMetric  # noqa: E402
from harness.metrics.resample import resample_indices, resampled_values  # noqa: E402
from harness.records import JobIdentity, MetricValue, Predictions, RunRecord  # noqa: E402
from harness.store import Store  # noqa: E402


def outcome(n: int, k: int, seed: int = 0) -> MetricData:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += np.where(rng.random(n) < 0.7, 3.0, 0.0)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return MetricData.of(y, p.argmax(axis=1), k, p.astype(np.float32), "probability")


def timed(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def generic(metric: TaskMetric) -> TaskMetric:
    """The same metric without its vectorised forms: the path a plain plugin metric takes."""
    d = metric.metric
    return TaskMetric(metric.id, MetricDef(d.name, d.label, d.point, d.higher_is_better, d.needs, d.score_kinds, d.params))


def speed(n: int, k: int, n_boot: int, loop_boot: int, reps: int) -> list[str]:
    data = outcome(n, k)
    registry = MetricRegistry()
    names = [m.name for m in BUILTIN_METRICS if m.shape == "scalar"]
    lines = [
        f"CI of each built-in metric: {n:,} examples x {k} classes, {n_boot:,} resamples "
        f"(median of {reps}; generic path timed on {loop_boot} resamples, scaled x{n_boot / loop_boot:g})",
        "",
        f"| metric | vectorised s ({n_boot:,} resamples) | generic point-per-resample s | speed-up |",
        "| --- | ---: | ---: | ---: |",
    ]
    total_fast = 0.0
    for name in names:
        declared = registry.resolve([name], name, k, where="bench")
        metric = declared.get(name)
        fast = timed(lambda m=metric: resampled_values([m], [data], n_boot, 0), reps)
        slow_metric = generic(metric)
        slow = timed(lambda m=slow_metric: resampled_values([m], [data], loop_boot, 0), 1) * n_boot / loop_boot
        total_fast += fast
        lines.append(f"| {name} | {fast:.3f} | {slow:.2f} | {slow / fast:.0f}x |")
    every = registry.resolve(names, "macro_f1", k, where="bench")
    together = timed(lambda: resampled_values(list(every.scalar()), [data], n_boot, 0), reps)
    lines += [
        "",
        f"All {len(names)} metrics in one call (one set of resamples, confusion matrices shared): "
        f"{together:.2f} s (sum of the separate calls: {total_fast:.2f} s). "
        f"Index draws alone: {timed(lambda: list(resample_indices(n, n_boot, 0)), reps):.2f} s.",
    ]
    return lines


def store_size(n: int, k: int, with_scores: bool) -> int:
    data = outcome(n, k)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.db"
        store = Store(path)
        job = JobIdentity("k" * 24, "bench", "model", "task", "1", "fp", "linear_probe", 0, {"x": 1})
        assert data.scores is not None
        preds = Predictions(
            tuple(f"test-{i:06d}" for i in range(n)), data.y, data.pred, data.scores.max(axis=1),
            data.scores if with_scores else None, "probability" if with_scores else None,
        )  # fmt: skip
        record = RunRecord(
            job=job, status="done", started_at="2026-01-01T00:00:00", finished_at="2026-01-01T00:00:01",
            duration_s=1.0, metrics=(MetricValue("accuracy", 0.7, 0.69, 0.71),), predictions=preds,
        )  # fmt: skip
        store.write_run(record)
        store.close()
        con = sqlite3.connect(path)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("VACUUM")
        con.close()
        return path.stat().st_size


def sizes(n: int) -> list[str]:
    lines = [
        "Store size of one run (fresh SQLite file after VACUUM; the difference is the run's share):",
        "",
        "| examples x labels | without class scores | with class scores | added per run | scores raw (n x k x 4 B) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for k in (10, 100):
        before, after = store_size(n, k, False), store_size(n, k, True)
        lines.append(
            f"| {n:,} x {k} | {before / 1e6:.2f} MB | {after / 1e6:.2f} MB | {(after - before) / 1e6:.2f} MB | "
            f"{n * k * 4 / 1e6:.2f} MB |"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--labels", type=int, default=10)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--loop-boot", type=int, default=50)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    print("\n".join(speed(args.n, args.labels, args.boot, args.loop_boot, args.reps)))
    print()
    print("\n".join(sizes(args.n)))


if __name__ == "__main__":
    main()
