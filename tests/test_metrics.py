"""The metric registry: every built-in metric against sklearn, vectorised forms against point functions,
score-kind applicability, and task declarations resolved with clear errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    log_loss,
    matthews_corrcoef,
    roc_auc_score,
)

from harness.errors import ConfigError
from harness.metrics import BootstrapConfig, MetricData, MetricRegistry, evaluate
from harness.metrics.builtin import BUILTIN_METRICS
from harness.metrics.core import ClassCounts
from harness.metrics.resample import class_counts, confusions, resample_indices, resampled_values
from harness.registry import TaskRegistry
from harness.tasks import MetricRef

REGISTRY = MetricRegistry()
LABEL_METRICS = [m.name for m in BUILTIN_METRICS if m.shape == "scalar" and m.needs == "labels"]
SCORE_METRICS = [m.name for m in BUILTIN_METRICS if m.needs == "scores"]


def _run(n: int = 400, n_labels: int = 5, acc: float = 0.7, seed: int = 0, absent: bool = True) -> MetricData:
    """Noisy predictions with softmax class scores; label n_labels-1 never occurs when `absent`."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_labels - 1 if absent else n_labels, n)
    logits = rng.normal(size=(n, n_labels))
    logits[np.arange(n), y] += np.where(rng.random(n) < acc, 3.0, 0.0)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return MetricData.of(y, p.argmax(axis=1), n_labels, p.astype(np.float32), "probability")


def _tm(name: str, n_labels: int = 5, **params: object):
    return REGISTRY.resolve([MetricRef(name, params)], name, n_labels, where="test").get(name)


def test_macro_f1_is_macro_over_all_declared_labels_not_binary() -> None:
    d = MetricData.of([0, 0, 1, 1], [0, 1, 1, 1], 3)
    # Label 2 is declared but absent: it counts as F1 = 0 in the macro mean (sklearn with labels=...).
    assert _tm("macro_f1", 3).point(d) == pytest.approx((2 / 3 + 0.8 + 0) / 3)


SKLEARN = {
    "accuracy": lambda y, p, k: accuracy_score(y, p),
    "balanced_accuracy": lambda y, p, k: balanced_accuracy_score(y, p),
    "macro_f1": lambda y, p, k: f1_score(y, p, labels=range(k), average="macro", zero_division=0),
    "weighted_f1": lambda y, p, k: f1_score(y, p, labels=range(k), average="weighted", zero_division=0),
    "micro_f1": lambda y, p, k: f1_score(y, p, labels=range(k), average="micro", zero_division=0),
    "mcc": lambda y, p, k: matthews_corrcoef(y, p),
    "cohen_kappa": lambda y, p, k: cohen_kappa_score(y, p),
}


@pytest.mark.parametrize("n_labels", [2, 5])
@pytest.mark.parametrize("name", LABEL_METRICS)
def test_label_metrics_match_sklearn_and_their_confusion_form(name: str, n_labels: int) -> None:
    d = _run(n_labels=n_labels, absent=n_labels > 2)
    tm = _tm(name, n_labels)
    if name in SKLEARN:
        assert tm.point(d) == pytest.approx(SKLEARN[name](d.y, d.pred, n_labels))
    cm = confusion_matrix(d.y, d.pred, labels=range(n_labels))[None]
    assert tm.metric.from_confusions is not None
    assert tm.metric.from_confusions(cm)[0] == pytest.approx(tm.point(d), abs=1e-12)
    # resampled confusion matrices: the vectorised form equals the point function on every resample
    idx = next(resample_indices(len(d), 20, seed=3))
    vec = tm.metric.from_confusions(confusions(d, idx))
    assert vec == pytest.approx([tm.point(d.take(row)) for row in idx], abs=1e-12)


