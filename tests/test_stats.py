"""Paired tests and tie-group ranks for any metric, checked against statsmodels/sklearn and on real digits
models."""

from __future__ import annotations

import numpy as np
import pytest
from result_fixtures import LABELS, digits, logreg, task_metrics, train, zoo_model
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from harness.compare import Policy
from harness.compare.engine import _paired, decide
from harness.errors import DataError
from harness.metrics import MetricData, MetricDef, TaskMetric
from harness.metrics.evaluate import evaluate
from harness.metrics.stats import holm, mcnemar, paired_bootstrap, rank_with_ties, tie_groups

METRICS = task_metrics(("accuracy", "macro_f1", "mcc", "roc_auc", "log_loss"), "macro_f1")


def _data(name: str) -> MetricData:
    m = zoo_model(name)
    return MetricData.of(digits().y_test, m.preds, len(LABELS), m.class_scores, m.score_kind)


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


def _sk_macro_f1(d: MetricData) -> float:
    return float(f1_score(d.y, d.pred, labels=list(range(10)), average="macro", zero_division=0))


def test_vectorised_paired_bootstrap_equals_the_generic_loop_on_the_same_resamples() -> None:
    a, b = _data("logreg"), _data("pca16-logreg")
    slow_metric = TaskMetric("macro_f1", MetricDef("plain_f1", "F1", _sk_macro_f1))  # no vectorised form
    for name in ("macro_f1", "roc_auc", "log_loss"):
        fast = paired_bootstrap(METRICS.get(name), [a], [b], n_boot=200, seed=4)
        if name == "macro_f1":
            slow = paired_bootstrap(slow_metric, [a], [b], n_boot=200, seed=4)
            assert fast.diff == pytest.approx(_sk_macro_f1(b) - _sk_macro_f1(a))
            assert (fast.ci_low, fast.ci_high, fast.p_value) == pytest.approx((slow.ci_low, slow.ci_high, slow.p_value))
        assert fast.ci_low <= fast.diff <= fast.ci_high


def test_paired_bootstrap_detects_a_damaged_model_and_not_a_reseeded_one() -> None:
    y = digits().y_test

    def data(m):
        return MetricData.of(y, m.preds, 10, m.class_scores, m.score_kind)

    full = data(train("logreg", logreg()))
    damaged = data(train("logreg", logreg(), per_class=3))
    for name in ("macro_f1", "roc_auc", "log_loss"):
        worse = paired_bootstrap(METRICS.get(name), [full], [damaged])
        sign = 1 if METRICS.get(name).higher_is_better else -1
        assert sign * worse.diff < 0 and worse.p_value < 0.01, name
    seed0 = data(train("logreg", logreg(), bootstrap_seed=0, seed=0))
    seed1 = data(train("logreg", logreg(), bootstrap_seed=1, seed=1))
    same = paired_bootstrap(METRICS.get("macro_f1"), [seed0], [seed1])
    assert same.ci_low < 0 < same.ci_high
    assert same.p_value > 0.05


def test_paired_bootstrap_of_identical_predictions_has_p_one_and_zero_interval() -> None:
    d = _data("gaussian-nb")
    result = paired_bootstrap(METRICS.get("mcc"), [d], [d], n_boot=100)
    assert (result.diff, result.ci_low, result.ci_high, result.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_holm_adjusts_step_down_and_stays_monotone() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]


def test_tie_groups_on_macro_f1_roc_auc_and_a_lower_is_better_metric() -> None:
    names = ["logreg", "knn-3", "svm-rbf", "tree-depth4"]
    datas = [_data(n) for n in names]
    ranked = rank_with_ties(names, datas, METRICS.get("macro_f1"), holm_correct=False)
    by_name = {r.name: r for r in ranked}
    assert [r.name for r in ranked] == ["svm-rbf", "knn-3", "logreg", "tree-depth4"]
    # knn-3 trails svm-rbf by < 1 point: not significant on 540 examples -> shares rank 1
    assert by_name["knn-3"].rank == 1 and by_name["knn-3"].tied_with == "svm-rbf"
    assert by_name["logreg"].rank == 3 and by_name["tree-depth4"].rank == 4
    assert by_name["svm-rbf"].value == pytest.approx(f1_score(datas[2].y, datas[2].pred, average="macro"))
    # Holm only ever widens tie groups
    holm_ranked = {r.name: r.rank for r in rank_with_ties(names, datas, METRICS.get("macro_f1"))}
    assert all(holm_ranked[n] <= by_name[n].rank for n in names)
    # ROC-AUC from class scores (probabilities for logreg/knn/tree, SVC decision values: rank-based, any kind)
    auc = {r.name: r for r in rank_with_ties(names, datas, METRICS.get("roc_auc"))}
    for n, d in zip(names, datas, strict=True):
        assert d.scores is not None
        expected = np.mean([roc_auc_score(d.y == c, d.scores[:, c]) for c in range(10)])
        assert auc[n].value == pytest.approx(expected)
    # log-loss: lower is better, so the leader has the smallest value
    probs = ["logreg", "knn-3", "tree-depth4", "gaussian-nb"]
    ll = rank_with_ties(probs, [_data(n) for n in probs], METRICS.get("log_loss"))
    assert ll[0].value == min(r.value for r in ll) and ll[0].name == "logreg"


