"""Paired tests and tie-group ranks, checked against statsmodels/sklearn and on real digits models."""

from __future__ import annotations

import numpy as np
import pytest
from result_fixtures import digits, logreg, train, zoo_model
from sklearn.metrics import accuracy_score, f1_score
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from harness.errors import DataError, HarnessError
from harness.metrics import point_metrics
from harness.stats import (
    CONFUSION_METRICS,
    ConfusionMetric,
    macro_f1,
    mcnemar,
    paired_bootstrap,
    paired_bootstrap_seeds,
    rank_with_ties,
)


def _correctness(n00: int, n01: int, n10: int, n11: int) -> tuple[np.ndarray, np.ndarray]:
    """Correctness vectors with the given cell counts; nXY: A correct = X, B correct = Y."""
    a = np.array([0] * n00 + [0] * n01 + [1] * n10 + [1] * n11, dtype=bool)
    b = np.array([0] * n00 + [1] * n01 + [0] * n10 + [1] * n11, dtype=bool)
    return a, b


@pytest.mark.parametrize(
    ("n00", "n01", "n10", "n11"),
    [
        (10, 3, 9, 80),
        (5, 0, 0, 40),
        (20, 1, 12, 70),
        (3, 12, 12, 90),
        (7, 12, 13, 60),
        (15, 40, 20, 300),
        (2, 2, 30, 50),
    ],
)
def test_mcnemar_matches_statsmodels_exact_below_25_and_corrected_chi2_above(n00, n01, n10, n11) -> None:
    a, b = _correctness(n00, n01, n10, n11)
    result = mcnemar(a, b)
    assert (result.n01, result.n10) == (n01, n10)
    assert result.exact == (n01 + n10 < 25)
    # statsmodels' table: rows = A (wrong, right), columns = B (wrong, right)
    ref = sm_mcnemar(np.array([[n00, n01], [n10, n11]]), exact=result.exact, correction=True)
    assert result.statistic == pytest.approx(ref.statistic)
    assert result.p_value == pytest.approx(ref.pvalue)


def test_mcnemar_is_symmetric_and_rejects_unpaired_input() -> None:
    a, b = _correctness(4, 2, 15, 60)
    assert mcnemar(a, b).p_value == pytest.approx(mcnemar(b, a).p_value)
    with pytest.raises(DataError, match="same examples"):
        mcnemar(a, b[:-1])


@pytest.mark.parametrize("name", CONFUSION_METRICS)
def test_confusion_metrics_equal_the_project_metrics_including_absent_labels(name: str) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)  # label 4 is declared but never occurs
    pred = np.where(rng.random(300) < 0.6, y, rng.integers(0, 5, 300))
    metric = ConfusionMetric(name, 5)
    assert metric(y, pred) == pytest.approx(point_metrics(y, pred, 5)[name])
    cm = np.zeros((1, 5, 5), dtype=np.int64)
    np.add.at(cm[0], (y, pred), 1)
    assert metric.from_confusions(cm)[0] == pytest.approx(metric(y, pred))


def test_unknown_metric_name_is_a_harness_error_with_a_close_match() -> None:
    with pytest.raises(HarnessError, match='Did you mean "macro_f1"'):
        ConfusionMetric("macro-f1", 3)


def test_vectorised_paired_bootstrap_equals_the_generic_loop_on_the_same_resamples() -> None:
    d = digits()
    a, b = zoo_model("logreg").preds, zoo_model("pca16-logreg").preds

    def sk_macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
        return float(f1_score(y, pred, labels=list(range(10)), average="macro", zero_division=0))

    fast = paired_bootstrap(d.y_test, a, b, macro_f1(10), n_boot=200, seed=4)
    slow = paired_bootstrap(d.y_test, a, b, sk_macro_f1, n_boot=200, seed=4)
    assert fast.diff == pytest.approx(sk_macro_f1(d.y_test, b) - sk_macro_f1(d.y_test, a))
    assert (fast.ci_low, fast.ci_high, fast.p_value) == pytest.approx(
        (slow.ci_low, slow.ci_high, slow.p_value)
    )
    # one run per side: the seed-averaged variant is the same test
    multi = paired_bootstrap_seeds(d.y_test, [a], [b], macro_f1(10), n_boot=200, seed=4)
    assert (multi.diff, multi.ci_low, multi.ci_high, multi.p_value) == pytest.approx(
        (fast.diff, fast.ci_low, fast.ci_high, fast.p_value)
    )