def test_mcc_of_a_test_set_of_one_class_is_undefined_not_zero() -> None:
    """A perfect model on a one-class test set had MCC 0.000 [0.000, 0.000] (sklearn's value for 0/0), ranked
    as chance; it is n/a with the reason, as Cohen's kappa. A constant prediction of varied truth stays 0."""
    metrics = REGISTRY.resolve(["accuracy", "mcc", "cohen_kappa"], "accuracy", 3, where="t")
    one_class = MetricData.of([0] * 6, [0] * 6, 3)
    with warnings.catch_warnings():  # sklearn's 3-line UndefinedMetricWarnings reached the run's console
        warnings.simplefilter("error")
        ev = evaluate(metrics, one_class, list("abc"), BootstrapConfig(n_boot=100))
    assert {v.name for v in ev.values} == {"accuracy"}
    assert "undefined" in ev.not_applicable["mcc"] and "undefined" in ev.not_applicable["cohen_kappa"]
    mcc = metrics.get("mcc")
    assert mcc.point(MetricData.of([0, 0, 1, 1], [0, 0, 0, 0], 3)) == 0.0
    # resamples holding one true class are left out of the interval, as for the point value
    d = MetricData.of([0, 1, 1, 1], [0, 1, 1, 0], 3)
    cms = confusions(d, np.array([[1, 2, 3, 3], [0, 1, 2, 3]]))
    assert mcc.metric.from_confusions is not None
    vec = mcc.metric.from_confusions(cms)
    assert np.isnan(vec[0]) and vec[1] == pytest.approx(mcc.point(d))


def test_class_counts_are_the_confusion_matrices_counts_exactly() -> None:
    """Per-class counts from one-hot products (up to 16 labels, batched per label count) or from confusion
    matrices (more labels) are the same numbers; so are the resampled values of every label metric."""
    rng = np.random.default_rng(7)
    n = 120
    y = rng.integers(0, 2, n)
    datas = [
        MetricData.of(y, np.where(rng.random(n) < 0.6, y, rng.integers(0, k, n)), k) for k in (2, 5, 20, 5, 17, 2, 16)
    ]
    idx = next(resample_indices(n, 300, seed=1))
    for batch, counts in class_counts(datas, idx):
        for i, j in enumerate(batch):
            expected = ClassCounts.of_confusions(confusions(datas[j], idx))
            for got, want in zip((c[i :: len(batch)] for c in counts), expected, strict=True):
                assert np.array_equal(got, want)
    for name in LABEL_METRICS:
        tm = _tm(name, 2)
        vec = resampled_values([tm], datas, 300, seed=1)[tm.id]
        assert tm.metric.from_confusions is not None
        for j, d in enumerate(datas):
            assert np.array_equal(vec[j], tm.metric.from_confusions(confusions(d, idx)), equal_nan=True)


