"""The static site, built from a store of real sklearn results on the digits data (no browser here)."""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier

from harness.errors import HarnessError
from harness.metrics import BootstrapConfig, MetricData, MetricRegistry, evaluate
from harness.metrics.stats import rank_with_ties
from harness.models.base import ModelInfo
from harness.records import JobIdentity, Predictions, RunRecord, RunStatus, TaskRecord, TimingRecord
from harness.sitegen import BuildStats, build_site, render
from harness.sitegen import rows as rows_module
from harness.sitegen.charts import pareto_frontier
from harness.sitegen.slugs import slugify_all
from harness.store import Store

XSS = "<script>alert(1)</script>"
QUOTES = 'q" onmouseover="alert(2)" x=\'&'  # breaks out of an attribute unless quotes are escaped
SUITE_PATH = "suites/digits demo.yaml"  # a space: the reproduce command must quote it
HW: dict[str, dict[str, Any]] = {
    "cpu0aaaaaaaa": {"cpu": "Test CPU 8-core", "gpu": None, "torch": "2.13.0", "cuda": None, "threads": 8, "platform": "Linux x86_64"},
    "gpu1bbbbbbbb": {"cpu": "Test CPU 8-core", "gpu": "Test GPU 24GB", "torch": "2.13.0", "cuda": "12.4", "threads": 8, "platform": "Linux x86_64"},
}  # fmt: skip
# name -> (estimator factory, params, hardware fingerprint, p50 ms)
MODELS = {
    "logreg": (lambda: LogisticRegression(max_iter=300), 650, "cpu0aaaaaaaa", 0.9),
    "naive-bayes": (GaussianNB, 1280, "cpu0aaaaaaaa", 1.2),  # slower and worse than logreg: off the frontier
    "tree-d4": (lambda: DecisionTreeClassifier(max_depth=4, random_state=0), 31, "cpu0aaaaaaaa", 0.2),
    "knn-5": (lambda: KNeighborsClassifier(5), 76_000_000, "gpu1bbbbbbbb", 2.5),
    XSS: (lambda: DecisionTreeClassifier(max_depth=2, random_state=0), 7, "cpu0aaaaaaaa", 0.1),
    QUOTES: (lambda: DecisionTreeClassifier(max_depth=1, random_state=0), 3, "cpu0aaaaaaaa", 0.15),
}
PROTOCOLS = ("full-train", "probe-20shot")
START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
Built = tuple[Store, Path, BuildStats]


def _digits_tasks() -> dict[str, tuple[tuple[str, ...], np.ndarray, np.ndarray]]:
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    return {
        "digits": (tuple(str(i) for i in range(10)), x, y),
        XSS: (("even", "odd"), x, y % 2),
    }


def _k_shot(y: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(np.flatnonzero(y == c), k, replace=False) for c in np.unique(y)])


def _record(
    model: str, task: str, protocol: str, seed: int, status: RunStatus, when: datetime, *, suite_path: str | None = SUITE_PATH,
    error: str | None = None, labels: Sequence[str] = (), y: np.ndarray | None = None, pred: np.ndarray | None = None,
    ids: tuple[str, ...] = (), timing: TimingRecord | None = None, protocol_config: dict[str, Any] | None = None,
) -> RunRecord:  # fmt: skip
    config: dict[str, Any] = {"model": model, "task": task, "protocol": protocol_config or protocol, "seed": seed}
    if suite_path is not None:
        config["suite_path"] = suite_path
    job = JobIdentity(
        f"{model}|{task}|{protocol}|{seed}",
        "digits-demo",
        model,
        task,
        "1",
        "fp-" + str(len(labels)),
        protocol,
        seed,
        config,
    )
    metrics, confusion, predictions = (), None, None
    if status == "done":
        assert y is not None and pred is not None
        defaults = MetricRegistry().resolve((), "", len(labels), where="test")
        ev = evaluate(defaults, MetricData.of(y, pred, len(labels)), labels, BootstrapConfig(n_boot=200))
        metrics, confusion = ev.values, ev.confusion
        predictions = Predictions(ids, y, pred, np.ones(len(y)))  # no class scores: a store from before them
    env = {
        "harness_version": "0.1.0",
        "git_hash": "abc1234def",
        "python": "3.11.7",
        "packages": {"scikit-learn": "1.6.0"},
    }
    return RunRecord(
        job=job, status=status, started_at=when.isoformat(), finished_at=(when + timedelta(seconds=5)).isoformat(),
        duration_s=5.0, error=error, metrics=metrics, confusion=confusion, predictions=predictions, timing=timing, env=env,
    )  # fmt: skip


