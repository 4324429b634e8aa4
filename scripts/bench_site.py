"""Scale benchmark for `harness site`: generate a store of N models x T tasks x P protocols, build the site.

    python scripts/bench_site.py --models 1000 --tasks 50 --protocols 3 --out /tmp/bench-site

Writes the store with bulk inserts into the exact schema Store creates (harness.store.schema.SCHEMA), with
synthetic but internally consistent results: per-example predictions, metrics computed from them,
confusion matrices, per-class F1, timings on two hardware fingerprints, ~2% not-applicable and ~1%
failed runs. Prints insert, query, cold build, unchanged rebuild and one-model-added rebuild times.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from harness.sitegen import BuildStats, build_site
from harness.store import Store, StoreReader

HARDWARE = (
    ("benchcpu0001", "Bench CPU 16-core", None, 16),
    ("benchgpu0002", "Bench CPU 16-core", "Bench GPU 80GB", 16),
)
PROTOCOL_NAMES = ("zero-shot", "linear-probe", "finetune", "probe-8shot", "probe-32shot")


def _metrics(y: np.ndarray, pred: np.ndarray, k: int) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(float)
    support, predicted = cm.sum(1), cm.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)
    return (
        {
            "accuracy": tp.sum() / len(y),
            "macro_f1": f1.mean(),
            "weighted_f1": (f1 * support).sum() / support.sum(),
            "macro_precision": precision.mean(),
            "macro_recall": recall.mean(),
        },
        f1,
        cm,
    )


K_SERIES = {"probe-1shot": 1, "probe-2shot": 2, "probe-4shot": 4, "probe-8shot": 8, "probe-16shot": 16}


class Generator:
    def __init__(
        self, n_models: int, n_tasks: int, n_protocols: int, n_test: int, seed: int = 0, k_series: bool = False
    ) -> None:
        self.k_series = k_series  # k-shot probes on the first task, with linear-probe as "all of train"
        self.only_k_series = False  # yield only those (to add them to an existing store)
        self.rng = np.random.default_rng(seed)
        self.models = [f"model-{i:04d}" for i in range(n_models)]
        self.tasks = [f"task-{j:02d}" for j in range(n_tasks)]
        self.protocols = list(PROTOCOL_NAMES[:n_protocols]) + [
            f"protocol-{p}" for p in range(n_protocols - len(PROTOCOL_NAMES))
        ]
        self.n_test = n_test
        self.skill = self.rng.uniform(0.35, 0.95, n_models)
        self.params = (10 ** self.rng.uniform(6, 9.5, n_models)).astype(np.int64)
        self.n_labels = self.rng.integers(2, 11, n_tasks)
        self.difficulty = self.rng.uniform(0.0, 0.25, n_tasks)
        self.labels = [self.rng.integers(0, k, n_test) for k in self.n_labels]
        self.clock = 0

    def _now(self) -> str:
        self.clock += 1
        return f"2025-01-01T00:{(self.clock // 3600) % 60:02d}:{self.clock % 60:02d}+00:00".replace(
            "T00:", f"T{(self.clock // 216000) % 24:02d}:", 1
        )

    def _config(self, protocol: str) -> dict[str, Any]:
        config: dict[str, Any] = {"suite_path": "suites/bench.yaml"}
        if self.k_series and (protocol in K_SERIES or protocol == "linear-probe"):
            options = {"k_shot": K_SERIES.get(protocol), "repeats": 5 if protocol in K_SERIES else 1}
            config["protocol"] = {"name": protocol, "protocol": "linear_probe", "config": options}
        return config

    def metadata(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        models = [
            {"name": m, "family": ["hf_text", "sentence_tf", "onnx", "tfidf"][i % 4], "modality": "text" if i % 5 else "image",
             "source": f"org/{m}", "revision": "main", "params": int(self.params[i]), "license": "apache-2.0",
             "description": "", "feature_dim": 384, "spec_json": "{}"}
            for i, m in enumerate(self.models)
        ]  # fmt: skip
        tasks = [
            {"name": t, "version": "1", "modality": "text", "labels_json": json.dumps([f"label-{c}" for c in range(k)]),
             "n_train": 1000, "n_validation": 200, "n_test": self.n_test, "fingerprint": f"fp-{t}", "source_signature": "",
             "source": "synthetic", "license": "CC0", "citation": "", "spec_json": json.dumps({"main_metric": "macro_f1"})}
            for t, k in zip(self.tasks, self.n_labels, strict=True)
        ]  # fmt: skip
        hardware = [
            {"fingerprint": fp, "cpu": cpu, "gpu": gpu, "torch": "2.13.0", "cuda": "12.4" if gpu else None,
             "threads": threads, "platform": "Linux x86_64", "details_json": "{}"}
            for fp, cpu, gpu, threads in HARDWARE
        ]  # fmt: skip
        return models, tasks, hardware

    def runs(
        self, model_indices: range | list[int]
    ) -> Iterator[tuple[dict[str, Any], list[tuple[Any, ...]], list[tuple[Any, ...]], dict[str, Any] | None]]:
        """(run row, metric rows, prediction rows, timing row) per (model, task, protocol)."""
        env = json.dumps({"harness_version": "0.1.0", "python": "3.11.7", "packages": {"torch": "2.13.0"}})
        for i in model_indices:
            model = self.models[i]
            hw = HARDWARE[1][0] if i % 5 == 0 else HARDWARE[0][0]
            for j, task in enumerate(self.tasks):
                k, y = int(self.n_labels[j]), self.labels[j]
                extra = list(K_SERIES) if self.k_series and j == 0 else []
                for p_index, protocol in enumerate(self.protocols + extra):
                    if self.only_k_series and protocol not in K_SERIES:
                        continue
                    key = f"{model}|{task}|{protocol}"
                    started = self._now()
                    roll = self.rng.random()
                    status = "not_applicable" if roll < 0.02 else "failed" if roll < 0.03 else "done"
                    run = {
                        "key": key, "suite": "bench", "label": "", "model": model, "task": task, "task_version": "1",
                        "data_fingerprint": f"fp-{task}", "protocol": protocol, "seed": 0, "status": status,
                        "error": None if status == "done" else f"{status} for {model} on {task}",
                        "config_json": json.dumps(self._config(protocol)), "selected_json": "{}",
                        "confusion_json": None, "started_at": started, "finished_at": started, "duration_s": 1.0,
                        "hardware": hw, "harness_version": "0.1.0", "git_hash": "0123456789abcdef", "env_json": env,
                        "schema_version": 1,
                    }  # fmt: skip
                    if status != "done":
                        yield run, [], [], None
                        continue
                    shots = K_SERIES.get(protocol)
                    offset = 0.05 * p_index if shots is None else 0.05 - 0.3 / shots**0.5
                    p_correct = float(
                        np.clip(
                            self.skill[i] - self.difficulty[j] + offset + self.rng.normal(0, 0.03),
                            0.05,
                            0.99,
                        )
                    )
                    correct = self.rng.random(self.n_test) < p_correct
                    pred = np.where(correct, y, (y + self.rng.integers(1, k, self.n_test)) % k)
                    values, f1, cm = _metrics(y, pred, k)
                    run["confusion_json"] = json.dumps(cm.tolist())
                    half = 1.96 * np.sqrt(values["accuracy"] * (1 - values["accuracy"]) / self.n_test)
                    metrics: list[tuple[Any, ...]] = [
                        (key, name, float(v), float(max(v - half, 0.0)), float(min(v + half, 1.0)))
                        for name, v in values.items()
                    ]
                    metrics += [(key, f"f1/label-{c}", float(f1[c]), None, None) for c in range(k)]
                    preds = [(key, f"ex-{e:05d}", int(y[e]), int(pred[e]), 1.0) for e in range(self.n_test)]
                    p50 = float(
                        self.params[i]
                        / 2e7
                        * (0.1 if hw == HARDWARE[1][0] else 1.0)
                        * self.rng.uniform(0.9, 1.1)
                    )
                    timing = {
                        "run_key": key, "hardware": hw, "device": "cuda" if hw == HARDWARE[1][0] else "cpu", "batch_size": 32,
                        "p50_ms": p50, "p95_ms": p50 * 1.3, "p99_ms": p50 * 1.6, "mean_ms": p50 * 1.05, "std_ms": p50 * 0.1,
                        "n_timed": 30, "items_per_s": 32000 / (p50 * 8), "peak_mem_mb": float(self.params[i] * 4 / 2**20),
                        "params": int(self.params[i]),
                    }  # fmt: skip
                    yield run, metrics, preds, timing


def insert(store: Store, gen: Generator, model_indices: range | list[int], with_metadata: bool) -> int:
    conn = store.db.conn
    n = 0
    with store.transaction():
        if with_metadata:
            models, tasks, hardware = gen.metadata()
            store.db.table("models").upsert_all(models, pk="name")
            store.db.table("tasks").upsert_all(tasks, pk=("name", "version", "fingerprint"))
            store.db.table("hardware").upsert_all(hardware, pk="fingerprint")
        run_rows: list[dict[str, Any]] = []
        metric_rows: list[tuple[Any, ...]] = []
        pred_rows: list[tuple[Any, ...]] = []
        timing_rows: list[dict[str, Any]] = []

        def flush() -> None:
            if run_rows:
                cols = list(run_rows[0])
                conn.executemany(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                                 [tuple(r[c] for c in cols) for r in run_rows])  # fmt: skip
            conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", metric_rows)
            conn.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?)", pred_rows)
            if timing_rows:
                cols = list(timing_rows[0])
                conn.executemany(f"INSERT INTO timings ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                                 [tuple(r[c] for c in cols) for r in timing_rows])  # fmt: skip
            for rows in (run_rows, metric_rows, pred_rows, timing_rows):
                rows.clear()

        for run, metrics, preds, timing in gen.runs(model_indices):
            run_rows.append(run)
            metric_rows.extend(metrics)
            pred_rows.extend(preds)
            if timing:
                timing_rows.append(timing)
            n += 1
            if len(pred_rows) > 500_000:
                flush()
        flush()
    return n


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


_BUILD = """
import json, sys
from dataclasses import asdict
from pathlib import Path
from harness.sitegen import BuildStats, build_site
stats = build_site(Path(sys.argv[1]), Path(sys.argv[2]), workers=json.loads(sys.argv[3]))
print(json.dumps(asdict(stats), default=str))
"""


def _build_in_new_process(db: Path, site: Path, workers: int | None) -> BuildStats:
    """build_site in a new interpreter (its import time not counted in the build's own `seconds`, but in
    the wall and CPU time measured around it, as a user running `harness site` sees it)."""
    done = subprocess.run(
        [sys.executable, "-c", _BUILD, str(db), str(site), json.dumps(workers)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    fields = json.loads(done.stdout.splitlines()[-1])
    return BuildStats(**{**fields, "out": Path(fields["out"])} | {k: tuple(fields[k]) for k in ("written", "unchanged", "removed")})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--protocols", type=int, default=3)
    parser.add_argument(
        "--n-test", type=int, default=100, help="test examples per task (predictions per run)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("/tmp/bench-site"), help="work folder (store + site)"
    )
    parser.add_argument("--reuse-db", action="store_true", help="keep an existing generated store")
    parser.add_argument("--workers", type=int, default=None, help="render processes (default: one per CPU)")
    parser.add_argument(
        "--fresh-processes",
        action="store_true",
        help="run each build in a new Python process, as `harness site` does (default: all in this one)",
    )
    parser.add_argument("--k-series", action="store_true", help="add k-shot probes on the first task (a learning curve)")
    parser.add_argument(
        "--add-k-series", action="store_true", help="only add the k-shot probes to an existing store, then build"
    )
    args = parser.parse_args(argv)

    db, site = args.out / "bench.db", args.out / "site"
    # The site's copy of the runs (harness.store.run_cache) lives beside the store here, and a cold build
    # starts without it: cold means nothing from an earlier build.
    run_cache = args.out / "run-cache"
    os.environ["HARNESS_SITE_CACHE"] = str(run_cache)
    if args.add_k_series:  # e.g. for screenshots of a learning curve at 1,000 models
        gen = Generator(args.models, args.tasks, args.protocols, args.n_test, k_series=True)
        gen.only_k_series = True
        store = Store(db)
        print(f"added {insert(store, gen, range(args.models), with_metadata=False):,} k-shot runs")
        store.close()
        stats = build_site(db, site, workers=args.workers)
        print(f"build: {stats.seconds['total']:.1f} s, {stats.pages_rendered} page jobs rendered")
        return 0
    gen = Generator(args.models - 1, args.tasks, args.protocols, args.n_test, k_series=args.k_series)
    if not (args.reuse_db and db.exists()):
        shutil.rmtree(args.out, ignore_errors=True)
        store = Store(db)
        t = time.perf_counter()
        n = insert(store, gen, range(args.models - 1), with_metadata=True)
        print(f"insert: {n:,} runs ({args.models - 1} models x {args.tasks} tasks x {args.protocols} protocols, "
              f"{args.n_test} predictions each) in {time.perf_counter() - t:.1f} s")  # fmt: skip
        store.close()
    else:
        shutil.rmtree(site, ignore_errors=True)
        store = Store(db)  # start without the model that is added below
        store.db.execute("DELETE FROM runs WHERE model = ?", [f"model-{args.models - 1:04d}"])
        store.close()
    print(f"store size: {db.stat().st_size / 2**20:,.0f} MiB")

    t = time.perf_counter()
    with StoreReader(db) as reader:
        snapshot = reader.snapshot()
    print(
        f"query (bulk load of {len(snapshot.runs):,} runs with metrics and timings): {time.perf_counter() - t:.1f} s"
    )

    def report(label: str) -> None:
        load = os.getloadavg()[0]
        cpu = _cpu_seconds()
        t = time.perf_counter()
        stats = _build_in_new_process(db, site, args.workers) if args.fresh_processes else build_site(db, site, workers=args.workers)
        wall = time.perf_counter() - t
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in stats.seconds.items() if k != "total")
        print(f"{label}: {wall:.1f} s wall, {_cpu_seconds() - cpu:.1f} s CPU incl. workers ({parts}); "
              f"{stats.pages_rendered} page jobs rendered, "
              f"{len(stats.written)} files written, {len(stats.unchanged)} unchanged, "
              f"{stats.rank_groups_computed} tie-group computations [load average before: {load:.1f} "
              f"on {os.cpu_count()} CPUs]")  # fmt: skip

    shutil.rmtree(run_cache, ignore_errors=True)
    report("cold build")
    report("unchanged rebuild")
    # One more model arrives (as after `harness run` of a new candidate): a realistic incremental update.
    store = Store(db)
    gen.models.append(f"model-{args.models - 1:04d}")
    gen.skill = np.append(gen.skill, 0.99)
    gen.params = np.append(gen.params, 50_000_000)
    t = time.perf_counter()
    extra = insert(store, gen, [args.models - 1], with_metadata=False)
    store.db.table("models").upsert(gen.metadata()[0][-1], pk="name")
    store.close()
    print(f"insert of one new model ({extra} runs): {time.perf_counter() - t:.1f} s")
    report("rebuild after adding one model")
    pages = {kind: max((p.stat().st_size, p.name) for p in (site / kind).glob("*.html")) for kind in ("tasks", "models", "protocols")}
    print(f"page weight: index.html {(site / 'index.html').stat().st_size / 1024:,.0f} KiB; largest "
          + "; ".join(f"{kind} page {size / 1024:,.0f} KiB ({name})" for kind, (size, name) in pages.items()))  # fmt: skip
    size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    print(f"site: {sum(1 for p in site.rglob('*') if p.is_file()):,} files, {size / 2**20:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