def test_a_models_resampled_values_do_not_depend_on_the_models_resampled_with_it() -> None:
    """What lets the site compute a run's bootstrap vector once and reuse it in every comparison."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 90)
    datas = [MetricData.of(y, np.where(rng.random(90) < 0.7, y, rng.integers(0, 4, 90)), 4) for _ in range(6)]
    for name in LABEL_METRICS:
        tm = _tm(name, 4)
        together = resampled_values([tm], datas, 500, seed=2)[tm.id]
        for j in (0, 3, 5):
            alone = resampled_values([tm], [datas[j]], 500, seed=2)[tm.id]
            assert np.array_equal(alone[0], together[j], equal_nan=True)


@pytest.mark.parametrize("n_labels", [2, 5])
@pytest.mark.parametrize("name", SCORE_METRICS)
def test_score_metrics_vectorised_resampled_form_equals_point_function(name: str, n_labels: int) -> None:
    if name == "top_k_accuracy" and n_labels == 2:
        pytest.skip("top-k needs at least 3 labels (checked at load)")
    d = _run(n_labels=n_labels, absent=n_labels > 2)
    tm = _tm(name, n_labels)
    assert tm.metric.resampled is not None
    idx = np.vstack([np.arange(len(d)), *next(resample_indices(len(d), 25, seed=5))])
    vec = tm.metric.resampled(d, idx, **tm.params)
    assert vec == pytest.approx([tm.point(d.take(row)) for row in idx], abs=1e-9)


def test_score_metrics_equal_sklearn_on_probabilities() -> None:
    d = _run(n_labels=4, absent=False)
    p = d.scores
    assert p is not None
    assert _tm("roc_auc", 4).point(d) == pytest.approx(roc_auc_score(d.y, p / p.sum(1, keepdims=True), multi_class="ovr"))
    assert _tm("log_loss", 4).point(d) == pytest.approx(log_loss(d.y, p / p.sum(1, keepdims=True)))
    onehot = np.eye(4)[d.y]
    ap = np.mean([average_precision_score(onehot[:, c], p[:, c]) for c in range(4)])
    assert _tm("average_precision", 4).point(d) == pytest.approx(ap)
    binary = _run(n_labels=2, absent=False)
    assert binary.scores is not None
    assert _tm("roc_auc", 2).point(binary) == pytest.approx(roc_auc_score(binary.y, binary.scores[:, 1]))
    top2 = np.argsort(-p, axis=1)[:, :2]
    assert _tm("top_k_accuracy", 4, k=2).point(d) == pytest.approx(np.mean((top2 == d.y[:, None]).any(1)))


def test_ece_is_the_bin_weighted_calibration_gap() -> None:
    # 4 examples, 2 bins: confidences 0.9, 0.8 (bin 2: one right, one wrong), 0.6, 0.55 (bin 2 too), 0.3 impossible
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.45, 0.55]])
    d = MetricData.of([0, 0, 0, 1], p.argmax(1), 2, p, "probability")
    conf, correct = p.max(1), (p.argmax(1) == d.y)
    expected = abs((conf - correct).sum()) / 4  # every confidence is in (0.5, 1]: one bin of two
    assert _tm("ece", 2, n_bins=2).point(d) == pytest.approx(expected)


def test_score_metrics_of_the_wrong_kind_are_not_applicable_with_the_reason() -> None:
    d = _run()
    cos = MetricData.of(d.y, d.pred, 5, d.scores, "similarity")
    reason = _tm("log_loss").metric.not_applicable(cos)
    assert reason is not None and "probabilities" in reason and "cosine similarities" in reason
    assert _tm("roc_auc").metric.not_applicable(cos) is None  # rank-based: any kind
    bare = MetricData.of(d.y, d.pred, 5)
    missing = _tm("ece").metric.not_applicable(bare)
    assert missing is not None and "re-run" in missing
    metrics = REGISTRY.resolve(["accuracy", "log_loss", "roc_auc"], "accuracy", 5, where="t")
    ev = evaluate(metrics, cos, list("abcde"), BootstrapConfig(n_boot=50))
    assert set(ev.not_applicable) == {"log_loss"}
    assert {v.name for v in ev.values} == {"accuracy", "roc_auc"}


def test_evaluate_cis_bracket_points_are_seeded_and_shared_resamples_match_single_metric_runs() -> None:
    d = _run(n=600)
    metrics = REGISTRY.resolve(
        ["accuracy", "macro_f1", "mcc", "roc_auc", "ece", "log_loss", "f1"], "mcc", 5, where="t"
    )
    first = evaluate(metrics, d, list("abcde"), BootstrapConfig(n_boot=300, seed=0))
    again = evaluate(metrics, d, list("abcde"), BootstrapConfig(n_boot=300, seed=0))
    other = evaluate(metrics, d, list("abcde"), BootstrapConfig(n_boot=300, seed=1))
    assert first.values == again.values and first.values != other.values
    by = {v.name: v for v in first.values}
    for name in ("accuracy", "macro_f1", "mcc", "roc_auc", "ece", "log_loss"):
        assert by[name].ci_low is not None and by[name].ci_high is not None
        assert by[name].ci_low <= by[name].value <= by[name].ci_high, name
    assert [by[f"f1/{c}"].value for c in "abcde"] == pytest.approx(
        list(f1_score(d.y, d.pred, labels=range(5), average=None, zero_division=0))
    )
    assert np.array(first.confusion).sum() == len(d)
    # one kernel: the CI of a metric alone equals its CI computed alongside the others
    alone = resampled_values([metrics.get("mcc")], [d], 300, 0)["mcc"][0]
    assert by["mcc"].ci_low == pytest.approx(np.quantile(alone, 0.025))


def test_ci_width_shrinks_with_more_examples() -> None:
    metrics = REGISTRY.resolve(["macro_f1"], "", 5, where="t")
    small = evaluate(metrics, _run(n=100), list("abcde"), BootstrapConfig(n_boot=300)).values[0]
    large = evaluate(metrics, _run(n=3000), list("abcde"), BootstrapConfig(n_boot=300)).values[0]
    assert small.ci_low is not None and small.ci_high is not None
    assert large.ci_low is not None and large.ci_high is not None
    assert large.ci_high - large.ci_low < (small.ci_high - small.ci_low) / 2


@pytest.mark.parametrize(
    ("metrics", "main", "match"),
    [
        (["accuracy", "mcx"], "", r"key 'metrics\[1\]': unknown metric \"mcx\". Did you mean \"mcc\""),
        (["accuracy", "mcc"], "macro_f1", r"key 'main_metric': \"macro_f1\" is not among the task's metrics.*Add it"),
        (["accuracy", "f1"], "f1", "not a single-number metric"),
        ([MetricRef("top_k_accuracy", {"kk": 3})], "", r'has no parameter "kk". Did you mean "k"'),
        ([MetricRef("top_k_accuracy", {"k": 9})], "", "k must be an integer from 1 to 4"),
        (["accuracy", "accuracy"], "", "lists accuracy twice"),
        # an id naming another metric would be read as that metric by the store, site and pick
        (
            ["accuracy", MetricRef("top_k_accuracy", {"k": 2}, "macro_f1")],
            "",
            r"key 'metrics\[1\]'.id: \"macro_f1\" is the name of another metric.*e.g. top_k_accuracy_k2",
        ),
        # ... the always-computed confusion matrix included (it was stored twice under one id)
        (["macro_f1", MetricRef("accuracy", {}, "confusion_matrix")], "", r"'metrics\[1\]'.id: \"confusion_matrix\""),
        (["accuracy", "f1", MetricRef("macro_f1", {}, "f1")], "", r"'metrics\[2\]'.id: \"f1\" is the name of another"),
    ],
)
def test_bad_declarations_are_config_errors_naming_the_key(metrics, main, match) -> None:
    with pytest.raises(ConfigError, match=match):
        REGISTRY.resolve(metrics, main, 5, where="tasks/x.yaml")


def test_defaults_and_main_metric_fallback() -> None:
    default = REGISTRY.resolve((), "", 3, where="t")
    assert default.main == "macro_f1"
    assert [m.id for m in default.metrics][:2] == ["accuracy", "macro_f1"]
    assert REGISTRY.resolve(["mcc", "accuracy"], "", 3, where="t").main == "mcc"  # first declared
    twice = REGISTRY.resolve(
        [MetricRef("top_k_accuracy", {"k": 2}, "top2"), MetricRef("top_k_accuracy", {"k": 3}, "top3")], "top3", 5, where="t"
    )
    assert [m.label for m in twice.scalar()] == ["Top-2 accuracy", "Top-3 accuracy"]
    # an id that is the metric's own name is its default id, not a clash
    own = REGISTRY.resolve([MetricRef("accuracy", {}, "accuracy"), MetricRef("top_k_accuracy", {"k": 2}, "top_k_accuracy")], "", 5, where="t")
    assert [m.id for m in own.metrics] == ["accuracy", "top_k_accuracy", "confusion_matrix"]


def test_yaml_task_with_an_unknown_metric_fails_at_load_with_file_key_and_close_match(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("text,label\na,x\nb,y\n")
    task = tmp_path / "t.yaml"
    task.write_text(
        "name: t\nversion: '1'\nmodality: text\nlabels: [x, y]\nsource: {type: csv, path: data.csv}\n"
        "metrics: [accuracy, roc_auc, eec]\nmain_metric: roc_auc\n"
    )
    with pytest.raises(ConfigError, match=rf"{task}: key 'metrics\[2\]': unknown metric \"eec\". Did you mean \"ece\""):
        TaskRegistry.discover([task])
    task.write_text(task.read_text().replace("eec", "ece"))
    resolved = TaskRegistry.discover([task]).task_metrics("t")
    assert resolved.main == "roc_auc" and [m.id for m in resolved.metrics] == ["accuracy", "roc_auc", "ece", "confusion_matrix"]


def test_roc_auc_log_loss_and_ece_recomputed_from_stored_class_scores(tmp_path: Path) -> None:
    """Real sklearn models on real digits, written through Store.write_run: the stored ROC-AUC, log-loss
    and ECE equal sklearn / numpy computed directly from the stored float32 class scores."""
    from result_fixtures import make_record, task_metrics, write_store, zoo_model
    from sklearn.metrics import log_loss as sk_log_loss

    from harness.store import Store

    declared = task_metrics(("accuracy", "roc_auc", "log_loss", "ece"), "roc_auc")
    names = ("logreg", "knn-3", "gaussian-nb")
    write_store(tmp_path / "r.db", [make_record(zoo_model(n), metrics=declared) for n in names], declared)
    store = Store(tmp_path / "r.db")
    for run in store.reader.runs():
        example = store.reader.example_predictions(run["key"])
        assert example is not None
        y = example.labels
        stored = store.reader.class_scores(run["key"])
        assert stored is not None and stored.kind == "probability" and stored.values.shape == (len(y), 10)
        raw = stored.values.astype(np.float64)
        p = raw / raw.sum(axis=1, keepdims=True)  # float32 rows sum to 1 within ~1e-7
        m = store.reader.metrics(run["key"])
        # ROC-AUC ranks the stored scores as they are (macro one-vs-rest; multi_class="ovr" is the same
        # arithmetic but insists on rows summing to 1 exactly)
        assert m["roc_auc"].value == pytest.approx(roc_auc_score(np.eye(10)[y], raw, average="macro"), abs=1e-12)
        assert m["roc_auc"].value == pytest.approx(roc_auc_score(y, p, multi_class="ovr"), abs=1e-3)
        assert m["log_loss"].value == pytest.approx(sk_log_loss(y, p, labels=range(10)), abs=1e-12)
        conf, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(float)
        edges = np.linspace(0, 1, 16)
        ece = sum(
            abs((conf - correct)[(conf > lo) & (conf <= hi)].sum()) for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        ) / len(y)
        assert m["ece"].value == pytest.approx(ece, abs=1e-12)


def test_ece_bins_are_bounded_before_any_job_runs() -> None:
    """10**12 bins parsed, then the job asked numpy for 7 TiB; now the task's metrics are refused at resolve."""
    with pytest.raises(Exception, match=r"params.n_bins must be at most 1,000 .*got 1,000,000,000,000"):
        _tm("ece", 2, n_bins=10**12)
    assert _tm("ece", 2, n_bins=1000).id


