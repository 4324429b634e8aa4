"""`harness site` on a generated store: a cold build and an unchanged rebuild."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from harness.sitegen import build_site


def test_site_cold_build(benchmark: Any, generated_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"

    def fresh() -> None:
        shutil.rmtree(out, ignore_errors=True)

    stats = benchmark.pedantic(lambda: build_site(generated_store, out), setup=fresh, rounds=3, iterations=1)
    assert stats.pages_rendered > 200  # every page rendered


def test_site_unchanged_rebuild(benchmark: Any, generated_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    build_site(generated_store, out)
    stats = benchmark.pedantic(lambda: build_site(generated_store, out), rounds=5, iterations=1)
    assert stats.written == ()