def test_paired_bootstrap_detects_a_damaged_model_and_not_a_reseeded_one() -> None:
    y = digits().y_test
    full = train("logreg", logreg())
    damaged = train("logreg", logreg(), per_class=3)
    worse = paired_bootstrap(y, full.preds, damaged.preds, macro_f1(10))
    assert worse.diff < -0.1
    assert worse.ci_high < 0
    assert worse.p_value < 0.01
    seed0 = train("logreg", logreg(), bootstrap_seed=0, seed=0)
    seed1 = train("logreg", logreg(), bootstrap_seed=1, seed=1)
    same = paired_bootstrap(y, seed0.preds, seed1.preds, macro_f1(10))
    assert same.ci_low < 0 < same.ci_high
    assert same.p_value > 0.05


def test_paired_bootstrap_of_identical_predictions_has_p_one_and_zero_interval() -> None:
    y = digits().y_test
    pred = zoo_model("gaussian-nb").preds
    result = paired_bootstrap(y, pred, pred.copy(), macro_f1(10), n_boot=100)
    assert (result.diff, result.ci_low, result.ci_high, result.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_rank_with_ties_groups_models_not_significantly_worse_than_the_leader() -> None:
    y = digits().y_test
    entries = [(name, y, zoo_model(name).preds) for name in ("logreg", "knn-3", "svm-rbf", "tree-depth4")]
    ranked = rank_with_ties(entries, "macro_f1", n_labels=10)
    by_name = {r.name: r for r in ranked}
    assert [r.name for r in ranked] == ["svm-rbf", "knn-3", "logreg", "tree-depth4"]
    assert by_name["svm-rbf"].rank == 1 and by_name["svm-rbf"].tied_with is None
    # knn-3 trails svm-rbf by < 1 point: not significant on 540 examples -> shares rank 1
    assert by_name["knn-3"].rank == 1 and by_name["knn-3"].tied_with == "svm-rbf"
    assert by_name["knn-3"].p_value is not None and by_name["knn-3"].p_value >= 0.05
    # competition ranking: two models placed before, so the next group is rank 3
    assert by_name["logreg"].rank == 3 and by_name["logreg"].tied_with is None
    assert by_name["tree-depth4"].rank == 4
    assert by_name["svm-rbf"].value == pytest.approx(f1_score(y, entries[2][2], average="macro"))


def test_rank_with_ties_on_accuracy_uses_mcnemar() -> None:
    y = digits().y_test
    svm, knn = zoo_model("svm-rbf").preds, zoo_model("knn-3").preds
    ranked = rank_with_ties([("knn-3", y, knn), ("svm-rbf", y, svm)], metric="accuracy")
    assert ranked[0].name == "svm-rbf" and ranked[0].value == pytest.approx(accuracy_score(y, svm))
    assert ranked[1].p_value == pytest.approx(mcnemar(svm == y, knn == y).p_value)


def test_rank_with_ties_refuses_entries_scored_on_different_examples() -> None:
    y = digits().y_test
    pred = zoo_model("logreg").preds
    with pytest.raises(DataError, match="different labels"):
        rank_with_ties([("a", y, pred), ("b", y[::-1], pred)])
    with pytest.raises(DataError, match="same examples"):
        rank_with_ties([("a", y, pred), ("b", y[:-5], pred[:-5])])
    assert rank_with_ties([]) == []