def test_a_metric_that_is_not_a_finite_number_is_a_note_or_names_itself() -> None:
    """inf was stored and broke the site's JSON (a traceback in harness site); None failed its job with
    'float() argument must be ...', naming no metric."""
    from harness.metrics.core import MetricCodeError, MetricDef

    def registry(point):  # noqa: ANN001 - the plugin's function
        reg = MetricRegistry()
        reg.add(MetricDef(name="odd", label="Odd", point=point), "plugin file m.py")
        return reg.resolve([MetricRef("accuracy", {}), MetricRef("odd", {})], "accuracy", 2, where="t")

    data = MetricData.of([0, 1, 1, 0], [0, 1, 0, 0], 2)
    ev = evaluate(registry(lambda d, **p: float("inf")), data, ["a", "b"], BootstrapConfig(n_boot=100))
    assert [m.name for m in ev.values] == ["accuracy"]
    assert "odd came out inf" in ev.not_applicable["odd"] and "not stored" in ev.not_applicable["odd"]
    with pytest.raises(MetricCodeError, match=r'metric "odd" returned NoneType None, not a number'):
        evaluate(registry(lambda d, **p: None), data, ["a", "b"], BootstrapConfig(n_boot=100))
    with pytest.raises(ConfigError, match=r"params.w: metric \"odd\" needs a finite number, got inf"):
        reg = MetricRegistry()
        reg.add(MetricDef(name="odd", label="Odd", point=lambda d, **p: 0.5, params={"w": 1.0}), "m.py")
        reg.resolve([MetricRef("odd", {"w": float("inf")})], "odd", 2, where="t")