def make_digits_store(path: Path) -> Store:
    """Real predictions of six sklearn models (two named to break HTML) on two digits tasks under two
    protocols, timed on two hardware ids; one not-applicable result per task and one failed run."""
    store = Store(path)
    when = START
    for task, (labels, x, y) in _digits_tasks().items():
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
        ids = tuple(f"test-{i:04d}" for i in range(len(y_test)))
        task_record = TaskRecord(
            task, "1", "image", tuple(labels), "fp-" + str(len(labels)), n_train=len(y_train), n_validation=0,
            n_test=len(y_test), source="sklearn.datasets.load_digits", license="CC BY 4.0",
            citation="Alpaydin & Kaynak (1998)",
            spec={"description": f"Handwritten digits ({task})", "main_metric": "macro_f1"},
        )
        for name, (factory, params, hw, p50) in MODELS.items():
            info = ModelInfo(name, "sklearn", "image", "scikit-learn", "1.6", params, license="BSD-3-Clause",
                             description=f"sklearn {name}")  # fmt: skip
            hardware = {"fingerprint": hw, **HW[hw]}
            for protocol in PROTOCOLS:
                when += timedelta(minutes=1)
                kwargs = {"model": info, "task": task_record, "hardware": hardware}
                if name == "knn-5" and protocol == "probe-20shot":
                    reason = "model 'knn-5' has no few-shot mode (needs <neighbours> per class)."
                    store.write_run(
                        _record(name, task, protocol, 0, "not_applicable", when, error=reason, labels=labels),
                        **kwargs,
                    )
                    continue
                seeds = (0, 1) if (name == "logreg" and protocol == "probe-20shot") else (0,)
                for seed in seeds:
                    train_idx = (
                        _k_shot(y_train, 20, seed) if protocol == "probe-20shot" else np.arange(len(y_train))
                    )
                    pred = (
                        factory().fit(x_train[train_idx], y_train[train_idx]).predict(x_test).astype(np.int64)
                    )
                    timing = TimingRecord(hw, "cpu" if hw.startswith("cpu") else "cuda", 32, p50, p50 * 1.5, p50 * 2,
                                          p50, p50 / 10, 30, 1000 / p50, 12.5, params)  # fmt: skip
                    record = _record(name, task, protocol, seed, "done", when, labels=labels, y=y_test, pred=pred, ids=ids,
                                     timing=timing, suite_path=None if name == "tree-d4" else SUITE_PATH)  # fmt: skip
                    store.write_run(record, **kwargs)
    when += timedelta(minutes=1)
    broken = "ValueError: features contain NaN\nTraceback (most recent call last): ..."
    digit_labels = tuple(str(i) for i in range(10))
    store.write_run(
        _record("broken-model", "digits", "full-train", 0, "failed", when, error=broken, labels=digit_labels)
    )
    return store


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("site")
    store = make_digits_store(root / "harness.db")
    out = root / "site"
    stats = build_site(store.path, out)
    return store, out, stats


def _m(row: dict[str, Any], name: str, field: str = "value") -> float | None:
    """A metric of a Store.results_table row (None when not stored)."""
    m = row["metrics"].get(name)
    return None if m is None else m[field]


def _page(out: Path, kind: str, name: str, names: Sequence[str]) -> str:
    slug = slugify_all(names)[name]
    return (out / kind / f"{slug}.html").read_text(encoding="utf-8")


def _model_names() -> list[str]:
    return [*MODELS, "broken-model"]


def test_pages_downloads_and_static_files_exist(built: Built) -> None:
    _, out, _ = built
    for rel in ("index.html", "results.csv", "results.json", "static/site.css", "static/site.js"):
        assert (out / rel).is_file(), rel
    assert len(list((out / "models").glob("*.html"))) == len(_model_names())
    assert len(list((out / "tasks").glob("*.html"))) == 2
    assert len(list((out / "protocols").glob("*.html"))) == 2
    index = (out / "index.html").read_text()
    assert "https://" not in index.split("<main")[0]  # no CDN in the head
    assert 'src="static/site.js"' in index and 'href="static/site.css"' in index


def test_task_page_shows_stored_numbers_and_best_model_details(built: Built) -> None:
    store, out, _ = built
    page = _page(out, "tasks", "digits", ["digits", XSS])
    rows = [
        r
        for r in store.reader.results_table(task="digits")
        if r["status"] == "done" and r["protocol"] == "full-train"
    ]
    for row in rows:
        assert f"{_m(row, 'macro_f1'):.3f}" in page
        assert f"[{_m(row, 'macro_f1', 'ci_low'):.3f}, {_m(row, 'macro_f1', 'ci_high'):.3f}]" in page
    best = max(rows, key=lambda r: _m(r, "macro_f1") or 0.0)
    assert (
        f'Best model: <a href="../models/{slugify_all(_model_names())[best["model"]]}.html">{best["model"]}</a>'
        in page
    )
    per_class = store.reader.metrics(best["key"])
    assert f">{per_class['f1/7'].value:.3f}<" in page
    confusion = json.loads(
        store.db.execute("SELECT confusion_json FROM runs WHERE key = ?", [best["key"]]).fetchone()[0]
    )
    diagonal = [confusion[i][i] for i in range(10)]
    assert all('class="num diag" style="background:' in page and f">{d}<" in page for d in diagonal)
    # not applicable and failed are shown, with their reasons as text
    assert (
        html.escape("not applicable: model 'knn-5' has no few-shot mode (needs <neighbours> per class).")
        in page
    )
    assert "failed: ValueError: features contain NaN" in page
    # per-hardware Pareto plots, labelled with their hardware
    assert page.count('class="pareto-plot"') == 3  # full-train: cpu + gpu; probe-20shot: cpu only
    assert "Test GPU 24GB" in page and 'data-hardware="gpu1bbbbbbbb"' in page
    # latency columns with the hardware each timing came from
    assert '<abbr class="hw" title="Test CPU 8-core · 8 threads · torch 2.13.0">cpu0aaaa</abbr>' in page


