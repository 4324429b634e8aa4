"""Golden files: what `harness show`, `harness show --json` and the rendered site (task, index, protocol and model pages, a table data file, the downloads) say, line by line.

They pin the user-visible output across refactors: a change here is a behaviour change (or an intended one,
regenerated with `python -m pytest tests/test_golden.py --update-golden`; see tests/conftest.py).

Two stores, both deterministic:
- a fixture store of real scikit-learn models on the real digits data (tests/result_fixtures.py), written
  through Store.write_run with real computed metrics; the things that differ from machine to machine are
  given: timestamps, hardware fingerprints, harness version, latency figures (fixed_timing);
- a store written by a real `harness run` of a small suite (built-in digits and bbc-news tasks, pixel and
  TF-IDF models, zero-shot and linear probe) with timing off, so no number depends on the machine.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from result_fixtures import (
    HW_B,
    failed_record,
    fixed_timing,
    logreg,
    make_record,
    task_metrics,
    train,
    write_store,
    zoo_model,
)
from sklearn.naive_bayes import GaussianNB
from typer.testing import CliRunner

from harness.cli import app

Golden = Callable[[str, str], None]
# Piped output is 120 columns wide (harness.console); COLUMNS gives a terminal run the same width.
ENV = {"COLUMNS": "120", "NO_COLOR": "1"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")
MARKUP_NAME = "[bold]nb[/bold] <i>x</i>"  # rich markup and HTML in a model name: printed and rendered as text
METRICS = task_metrics(("accuracy", "macro_f1", "mcc", "roc_auc", "ece"), "mcc")


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env=ENV)
    assert result.exit_code == 0, result.output
    return ANSI.sub("", result.stdout)


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six real models on digits (probabilities, logits, none), one at two seeds; a contended timing, one
    with too few samples for p95/p99, one timed before the contention guard, one on other hardware, one
    untimed; one failed run."""
    records = []
    for name, p50, kwargs in (
        ("logreg", 0.9, {}),
        ("pca16-logreg", 0.5, {"n_timed": 12}),
        ("svm-rbf", 3.0, {"contended": True}),
        ("knn-3", 1.4, {"hardware": HW_B}),
        ("tree-depth4", None, {}),
    ):
        model = zoo_model(name)
        timing = fixed_timing(p50, params=model.params, **kwargs) if p50 else None
        records.append(make_record(model, timing=timing, metrics=METRICS))
    second_seed = train("logreg", logreg(), bootstrap_seed=1, seed=1, protocol_config={"estimator": "logreg"})
    records.append(make_record(second_seed, timing=fixed_timing(0.95, params=second_seed.params), metrics=METRICS))
    odd = train(MARKUP_NAME, GaussianNB(), protocol_config={"estimator": "gaussian-nb"})
    records.append(make_record(odd, timing=fixed_timing(0.3, params=odd.params, contended=None), metrics=METRICS))
    records.append(failed_record("broken-model", "ValueError: features contain NaN\nTraceback (most recent call last): ..."))
    # weights recorded (as the runner does), so the table has room for every column up to params
    records = [replace(r, job=replace(r.job, model_weights=f"sha256:{_digest(r.job.model)}")) for r in records]
    return write_store(tmp_path_factory.mktemp("golden") / "results.db", records, METRICS)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def test_show_fixture_store(fixture_db: Path, golden: Golden) -> None:
    golden("show_fixture.txt", cli("show", "--db", str(fixture_db)))


def test_show_fixture_store_one_model(fixture_db: Path, golden: Golden) -> None:
    golden("show_fixture_svm.txt", cli("show", "--db", str(fixture_db), "--task", "digits-fixture", "--model", "svm-rbf"))