@pytest.mark.parametrize("n_labels", [2, 3, 6])
@pytest.mark.parametrize("quality", ["perfect", "noisy", "always-wrong"])
def test_every_value_and_ci_end_a_run_stores_lies_in_its_metrics_declared_bounds(n_labels: int, quality: str) -> None:
    """Readers of the store refuse a value outside MetricDef.bounds: bounds that a real run can pass would
    refuse valid stores. Perfect and always-wrong predictions reach the ends of every range."""
    from harness.store.reader import _numbers

    rng = np.random.default_rng(n_labels)
    y = rng.integers(0, n_labels, 300)
    p = {"perfect": y, "noisy": np.where(rng.random(300) < 0.6, y, rng.integers(0, n_labels, 300)),
         "always-wrong": (y + 1) % n_labels}[quality]  # fmt: skip
    scores = np.full((300, n_labels), 0.02 / n_labels)
    scores[np.arange(300), p] = 1 - 0.02 / n_labels * (n_labels - 1)
    names = [m.name for m in BUILTIN_METRICS if m.shape != "matrix" and (m.name != "top_k_accuracy" or n_labels > 2)]
    metrics = REGISTRY.resolve(names, "accuracy", n_labels, where="t")
    data = MetricData.of(y, p, n_labels, scores.astype(np.float32), "probability")
    values = evaluate(metrics, data, [str(i) for i in range(n_labels)], BootstrapConfig(n_boot=200, seed=0)).values
    assert {v.name.split("/")[0] for v in values} >= {"accuracy", "macro_f1", "mcc", "brier", "ece", "f1"}
    for v in values:
        bounds = metrics.get(v.name.split("/")[0]).metric.bounds
        assert bounds is not None, v.name  # every built-in single-number metric declares its range
        assert _numbers("run", v.name, v.value, v.ci_low, v.ci_high, bounds)