def test_pareto_plot_marks_the_frontier(built: Built) -> None:
    store, out, _ = built
    page = _page(out, "tasks", "digits", ["digits", XSS])
    svg = page.split('data-hardware="cpu0aaaaaaaa"')[1].split("</svg>")[0]
    rows = [
        r
        for r in store.reader.results_table(task="digits")
        if r["protocol"] == "full-train" and r["hardware"] == "cpu0aaaaaaaa" and r["status"] == "done"
    ]
    front = pareto_frontier([(r["p50_ms"], _m(r, "macro_f1")) for r in rows])  # the plot shows the main metric
    expected = {html.escape(rows[i]["model"]) for i in front}
    marked = set(re.findall(r'<g class="pt frontier" data-model="([^"]+)"', svg))
    assert marked == expected and 0 < len(marked) < len(rows)
    assert len(re.findall(r'<g class="pt', svg)) == len(rows)


def test_pareto_frontier_function() -> None:
    points = [(1.0, 0.5), (2.0, 0.4), (2.0, 0.7), (3.0, 0.7), (5.0, 0.9), (0.5, 0.2)]
    assert pareto_frontier(points) == {0, 2, 4, 5}


def test_model_page_has_metadata_results_latency_and_reproduce_command(
    built: Built,
) -> None:
    store, out, _ = built
    page = _page(out, "models", "logreg", _model_names())
    assert "BSD-3-Clause" in page and "650" in page and "sklearn" in page
    assert (
        html.escape(
            "harness run 'suites/digits demo.yaml' --only-model logreg --only-task digits --only-protocol full-train"
        )
        in page
    )
    assert "2 seeds averaged" in page
    f1 = [
        _m(r, "macro_f1")
        for r in store.reader.results_table(task="digits")
        if r["model"] == "logreg" and r["protocol"] == "probe-20shot"
    ]
    assert len(f1) == 2 and f"{np.mean(f1):.3f}" in page
    assert "Latency per hardware" in page and "Test CPU 8-core" in page
    tree = _page(out, "models", "tree-d4", _model_names())
    assert "harness run suites/digits-demo.yaml --only-model tree-d4" in tree
    assert "suite path not recorded" in tree
    broken = _page(out, "models", "broken-model", _model_names())
    assert "failed: ValueError: features contain NaN" in broken


def test_index_ranks_with_tie_groups_and_filters(built: Built) -> None:
    _, out, _ = built
    index = (out / "index.html").read_text()
    assert index.count('<table class="sortable filterable board"') == 2
    assert "<caption>" in index and 'scope="col"' in index and 'scope="row"' in index
    assert 'data-key="modality"' in index and 'data-key="protocol"' in index and 'data-key="size"' in index
    assert 'data-size="lt10m"' in index
    # the leader of each protocol has rank 1; the digits tasks separate the models well, so a clearly worse model is not tied
    ranks = re.findall(r'<td class="num"(?: title="([^"]*)")?>(\d+=?)</td>', index)
    assert ("", "1") in ranks
    assert any(rank not in ("1", "1=") for _, rank in ranks)
    assert any(rank.endswith("=") and "not significantly worse than" in title for title, rank in ranks)
    assert "Test GPU 24GB" in index and "scikit-learn" in index and "abc1234def" in index  # provenance
    assert "2025-03-01" in index


def test_downloads_hold_every_run(built: Built) -> None:
    store, out, _ = built
    n_runs = store.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == n_runs
    stored = {r["key"]: r for r in store.reader.results_table()}
    for row in rows:
        want = stored[row["key"]]
        expected = {
            "macro_f1": _m(want, "macro_f1"), "macro_f1_ci_low": _m(want, "macro_f1", "ci_low"),
            "accuracy": _m(want, "accuracy"), "p50_ms": want["p50_ms"],
        }  # fmt: skip
        for col, value in expected.items():
            got = row[col]
            assert (got == "") if value is None else float(got) == pytest.approx(value, abs=1e-6)
    doc = json.loads((out / "results.json").read_text())
    runs = [dict(zip(doc["runs"]["columns"], r, strict=True)) for r in doc["runs"]["rows"]]
    assert len(runs) == n_runs
    assert {r["status"] for r in runs} == {"done", "not_applicable", "failed"}
    assert any(r["model"] == XSS for r in runs)
    csv_f1 = {r["key"]: float(r["macro_f1"]) if r["macro_f1"] else None for r in rows}
    assert {r["key"]: r["macro_f1"] for r in runs} == csv_f1
    aggregate = [
        dict(zip(doc["aggregate_ranks"]["columns"], r, strict=True)) for r in doc["aggregate_ranks"]["rows"]
    ]
    assert aggregate[0]["rank"] == 1 and aggregate[0]["tested"]
    assert {m["name"] for m in doc["models"]} == set(MODELS)  # the failed model never loaded: no models row


