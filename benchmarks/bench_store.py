"""The store: writing one run (run row, metrics, 540 predictions, timing) in its transaction."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any

from result_fixtures import fixed_timing, make_record, write_store, zoo_model

from harness.store import Store


def test_store_write_one_run(benchmark: Any, tmp_path: Path) -> None:
    model = zoo_model("logreg")
    record = make_record(model, timing=fixed_timing(0.2, params=model.params))
    path = write_store(tmp_path / "store.db", [record])  # tables, model, task and hardware rows exist
    store = Store(path)
    counter = itertools.count()

    def write() -> None:
        n = next(counter)
        job = replace(record.job, key=f"bench-{n}")
        store.write_run(replace(record, job=job))

    benchmark.pedantic(write, rounds=50, iterations=1, warmup_rounds=2)
    store.close()