def test_metric_bounds_are_stored_with_the_task_and_known_for_descriptions_from_before() -> None:
    from harness.metrics.core import MetricDef, described_bounds

    metrics = REGISTRY.resolve(["accuracy", "mcc", "log_loss"], "mcc", 3, where="t")
    stored = {d["id"]: d for d in metrics.describe()["metrics"]}
    assert stored["accuracy"]["bounds"] == [0.0, 1.0] and stored["log_loss"]["bounds"] == [0.0, None]
    assert described_bounds(stored["mcc"]) == (-1.0, 1.0) and described_bounds(stored["log_loss"]) == (0.0, np.inf)
    older = {k: v for k, v in stored["mcc"].items() if k != "bounds"}  # a store written before bounds were kept
    assert described_bounds(older) == (-1.0, 1.0)
    assert described_bounds({"id": "x", "name": "a-plugin-metric"}) is None
    with pytest.raises(ValueError, match="bounds must be"):
        MetricDef(name="m", label="M", point=lambda d: 0.0, bounds=(1.0, 0.0))



def _plugin_metrics(point, **fields):  # noqa: ANN001, ANN003, ANN202 - the plugin's function and MetricDef fields
    from harness.metrics.core import MetricDef

    reg = MetricRegistry()
    reg.add(MetricDef(name="odd", label="Odd", point=point, **fields), "plugin file m.py")
    return reg.resolve([MetricRef("odd", {}), MetricRef("accuracy", {}), MetricRef("macro_f1", {})], "accuracy", 2, where="t")