def test_html_in_names_is_escaped(built: Built) -> None:
    _, out, _ = built
    escaped = html.escape(XSS)
    for path in [
        out / "index.html",
        *out.glob("tasks/*.html"),
        *out.glob("models/*.html"),
        *out.glob("protocols/*.html"),
    ]:
        text = path.read_text()
        assert XSS not in text, path
        assert "<script>" not in text.replace('<script src="', ""), path
        assert 'onmouseover="' not in text and QUOTES not in text, path
    index = (out / "index.html").read_text()
    assert escaped in index
    assert f'data-name="{html.escape(QUOTES.lower())}"' in index  # inside the attribute, quotes as entities
    digits = _page(out, "tasks", "digits", ["digits", XSS])
    assert f'data-model="{html.escape(QUOTES)}"' in digits  # the Pareto point's attribute
    xss_task = _page(out, "tasks", XSS, ["digits", XSS])
    assert f"<h1>{escaped}</h1>" in xss_task
    xss_model = _page(out, "models", XSS, _model_names())
    assert f"<h1>{escaped}</h1>" in xss_model


def test_slugs_are_safe_unique_and_stable() -> None:
    names = [
        "minilm",
        "MiniLM",
        "mini lm",
        "mini/lm",
        "../etc/passwd",
        XSS,
        "con",
        "é",
        "",
        "a" * 200,
        "model.v2",
    ]
    slugs = slugify_all(names)
    assert len(set(slugs.values())) == len(names)
    assert len({s.lower() for s in slugs.values()}) == len(names)
    for slug in slugs.values():
        assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*", slug) and len(slug) <= 80 and ".." not in slug
    assert slugs["minilm"] == "minilm" and slugs["model.v2"] == "model.v2"
    assert slugs["con"] != "con"
    assert slugify_all(reversed(names)) == slugs


def test_unchanged_rebuild_rewrites_nothing(built: Built) -> None:
    store, out, first = built
    assert first.written and not first.removed
    mtimes = {
        p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != ".harness-site.json"
    }
    again = build_site(store.path, out)
    assert again.written == () and again.removed == ()
    assert again.rank_groups_computed == 0  # tie groups come from the cache
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


def test_a_temporary_file_left_by_a_stopped_write_is_removed_by_the_next_build(built: Built, tmp_path: Path) -> None:
    """A render worker killed between writing a page's bytes and renaming them over the page leaves its
    ".NAME.tmp" beside it; the next build removes those beside the files the site lists, and nothing else."""
    store, out, _ = built
    site = tmp_path / "site"
    shutil.copytree(out, site)  # mtimes kept: the copy is an untouched site
    left = [site / ".index.html.tmp", site / "tasks" / ".digits.html.tmp"]
    for path in left:
        path.write_text("half a page")
    theirs = [site / ".notes.html.tmp", site / "tasks" / "digits.html.tmp"]  # beside no file the site lists
    for path in theirs:
        path.write_text("mine")
    stats = build_site(store.path, site)
    assert stats.written == ()
    assert not [p.name for p in left if p.exists()]
    assert [p.read_text() for p in theirs] == ["mine", "mine"]


def test_new_run_rewrites_only_affected_pages_and_removes_stale_ones(tmp_path: Path) -> None:
    store = make_digits_store(tmp_path / "harness.db")
    out = tmp_path / "site"
    build_site(store.path, out)
    (out / "index.html").write_text(
        "edited by hand"
    )  # a touched file is rewritten even if its content would match
    store.db.execute("DELETE FROM runs WHERE model = 'broken-model'")
    stats = build_site(store.path, out)
    assert "index.html" in stats.written
    broken_page = f"models/{slugify_all(_model_names())['broken-model']}.html"
    assert stats.removed == (broken_page,) and not (out / broken_page).exists()
    assert {"models/logreg.html", f"tasks/{slugify_all(['digits', XSS])[XSS]}.html"} <= set(stats.unchanged)
    assert "tasks/digits.html" in stats.written
    assert "edited by hand" not in (out / "index.html").read_text()