def test_tie_groups_on_accuracy_use_mcnemar() -> None:
    svm, knn = _data("svm-rbf"), _data("knn-3")
    ranked = rank_with_ties(["knn-3", "svm-rbf"], [knn, svm], METRICS.get("accuracy"))
    assert ranked[0].name == "svm-rbf" and ranked[0].value == pytest.approx(accuracy_score(svm.y, svm.pred))
    assert ranked[1].p_value == pytest.approx(mcnemar(svm.pred == svm.y, knn.pred == knn.y).p_value)


def test_tie_groups_refuse_models_scored_on_different_examples() -> None:
    d = _data("logreg")
    flipped = MetricData.of(d.y[::-1], d.pred, 10)
    with pytest.raises(DataError, match="different labels"):
        tie_groups(["a", "b"], [d, flipped], METRICS.get("macro_f1"))
    short = MetricData.of(d.y[:-5], d.pred[:-5], 10)
    with pytest.raises(DataError, match="same examples"):
        tie_groups(["a", "b"], [d, short], METRICS.get("macro_f1"))
    assert tie_groups([], [], METRICS.get("macro_f1")) == {}


def test_an_interval_wholly_on_the_worse_side_does_not_reach_the_leaders() -> None:
    """The screen before paired tests (harness pick, the site's pick form), in each metric's direction;
    unknown or infinite bounds leave the candidate to the paired test."""
    from harness.metrics.stats import interval_reaches

    leader = (0.80, 0.90)
    assert interval_reaches(0.75, 0.82, *leader, higher_is_better=True)
    assert not interval_reaches(0.60, 0.79, *leader, higher_is_better=True)
    error = (0.10, 0.20)  # lower is better: the worse side is above
    assert interval_reaches(0.15, 0.25, *error, higher_is_better=False)
    assert not interval_reaches(0.21, 0.30, *error, higher_is_better=False)
    assert interval_reaches(None, 0.30, *error, higher_is_better=False)
    assert interval_reaches(0.21, float("inf"), *error, higher_is_better=False)


def test_the_pick_forms_tie_tests_screen_in_the_metrics_direction() -> None:
    """A lower-is-better main metric: the form tested every candidate below the leader (its screen compared
    the leader's lower bound with the others' upper bounds, which always reach)."""
    from harness.sitegen.pickform import PickCandidate, tie_tests

    def cand(name: str, value: float, lo: float, hi: float) -> PickCandidate:
        return PickCandidate(name, "p", name, "t", value, lo, hi, None, {})

    cands = [cand("a", 0.15, 0.10, 0.20), cand("b", 0.20, 0.15, 0.25), cand("c", 0.35, 0.30, 0.40)]
    assert tie_tests(cands, [0], higher_is_better=False) == {0: [1]}
    flipped = [cand("c", 0.35, 0.30, 0.40), cand("b", 0.20, 0.15, 0.25), cand("a", 0.15, 0.10, 0.20)]
    assert tie_tests(flipped, [0], higher_is_better=True) == {0: []}


def _right_and_wrong(n: int) -> tuple[MetricData, MetricData]:
    y = np.arange(n, dtype=np.int64) % 2
    return MetricData.of(y, y.copy(), 2), MetricData.of(y, 1 - y, 2)


@pytest.mark.parametrize("n", [1, 3, 5])
def test_a_handful_of_examples_never_shows_a_significant_difference(n: int) -> None:
    """One example: every bootstrap resample was that example, so a model right on it "beat" one wrong on it
    at p = 1/(n_boot + 1) (a site rank, a pick, a failed CI gate) and its own 95% CI had width 0. No exact
    paired test of 5 examples or fewer can reach p < 0.05 (its smallest p is 2/2**n)."""
    right, wrong = _right_and_wrong(n)
    f1 = METRICS.get("macro_f1")
    assert paired_bootstrap(f1, [right], [wrong]).p_value >= 2.0 ** (1 - n) > 0.05
    placed = tie_groups(["right", "wrong"], [right, wrong], f1)
    assert placed["wrong"].rank == 1 and placed["wrong"].tied_with == "right"
    evaluation = evaluate(METRICS, right, ["a", "b"])
    scalar = {v.name: (v.ci_low, v.ci_high) for v in evaluation.values if "/" not in v.name}
    assert {"accuracy", "macro_f1"} <= set(scalar) and set(scalar.values()) == {(None, None)}
    gate = _paired(f1, [right], [wrong], Policy())
    verdict, (reason,) = decide(gate, None, Policy())
    assert verdict == "untested" and f"Only {n} paired test example(s)" in reason


def test_six_examples_are_enough_for_a_test_and_an_interval() -> None:
    right, wrong = _right_and_wrong(8)
    f1 = METRICS.get("macro_f1")
    assert paired_bootstrap(f1, [right], [wrong]).p_value < 0.01
    assert tie_groups(["right", "wrong"], [right, wrong], f1)["wrong"].rank == 2
    ci = {v.name: (v.ci_low, v.ci_high) for v in evaluate(METRICS, wrong, ["a", "b"]).values}
    assert ci["accuracy"] == (0.0, 0.0) and ci["macro_f1"] == (0.0, 0.0)  # all wrong: a real (if narrow) interval
    assert decide(_paired(f1, [right], [wrong], Policy()), None, Policy())[0] == "regression"
