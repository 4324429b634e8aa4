"""Each extension guide in docs/, followed step by step (tests/guide_walk.py): its files are written, its
commands run (a real pip install of the plugin package, real `harness run` on real data, a real store), and
what the guide promises is checked in `harness show`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from guide_walk import walk
from typer.testing import CliRunner

from harness.cli import app


def _records(db: Path, task: str) -> list[dict]:
    result = CliRunner().invoke(app, ["show", "--db", str(db), "--task", task, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _row(shown: str, model: str, protocol: str) -> str:
    """The `harness show` row of model / protocol (piped output is 120 columns: a long name wraps, so the
    row's first line holds a prefix of it)."""
    rows = [
        line
        for line in shown.splitlines()
        if len(cells := line.split()) > 2 and model.startswith(cells[0]) and protocol.startswith(cells[1]) and min(len(cells[0]), len(cells[1])) >= 4
    ]
    assert len(rows) == 1, f"expected one row of {model} / {protocol} in:\n{shown}"
    return rows[0]


def test_adding_a_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = walk("adding-a-task.md", tmp_path, monkeypatch)
    listed = done.output("harness tasks --plugin tweets.yaml tweets-pos-neg")
    assert "tweets-pos-" in listed and "MCC" in listed and "bbc-news" not in listed
    hygiene = done.output("harness tasks --plugin tweets.yaml --check")
    assert "Data hygiene for task 'tweets-pos-neg'" in hygiene and "Verdict: no exact cross-split leaks." in hygiene
    # the class balance the guide promises: both labels in every split, stratified (600 tweets, 60/20/20)
    assert re.search(r"'negative'\s+180\s+60\s+60", hygiene) and re.search(r"'positive'\s+180\s+60\s+60", hygiene)
    assert "Warning" not in hygiene
    shown = done.output("harness show")
    assert "tweets-pos-neg — ranked by MCC (higher is better)" in shown
    assert "bbc-headlines — ranked by Macro-F1 (higher is better)" in shown
    tweets = _records(tmp_path / "results.db", "tweets-pos-neg")
    headlines = _records(tmp_path / "results.db", "bbc-headlines")
    assert [(r["model"]["name"], r["protocol"], r["status"]) for r in tweets + headlines] == [("tfidf", "linear_probe", "done")] * 2
    assert tweets[0]["task"]["n_test"] == 120 and headlines[0]["task"]["n_test"] == 400
    assert set(tweets[0]["metrics"]) >= {"accuracy", "macro_f1", "mcc"}
    # real text, a real probe: clearly better than chance (MCC 0, macro-F1 0.2 for five topics)
    assert tweets[0]["metrics"]["mcc"]["value"] > 0.2
    assert headlines[0]["metrics"]["macro_f1"]["value"] > 0.5


def test_adding_a_metric(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The metric comes from the installed package's entry point: without it the task would not load."""
    done = walk("adding-a-metric.md", tmp_path, monkeypatch)
    shown = done.output("harness show")
    assert "tweets-cost — ranked by Cost-weighted error (lower is better)" in shown
    (run,) = _records(tmp_path / "results.db", "tweets-cost")
    cost = run["metrics"]["cost_weighted_error"]
    assert run["status"] == "done" and cost["ci_low"] <= cost["value"] <= cost["ci_high"]
    # each error costs 1 (false alarm) or 5 (missed negative): the mean cost lies between 1x and 5x the error rate
    error_rate = 1 - run["metrics"]["accuracy"]["value"]
    assert 0 < error_rate <= cost["value"] <= 5 * error_rate
    assert f"{cost['value']:.3f}" in _row(shown, "tfidf", "linear_probe")


def test_adding_a_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = walk("adding-a-protocol.md", tmp_path, monkeypatch)
    shown = done.output("harness show")
    for protocol in ("nearest_centroid", "centroid-5shot", "linear_probe"):
        _row(shown, "pixels", protocol)
    runs = {r["protocol"]: r for r in _records(tmp_path / "results.db", "digits")}
    assert {p: r["status"] for p, r in runs.items()} == dict.fromkeys(runs, "done")
    assert runs["nearest_centroid"]["selected"]["n_train_examples"] == 300
    assert runs["centroid-5shot"]["selected"]["n_train_examples"] == 50  # 5 per digit
    assert runs["centroid-5shot"]["config"]["protocol"]["config"]["k_shot"] == 5
    # real predictions on real digits: nearest class mean on raw pixels is a strong baseline (~0.9)
    assert runs["nearest_centroid"]["metrics"]["macro_f1"]["value"] > 0.8
    value = runs["nearest_centroid"]["metrics"]["macro_f1"]["value"]
    assert f"{value:.3f}" in _row(shown, "pixels", "nearest_centroid")
    assert runs["nearest_centroid"]["timing"]["p50_ms"] > 0  # its predict function was timed


@pytest.mark.slow  # real MiniLM weights (its token embedding table)
def test_adding_a_model_family(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = walk("adding-a-model-family.md", tmp_path, monkeypatch)
    assert "static_embeddings" in done.output("harness models").split()
    shown = done.output("harness show")
    runs = {r["protocol"]: r for r in _records(tmp_path / "results.db", "bbc-news") if r["model"]["name"] == "minilm-static"}
    assert {p: r["status"] for p, r in runs.items()} == {"zero_shot": "done", "linear_probe": "done"}
    assert runs["linear_probe"]["model"]["params"] == 30522 * 384  # MiniLM's token embedding table
    assert runs["zero_shot"]["selected"]["prompt_templates"]  # the task's label prompts, embedded
    # real weights on real articles: far above chance (macro-F1 0.2 for five topics)
    assert runs["zero_shot"]["metrics"]["macro_f1"]["value"] > 0.4
    assert runs["linear_probe"]["metrics"]["macro_f1"]["value"] > 0.8
    for protocol, run in runs.items():
        row = _row(shown, "minilm-static", protocol)
        assert f"{run['metrics']['macro_f1']['value']:.3f}" in row and "11.7M" in row