def test_a_new_best_model_reuses_the_other_rows_bodies_and_builds_the_same_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model that arrives ranked near the top shifts every row's rank on its task pages; the rows' bodies
    (metrics, latency, hardware, status) are read back from the previous build's data files, except where
    a data file was edited, and the site is byte for byte what a cold build makes."""
    db = tmp_path / "harness.db"
    make_digits_store(db).close()
    full = db.read_bytes()
    store = Store(db)
    store.db.execute("DELETE FROM runs WHERE model = 'logreg'")
    store.close()
    out = tmp_path / "site"
    build_site(db, out, workers=1)
    edited = out / "data" / "tasks" / "digits.2.js"
    edited.write_text(edited.read_text(encoding="utf-8").replace('class="num"', 'class="num x"'), encoding="utf-8")
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(full)  # logreg's runs arrive

    formatted: list[tuple[str, str, str]] = []  # (model, task, protocol) of each metric cell formatted
    real = rows_module._metric_td

    def counted(m: Any, r: Any, metric: Any) -> str:
        formatted.append((r.model, r.task, r.protocol))
        return real(m, r, metric)

    monkeypatch.setattr(rows_module, "_metric_td", counted)
    stats = build_site(db, out, workers=1)
    assert "tasks/digits.html" in stats.written
    # logreg's rows, and the other done rows of the edited table only (digits under its second protocol)
    assert {(t, p) for m, t, p in formatted if m == "logreg"} == {(t, p) for t in ("digits", XSS) for p in PROTOCOLS}
    others = {(m, t, p) for m, t, p in formatted if m != "logreg"}
    assert others == {(m, "digits", PROTOCOLS[1]) for m in MODELS if m not in ("logreg", "knn-5")}
    cold = tmp_path / "cold"
    build_site(db, cold, workers=1)
    for path in cold.rglob("*"):
        if path.is_file() and path.name != ".harness-site.json":
            assert (out / path.relative_to(cold)).read_bytes() == path.read_bytes(), path


def test_task_rows_are_read_back_encoded_and_only_from_a_data_file_of_whole_rows(tmp_path: Path) -> None:
    """The previous build's task rows are kept as the text of their JSON strings, split at '","'; a row whose
    HTML ends in '",' would split there, so a file with a piece that does not end a row is not reused."""
    path = tmp_path / "t.js"
    rows = ['<tr title="a","b">\\"x"</tr>\n', "<tr>\u00e9 \\</tr>\n", '<tr data-x=",">"</tr>\n']
    path.write_text(render.rows_script("t1", rows), encoding="utf-8")
    encoded = render.read_encoded_rows(path, "t1")
    assert encoded == [json.dumps(r)[1:-1] for r in rows]
    assert render.encoded_rows_script("t1", encoded) == path.read_text(encoding="utf-8")
    assert render.decoded_rows(encoded) == rows
    path.write_text(render.rows_script("t1", ['<tr>a",', "b</tr>\n"]), encoding="utf-8")
    assert render.read_encoded_rows(path, "t1") is None
    path.write_text(render.rows_script("t1", []), encoding="utf-8")
    assert render.read_encoded_rows(path, "t1") == []
    path.write_text(render.rows_script("t2", rows), encoding="utf-8")  # another table's file
    assert render.read_encoded_rows(path, "t1") is None
    # Rows that would end their string early, or break the line, are not copied into the next build's file.
    for forged in ('["<tr>\\\\"]);alert(1);//</tr>\\n"]', '["<tr>a</tr>\\n","<tr>\n</tr>\\n"]'):
        path.write_text(f'harnessRows("t1",{forged});\n', encoding="utf-8")
        assert render.read_encoded_rows(path, "t1") is None, forged
    path.write_text('harnessRows("t1",["<tr>\\\\\\"</tr>\\n"]);\n', encoding="utf-8")  # \\ then \"
    assert render.read_encoded_rows(path, "t1") == ['<tr>\\\\\\"</tr>\\n']


def test_a_run_rerun_under_its_key_gets_new_pick_form_p_values(tmp_path: Path) -> None:
    """The pick form's p-values are cached across builds by pair of runs: a run re-run under the same key
    (new predictions, a new finished_at) is a new pair, and the page is what a cold build makes."""
    store = make_digits_store(tmp_path / "harness.db")
    out = tmp_path / "site"
    build_site(store.path, out, workers=1)
    labels, x, y = _digits_tasks()["digits"]
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    pred = LogisticRegression(max_iter=300).fit(x_train, y_train).predict(x_test).astype(np.int64)
    right = np.flatnonzero(pred == y_test)[:4]
    pred[right] = (y_test[right] + 1) % 10  # the same run (tested against knn-5), four more mistakes
    ids = tuple(f"test-{i:04d}" for i in range(len(y_test)))
    rerun = _record("logreg", "digits", "full-train", 0, "done", START + timedelta(days=1), labels=labels,
                    y=y_test, pred=pred, ids=ids)  # fmt: skip
    store.write_run(rerun, replace=True)  # harness run --force
    build_site(store.path, out, workers=1)
    cold = tmp_path / "cold"
    build_site(store.path, cold, workers=1)

    def form(site: Path) -> str:
        found = re.search(r'<script type="application/json" id="pick-data">(.*?)</script>', (site / "tasks" / "digits.html").read_text())
        assert found, "the digits page has a pick form"
        return found.group(1)

    assert '"tests":{"0":[[1,' in form(cold) and form(out) == form(cold)


def test_missing_or_bad_database_is_a_harness_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="No results database"):
        build_site(tmp_path / "nope.db", tmp_path / "site")
    bad = tmp_path / "bad.db"
    bad.write_text("not sqlite at all " * 100)
    with pytest.raises(HarnessError, match="not a harness results database"):
        build_site(bad, tmp_path / "site")
    empty = Store(tmp_path / "empty.db")
    empty.close()
    with pytest.raises(HarnessError, match="no runs yet"):
        build_site(tmp_path / "empty.db", tmp_path / "site")
    (tmp_path / "file").write_text("x")
    with pytest.raises(HarnessError, match="is a file"):
        build_site(tmp_path / "empty.db", tmp_path / "file")


def test_site_tie_groups_are_the_statistics_core_ranks(built: Built) -> None:
    """The site's per-task ranks are harness.metrics.stats.rank_with_ties on the stored predictions (one
    tie-group implementation; Holm-corrected by default) for the task's main metric."""
    store, out, _ = built
    doc = json.loads((out / "results.json").read_text())
    ranks = [dict(zip(doc["ranks"]["columns"], r, strict=True)) for r in doc["ranks"]["rows"]]
    main = MetricRegistry().resolve((), "", 10, where="test").main_metric
    checked = 0
    for task, n_labels in (("digits", 10), (XSS, 2)):
        for protocol in PROTOCOLS:
            site = {r["model"]: r for r in ranks if r["task"] == task and r["protocol"] == protocol and r["tested"]}
            if len(site) < 2:
                continue  # the leader alone was within reach: nothing was tested
            runs = [r for r in store.reader.runs(task=task, protocol=protocol, status="done", seed=0) if r["model"] in site]
            names = [r["model"] for r in runs]
            vectors = [store.reader.example_predictions(r["key"]) for r in runs]
            datas = [MetricData.of(v.labels, v.preds, n_labels) for v in vectors if v is not None]
            expected = rank_with_ties(names, datas, main, n_boot=1000, seed=0)
            assert {e.name: (e.rank, e.tied_with, e.p_value) for e in expected} == {
                n: (r["rank"], r["tied_with"], pytest.approx(r["p_value"], abs=1e-6) if r["p_value"] else None)
                for n, r in site.items()
            }
            checked += any(e.tied_with for e in expected)
    assert checked  # at least one real tie group was compared