_RNG = np.random.default_rng(0)
HOSTILE_POINTS = {
    "a string": (lambda d: "0.25", {}, "returned str '0.25', not a number"),  # was stored as 0.25
    "a bool": (lambda d: True, {}, "returned bool True, not a number"),  # was stored as 1.0
    "a numpy bool": (lambda d: np.bool_(False), {}, "returned bool np.False_, not a number"),
    "an int too big for a float": (lambda d: 10**400, {}, "too large for a float"),  # a bare OverflowError
    "raises": (lambda d: 1 / 0, {}, 'metric "odd" raised ZeroDivisionError: division by zero at '),
    "a value outside its bounds": (  # stored; then every reader of the store refused the store (exit 2)
        lambda d: 7.5, {"bounds": (0.0, 1.0)}, 'metric "odd" gave 7.5 (value) on this test set, outside the range'
    ),
    "a CI end outside its bounds": (
        lambda d: 2 * float((d.y == d.pred).mean()) - 0.5,  # 1.0 on the test set, up to 1.5 on a resample
        {"bounds": (0.0, 1.0)},
        "(CI high end) on this test set",
    ),
    "random": (lambda d: _RNG.random(), {}, 'metric "odd" is not reproducible: point() gave'),  # CI of another metric
    "a vectorised form that disagrees": (
        lambda d: float((d.y == d.pred).mean()),
        {"from_confusions": lambda cms: np.zeros(len(cms))},
        "and its vectorised form from_confusions() gave 0.0",
    ),
    "a vectorised form returning one number": (  # spread over every resample: a CI of width 0, exit 0
        lambda d: float((d.y == d.pred).mean()),
        {"from_confusions": lambda cms: float(np.trace(cms.sum(0)) / cms.sum())},
        "its from_confusions() returned float of shape (); expected one number per resample, shape (1,)",
    ),
    # Each failed its job with a bare "ZeroDivisionError: division by zero" and harness's traceback, naming no metric.
    "from_confusions raises": (
        lambda d: 0.5, {"from_confusions": lambda cms: 1 / 0}, 'metric "odd" (its from_confusions()) raised ZeroDivisionError'
    ),
    "from_counts raises": (lambda d: 0.5, {"from_counts": lambda c: c.nope}, "(its from_counts()) raised AttributeError"),
    "resampled raises": (lambda d: 0.5, {"resampled": lambda d, idx: {}[1]}, "(its resampled()) raised KeyError: 1 at "),
    # Failed its job with a bare "zip() argument 2 is longer than argument 1", naming no metric.
    "a per-class metric with a value too many": (
        lambda d: [0.5, 0.5, 0.5], {"shape": "per_class"}, "returned list [0.5, 0.5, 0.5]; expected one number per label, 2 in all"
    ),
    "a per-class metric returning text": (lambda d: "ab", {"shape": "per_class"}, "returned str 'ab'; expected one number"),
    "mutates its input": (  # the next metric saw the changed predictions, and the run stored changed labels
        lambda d: d.y.fill(0), {}, "(a metric must not change its input: MetricData's arrays are read-only)"
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE_POINTS))
def test_a_plugin_metric_that_misbehaves_fails_its_job_naming_itself(case: str) -> None:
    from harness.metrics.core import MetricCodeError

    point, fields, needle = HOSTILE_POINTS[case]
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    pred = np.array([0, 1, 0, 0, 1, 1, 0, 1])
    with pytest.raises(MetricCodeError, match="odd") as caught:
        evaluate(_plugin_metrics(point, **fields), MetricData.of(y, pred, 2), ["a", "b"], BootstrapConfig(n_boot=100))
    assert needle in str(caught.value)
    assert y.tolist() == [0, 1, 1, 0, 1, 0, 0, 1] and y.flags.writeable  # the caller's arrays: untouched, its own


def test_a_well_behaved_plugin_metric_passes_the_checks() -> None:
    y, pred = np.array([0, 1, 1, 0, 1, 0, 0, 1]), np.array([0, 1, 0, 0, 1, 1, 0, 1])
    metrics = _plugin_metrics(lambda d: float((d.y == d.pred).mean()), bounds=(0.0, 1.0))
    values = {v.name: v for v in evaluate(metrics, MetricData.of(y, pred, 2), ["a", "b"], BootstrapConfig(n_boot=100)).values}
    assert values["odd"].value == values["accuracy"].value == 0.75


