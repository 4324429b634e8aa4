"""Results on a task with leaky splits are flagged: stored report, `harness show`, the site's task page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_hygiene import _planted
from typer.testing import CliRunner

from harness.cli import app
from harness.sitegen import build_site
from harness.store import Store


def _run(tmp_path: Path, dedupe: str) -> tuple[Path, Path]:
    task_file = _planted(tmp_path, dedupe)
    suite = tmp_path / f"suite-{dedupe}.yaml"
    suite.write_text(
        f"name: leaks\nplugins: [{task_file.name}]\ntasks: [planted]\n"
        "models: [{name: tfidf, family: tfidf}]\nprotocols: [linear_probe]\n"
        "timing: {warmup: 1, batch1_iters: 3, throughput_batches: 1}\nbootstrap: {n_boot: 50}\n"
    )
    db = tmp_path / f"{dedupe}.db"
    result = CliRunner().invoke(app, ["run", str(suite), "--db", str(db), "--quiet"])
    assert result.exit_code == 0, result.output
    return db, suite


@pytest.mark.parametrize("dedupe", ["off", "drop-test-leaks"])
def test_leaky_task_results_are_flagged_everywhere(tmp_path: Path, dedupe: str) -> None:
    db, _ = _run(tmp_path, dedupe)
    stored = Store(db).reader.task_hygiene()["planted"]
    assert stored is not None
    report = json.loads(stored)
    leaky = dedupe == "off"
    assert (report["exact_leaks"]["test_in_train"] == 3) is leaky
    assert [m for g in report["exact_groups"] for m in g["members"]]  # the ids involved are stored

    # drop-test-leaks removes the 3 exact copies; the planted near copy (one word changed) stays and is flagged.
    exact, near = ("3", "4") if leaky else ("0", "1")
    expected = (
        f"{exact} test and 0 validation examples have an exact copy in an earlier split; "
        f"{near} test examples have an exact or near copy"
    )
    shown = " ".join(CliRunner().invoke(app, ["show", "--db", str(db)]).output.split())
    assert f"data leak: {expected}" in shown

    out = build_site(db, tmp_path / f"site-{dedupe}").out
    page = " ".join(next((out / "tasks").glob("*.html")).read_text().split())
    assert f'<strong class="warn">Leak:</strong> {expected}' in page
    # the index flags the task's column and each of its score cells, with the summary on hover
    index = " ".join((out / "index.html").read_text().split())
    assert f'class="task-col leak" title="Leak: {expected}' in index
    cells = re.findall(r'<td class="heat done leak[^"]*" title="([^"]*)">[0-9.]+<span class="leak-mark"', index)
    assert cells and all(title.startswith(f"Leak: {expected}") for title in cells)


def test_clean_builtin_split_is_not_flagged(tmp_path: Path) -> None:
    suite = tmp_path / "digits.yaml"
    suite.write_text(
        "name: clean\ntasks: [{name: digits, subsample: {train: 200, validation: 60, test: 100, seed: 0}}]\n"
        "models: [{name: pixels, family: pixels}]\nprotocols: [linear_probe]\n"
        "timing: {warmup: 1, batch1_iters: 3, throughput_batches: 1}\nbootstrap: {n_boot: 50}\n"
    )
    db = tmp_path / "clean.db"
    assert CliRunner().invoke(app, ["run", str(suite), "--db", str(db), "--quiet"]).exit_code == 0
    shown = CliRunner().invoke(app, ["show", "--db", str(db)]).output
    assert "digits" in shown and "data leak" not in shown
    page = next((build_site(db, tmp_path / "site").out / "tasks").glob("*.html")).read_text()
    assert "no exact or near duplicate crosses the splits" in page
    assert "leak-mark" not in (tmp_path / "site" / "index.html").read_text().split("<h2>Tasks</h2>")[0].split("</p>", 1)[1]