def test_show_lists_the_best_runs_of_each_table_and_counts_the_rest(fixture_db: Path) -> None:
    """--top N: the N best finished runs and N unfinished ones per table, then how many more there are (a
    store of 1,000 models printed 150,000 rows, for minutes); --top 0 lists every run."""
    every = cli("show", "--db", str(fixture_db))
    assert cli("show", "--db", str(fixture_db), "--top", "0") == every  # 7 finished runs: under the default
    top = cli("show", "--db", str(fixture_db), "--top", "2")
    assert " svm-rbf " in top and " knn-3 " in top and " logreg " not in top and "pca16" not in top
    assert "... and 5 more finished runs ranked below these (--top 0 lists every run" in " ".join(top.split())
    assert "svm-rbf / linear_probe: run-queue wait" in top  # the notes of the rows shown
    assert "FAILED broken-model" in top and "not applicable or failed" not in top  # 1 unfinished run: all shown
    one = cli("show", "--db", str(fixture_db), "--top", "1")
    assert "FAILED broken-model" in one and " knn-3 " not in one and "6 more finished runs" in one


def _rounded(value: Any) -> Any:
    """Floats to 6 decimals: the last bits of a BLAS sum may differ between CPUs, the output may not."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def test_show_json_fixture_store(fixture_db: Path, golden: Golden) -> None:
    records = json.loads(cli("show", "--db", str(fixture_db), "--json"))
    golden("show_fixture.json", json.dumps(_rounded(records), indent=2, ensure_ascii=False))


def test_task_page_fixture_store(fixture_db: Path, tmp_path: Path, golden: Golden) -> None:
    out = tmp_path / "site"
    cli("site", "--db", str(fixture_db), "--out", str(out))
    pages = sorted((out / "tasks").glob("*.html"))
    assert [p.name for p in pages] == ["digits-fixture.html"]
    golden("task_page_fixture.html", pages[0].read_text(encoding="utf-8"))
    # The downloads, as written (a failed run's error spans lines; the model name holds markup).
    golden("results_fixture.csv", (out / "results.csv").read_text(encoding="utf-8"))
    golden("results_fixture.json", (out / "results.json").read_text(encoding="utf-8"))
    # The leaderboards (heat cells of done, failed and two-seed results, a name holding markup), the task's
    # data file (every row, as site.js loads it) and a model page's rows.
    golden("index_fixture.html", (out / "index.html").read_text(encoding="utf-8"))
    protocols = sorted((out / "protocols").glob("*.html"))
    assert [p.name for p in protocols] == ["linear_probe.html"]
    golden("protocol_page_fixture.html", protocols[0].read_text(encoding="utf-8"))
    golden("task_rows_fixture.js", (out / "data" / "tasks" / "digits-fixture.1.js").read_text(encoding="utf-8"))
    models = {p.name: p for p in (out / "models").glob("*.html")}
    golden("model_page_fixture.html", models["logreg.html"].read_text(encoding="utf-8"))


SUITE = """\
name: golden
tasks:
  - name: digits
    subsample: {train: 300, validation: 100, test: 200, seed: 0}
  - name: bbc-news
    subsample: {train: 150, validation: 60, test: 100, seed: 0}
models:
  - {name: pixels-logreg, family: pixels}
  - {name: tfidf-logreg, family: tfidf}
protocols:
  - zero_shot
  - {name: linear_probe, Cs: [0.1, 1.0, 10.0]}
timing: {enabled: false}
bootstrap: {n_boot: 200, seed: 0}
"""


@pytest.fixture(scope="module")
def run_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store of a real `harness run` (built-in tasks, real data and models; timing off)."""
    root = tmp_path_factory.mktemp("golden-run")
    suite = root / "golden.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    db = root / "results.db"
    cli("run", str(suite), "--db", str(db), "--quiet")
    return db


@pytest.mark.parametrize("task", ["digits", "bbc-news"])
def test_show_after_a_real_run(run_db: Path, task: str, golden: Golden) -> None:
    golden(f"show_run_{task}.txt", cli("show", "--db", str(run_db), "--task", task))