def test_a_plugin_metrics_check_params_that_raises_or_returns_a_non_text_is_a_config_error() -> None:
    """check_params raising ended `harness run` with a ZeroDivisionError traceback; returning True printed
    'metric "odd": True.'."""
    from harness.metrics.core import MetricDef

    for check, needle in (
        (lambda p, n: 1 / 0, 'metric "odd" (m.py): its check_params raised ZeroDivisionError: division by zero.'),
        (lambda p, n: True, 'its check_params returned bool True; expected None (the parameters are valid) or an error text.'),
    ):
        reg = MetricRegistry()
        reg.add(MetricDef(name="odd", label="Odd", point=lambda d, w: 0.5, params={"w": 1}, check_params=check), "m.py")
        with pytest.raises(ConfigError) as caught:
            reg.resolve([MetricRef("odd", {})], "odd", 2, where="t.yaml")
        assert str(caught.value).startswith("t.yaml: key 'metrics[0]': ") and needle in str(caught.value)


@pytest.mark.parametrize(("field", "value"), [("needs", "score"), ("shape", "vector")])
def test_a_metric_def_with_an_unknown_needs_or_shape_is_refused(field: str, value: str) -> None:
    """needs="score" (a typo) was read as "labels": the metric ran without the class scores it needed."""
    from harness.metrics.core import MetricDef

    with pytest.raises(ValueError, match=f"metric 'odd': {field} must be one of .*got '{value}'"):
        MetricDef(name="odd", label="Odd", point=lambda d: 0.5, **{field: value})


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        # Read as True: a lower-is-better metric was ranked, gated and tie-grouped the wrong way round.
        ({"higher_is_better": "lower"}, "higher_is_better must be True or False, got 'lower'"),
        ({"mcnemar": 1}, "mcnemar must be True or False, got 1"),
        # Misspelt: the metric was "not applicable" on every run, with no word about the typo.
        ({"needs": "scores", "score_kinds": ("probabilty",)}, 'got (\'probabilty\',). Did you mean "probability"?'),
        ({"needs": "scores", "score_kinds": "probability"}, "score_kinds must be a tuple of 'probability'"),
        ({"point": 0.5}, "point must be a function, got 0.5"),
        ({"from_counts": "fast"}, "from_counts must be a function, got 'fast'"),
        ({"params": ["cost"]}, "params must be a mapping of parameter -> default, got ['cost']"),
    ],
)
def test_a_malformed_metric_definition_is_refused_where_it_is_written(fields: dict, needle: str) -> None:
    from harness.metrics.core import MetricDef

    with pytest.raises(ValueError) as caught:
        MetricDef(**{"name": "odd", "label": "Odd", "point": lambda d: 0.0, **fields})
    assert str(caught.value).startswith("metric 'odd': ") and needle in str(caught.value)


def test_a_plugin_per_class_value_that_is_not_finite_is_a_note_and_a_matrix_metric_is_refused() -> None:
    """NaN was stored as a value of the run; a plugin "matrix" metric replaced the run's stored confusion matrix."""
    from harness.metrics.core import MetricDef

    metrics = _plugin_metrics(lambda d: [0.5, float("nan")], shape="per_class")
    ev = evaluate(metrics, MetricData.of([0, 1, 1, 0], [0, 1, 0, 0], 2), ["a", "b"], BootstrapConfig(n_boot=100))
    assert "odd/a" in [v.name for v in ev.values] and "odd/b" not in [v.name for v in ev.values]
    assert ev.not_applicable["odd"] == "odd is not a finite number on this test set for b: not stored."
    with pytest.raises(ConfigError, match=r'm.py: metric "mine" has shape "matrix": the confusion matrix is the only'):
        MetricRegistry().add(MetricDef(name="mine", label="M", point=lambda d: [[1]], shape="matrix"), "m.py")