def test_site_command_prints_where_to_open_it(built: Built, tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from harness.commands.site_cmd import site

    app = typer.Typer()
    app.command()(site)
    app.command("noop")(lambda: None)  # two commands, so typer keeps `site` as a subcommand name
    store, _, _ = built
    out = tmp_path / "published"
    result = CliRunner().invoke(app, ["site", "--db", str(store.path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "index.html").is_file()
    assert "file://" in result.output and "index.html" in result.output


def test_parallel_build_writes_the_same_site(built: Built, tmp_path: Path) -> None:
    store, out, _ = built
    parallel = tmp_path / "parallel"
    stats = build_site(store.path, parallel, workers=2)
    assert (
        not stats.unchanged
        and len(stats.written) == len(list(out.rglob("*.html"))) + len(list(out.glob("data/*/*.js"))) + 5
    )  # 3 static + 2 downloads
    for path in out.rglob("*"):
        if path.is_file() and path.name != ".harness-site.json":
            assert (parallel / path.relative_to(out)).read_bytes() == path.read_bytes(), path
    again = build_site(store.path, parallel, workers=2)
    assert again.written == ()


# ---- groups of comparable tasks, learning curves -----------------------------------------------------


def _add_text_task(store: Store, when: datetime) -> None:
    """Two text models on a text task (labels from a real digits split: parity), one image task-free."""
    labels = ("neg", "pos")
    x, y = load_digits(return_X_y=True)
    y = (y % 2).astype(np.int64)[:300]
    ids = tuple(f"r-{i:03d}" for i in range(len(y)))
    rng = np.random.default_rng(0)
    task = TaskRecord("reviews", "1", "text", labels, "fp-2", n_train=900, n_validation=0, n_test=len(y),
                      spec={"main_metric": "macro_f1"})  # fmt: skip
    for name, flip in (("text-a", 0.1), ("text-b", 0.3)):
        pred = np.where(rng.random(len(y)) < flip, 1 - y, y)
        info = ModelInfo(name, "tfidf", "text", "", None, 1000)
        record = _record(name, "reviews", "full-train", 0, "done", when, labels=labels, y=y, pred=pred, ids=ids)
        store.write_run(record, model=info, task=task)


def test_index_ranks_each_group_of_comparable_tasks_on_its_own(tmp_path: Path) -> None:
    store = make_digits_store(tmp_path / "harness.db")
    _add_text_task(store, START + timedelta(days=1))
    build_site(store.path, tmp_path / "site")
    index = (tmp_path / "site" / "index.html").read_text()
    titles = re.findall(r"<h2>([^<]*) · ([^<]*)</h2>", index)
    assert titles == [("image tasks", "full-train"), ("image tasks", "probe-20shot"), ("text tasks", "full-train")]
    sections = index.split("<h2>")[1:4]
    text_table = sections[2]
    assert "text-a" in text_table and "text-b" in text_table and "logreg" not in text_table
    # both text models are ranked (no image task counts as missing for them), the better one first
    ranks = re.findall(r'<tr data-name="(text-[ab])"[^>]*><td class="num"[^>]*>(\d+=?)</td>', text_table)
    assert ranks[0] == ("text-a", "1") and ranks[1][0] == "text-b"
    assert "text-a" not in sections[0] and "1/1" in text_table
    # Borda: mean rank over the group's tasks among the ranked models
    image = sections[0]
    assert re.search(r'<tr data-name="logreg".*?<td class="num">(\d\.\d)</td>', image)
    store.record_task_groups("digits-demo", {"everything": ["digits", "reviews"]})
    store.close()
    build_site(tmp_path / "harness.db", tmp_path / "site")
    index = (tmp_path / "site" / "index.html").read_text()
    assert ("everything", "full-train") in re.findall(r"<h2>([^<]*) · ([^<]*)</h2>", index)


def test_learning_curve_plots_the_k_series(tmp_path: Path) -> None:
    store = make_digits_store(tmp_path / "harness.db")
    labels, x, y = _digits_tasks()["digits"]
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    ids = tuple(f"test-{i:04d}" for i in range(len(y_test)))
    when = START + timedelta(days=2)
    series = {"k1": 1, "k4": 4, "k16": 16, "all": None}
    for name, make in (("logreg", lambda: LogisticRegression(max_iter=300)), ("naive-bayes", GaussianNB)):
        for protocol, k in series.items():
            idx = _k_shot(y_train, k) if k else np.arange(len(y_train))
            pred = make().fit(x_train[idx], y_train[idx]).predict(x_test).astype(np.int64)
            cfg = {"name": protocol, "protocol": "linear_probe", "config": {"k_shot": k, "repeats": 1, "c_grid": [1.0]}}
            when += timedelta(minutes=1)
            store.write_run(_record(name, "digits", protocol, 0, "done", when, labels=labels, y=y_test, pred=pred, ids=ids,
                                    protocol_config=cfg))  # fmt: skip
    store.close()
    build_site(tmp_path / "harness.db", tmp_path / "site")
    page = (tmp_path / "site" / "tasks" / "digits.html").read_text()
    assert page.count('<svg viewBox="0 0 640 360" class="curve-plot"') == 1
    assert 'data-curves="2"' in page
    # one line per model; points at 10, 40, 160 and all 1347 training examples, left to right
    for model in ("logreg", "naive-bayes"):
        group = re.search(rf'<g class="curve-line" data-model="{model}">(.*?)</g>', page, re.S)
        assert group
        xs = [float(v) for v in re.findall(r'<circle cx="([\d.]+)"', group.group(1))]
        assert len(xs) == 4 and xs == sorted(xs)
        shown = re.findall(r"\((\d+) labelled examples\)", group.group(1))
        assert shown == ["10", "40", "160", "1347"]
    assert "k1: 10; k4: 40; k16: 160; all: 1347" in page
    # the index folds the curve's smaller points into one line; their protocol pages keep the tables
    index = (tmp_path / "site" / "index.html").read_text()
    boards = re.findall(r"<h2>[^<]*· ([^<]*)</h2>", index)
    assert "all" in boards and not {"k1", "k4", "k16"} & set(boards), boards
    folded = re.search(r'<p class="note folded">(.*?)</p>', index, re.S)
    assert folded and re.findall(r'href="protocols/[^"]+">([^<]+)</a>', folded.group(1)) == ["k1", "k4", "k16"]
    assert 'href="tasks/digits.html">digits</a>' in folded.group(1)
    assert "<h2>" in (tmp_path / "site" / "protocols" / "k4.html").read_text()
    other = (tmp_path / "site" / "tasks" / f"{slugify_all(['digits', XSS])[XSS]}.html").read_text()
    assert "curve-plot" not in other  # no k-series there


def test_a_crowded_plot_keeps_its_whole_frontier_and_the_best_points() -> None:
    from harness.sitegen.rows import plotted_points

    rng = np.random.default_rng(0)
    points = [(f"m{i}", f"m{i}.html", float(10 ** rng.uniform(-1, 3)), float(rng.uniform(0.3, 0.95))) for i in range(900)]
    kept = plotted_points(points, limit=100)
    front = {points[i][0] for i in pareto_frontier([(p[2], p[3]) for p in points])}
    assert len(kept) == 100 and front <= {p[0] for p in kept}
    # the frontier of what is drawn is the frontier of everything
    assert {kept[i][0] for i in pareto_frontier([(p[2], p[3]) for p in kept])} == front
    best_dropped = max(p[3] for p in points if p not in kept)
    assert all(p[3] >= best_dropped for p in kept if p[0] not in front)
    assert plotted_points(points[:50], limit=100) == points[:50]


@pytest.mark.parametrize(
    ("module", "name", "where"),
    [
        ("pickform", "iter_forms", "the pick forms, made while the other pages render in forked workers"),
        ("render", "_task_page", "a task page, rendered in a forked worker as soon as its pick form is made"),
        ("downloads", "run_rows", "the downloads, made in a process forked after the snapshot is read"),
        ("downloads", "results_csv", "results.csv, made in that process after the JSON the pages wait for"),
    ],
)
def test_a_failure_in_any_phase_fails_the_build_and_stops_every_process(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, name: str, where: str
) -> None:
    """An error in any phase (`where`) fails the build with that error: no process left behind, no state
    file claiming a finished build."""
    import importlib
    import multiprocessing

    from harness.sitegen import forking

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"{where} failed")

    monkeypatch.setattr(forking, "FORK_FROM_RUNS", 1)  # the test store is small
    monkeypatch.setattr(importlib.import_module(f"harness.sitegen.{module}"), name, broken)  # before the forks
    store, _, _ = built
    out = tmp_path / "failed"
    with pytest.raises(RuntimeError, match=f"{where} failed"):
        build_site(store.path, out, workers=2)
    assert multiprocessing.active_children() == []
    assert not (out / ".harness-site.json").exists()


def test_downloads_made_in_a_forked_process_are_the_same(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a large store results.csv and the runs of results.json are made in a process forked after the
    snapshot is read, while the board is built and ranked: the same bytes as made in this process."""
    import multiprocessing
    import os

    from harness.sitegen import downloads, forking

    make = downloads.results_csv

    def traced(*args: Any) -> Any:
        (tmp_path / "pid").write_text(str(os.getpid()))
        return make(*args)

    monkeypatch.setattr(forking, "FORK_FROM_RUNS", 1)
    monkeypatch.setattr(downloads, "results_csv", traced)
    store, out, _ = built
    forked = tmp_path / "forked"
    build_site(store.path, forked, workers=2)
    assert int((tmp_path / "pid").read_text()) != os.getpid()
    assert multiprocessing.active_children() == []
    for name in ("results.csv", "results.json"):
        assert (forked / name).read_bytes() == (out / name).read_bytes()


def test_progress_names_each_phase_of_a_build_that_loads_the_store(built: Built, tmp_path: Path) -> None:
    store, _, _ = built
    steps: list[str] = []
    build_site(store.path, tmp_path / "site", progress=steps.append)
    assert [s.split()[0] for s in steps] == ["Reading", "Ranking", "Rendering"]
    assert store.path.name in steps[0] and re.search(r"Ranking \d+ runs: \d+ models on \d+ task tables", steps[1])
    again: list[str] = []
    build_site(store.path, tmp_path / "site", progress=again.append)
    assert again == []  # unchanged: nothing loaded


_CTRL_C_SCRIPT = """
import sys, time
from harness.sitegen.forking import forked_pool

def work():
    print("working", flush=True)
    time.sleep(60)  # a Ctrl-C arrives here

pool = forked_pool(1, None)
result = pool.apply_async(work)
try:
    result.get()
except KeyboardInterrupt:
    pool.terminate()
    pool.join()
    print("interrupted", flush=True)
    sys.exit(130)
"""


def test_ctrl_c_stops_the_forked_workers_cleanly() -> None:
    """A terminal's Ctrl-C reaches the whole process group: the workers leave it to the parent (they printed
    tracebacks, and one interrupted mid-send hung the build's Pool.terminate), whose terminate stops them."""
    import os
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", _CTRL_C_SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "working\n"
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert (proc.returncode, out) == (130, "interrupted\n"), err
    assert "Traceback" not in err and "ForkPoolWorker" not in err, err  # a worker interrupted printed these


def test_a_site_file_the_disk_cannot_hold_says_to_make_room(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC is no folder in the way: the advice is to make room (or build elsewhere), and no temporary
    file is left in the site folder."""
    import errno

    from harness.sitegen.writer import sync_file

    def fills_up(self: Path, data: bytes) -> int:
        self.write_text("half")  # what reached the disk before it filled
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", fills_up)
    with pytest.raises(HarnessError) as caught:
        sync_file(tmp_path, "tasks/t.html", "<html></html>", None)
    message = str(caught.value)
    assert "Cannot write tasks/t.html in the site folder" in message and "No space left on device" in message
    assert "Make room" in message and "move what is there" not in message
    assert [p.name for p in (tmp_path / "tasks").iterdir()] == []
