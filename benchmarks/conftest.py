"""pytest-benchmark benchmarks of harness's own speed (not tests: nothing here asserts a time).

    python -m pytest benchmarks                                   # run, print the table
    python -m pytest benchmarks --benchmark-compare               # against the newest saved baseline
    python -m pytest benchmarks --benchmark-save=NAME             # save a new baseline

Baselines live in benchmarks/baselines/ (set in pytest.ini here); docs/benchmarks.md says more.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # result_fixtures: real sklearn models on real digits


def bench_site_module() -> ModuleType:
    """scripts/bench_site.py (its store generator), imported by path: scripts/ is not a package."""
    spec = importlib.util.spec_from_file_location("bench_site", ROOT / "scripts" / "bench_site.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def generated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 models x 10 tasks x 2 protocols (4,000 runs, 100 predictions each), synthetic but consistent."""
    from harness.store import Store

    bench = bench_site_module()
    path = tmp_path_factory.mktemp("bench-store") / "bench.db"
    store = Store(path)
    bench.insert(store, bench.Generator(200, 10, 2, 100), range(200), with_metadata=True)
    store.close()
    return path
