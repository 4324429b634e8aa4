from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score

from harness.metrics import BootstrapConfig, bootstrap_confusions, classification_metrics, point_metrics


def _noisy_predictions(n: int = 500, n_labels: int = 5, acc: float = 0.7, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_labels, n)
    pred = np.where(rng.random(n) < acc, y, rng.integers(0, n_labels, n))
    return y, pred


def test_macro_f1_is_macro_over_all_declared_labels_not_binary() -> None:
    y = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 1, 1])
    # Label 2 is declared but absent: it counts as F1 = 0 in the macro mean (sklearn with labels=...).
    metrics = point_metrics(y, pred, n_labels=3)
    expected = f1_score(y, pred, labels=[0, 1, 2], average="macro", zero_division=0)
    assert metrics["macro_f1"] == pytest.approx(expected)
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0) / 3)


def test_vectorised_bootstrap_confusions_match_sklearn_on_the_same_resamples() -> None:
    y, pred = _noisy_predictions(n=120)
    cfg = BootstrapConfig(n_boot=7, seed=3)
    cms = bootstrap_confusions(y, pred, 5, cfg)
    rng = np.random.default_rng(3)
    idx = rng.integers(0, len(y), size=(7, len(y)))
    for b in range(7):
        np.testing.assert_array_equal(cms[b], confusion_matrix(y[idx[b]], pred[idx[b]], labels=range(5)))


def test_metrics_with_cis_bracket_point_estimates_and_are_seeded() -> None:
    y, pred = _noisy_predictions()
    names = ["a", "b", "c", "d", "e"]
    first, cm = classification_metrics(y, pred, names, BootstrapConfig(n_boot=300, seed=0))
    again, _ = classification_metrics(y, pred, names, BootstrapConfig(n_boot=300, seed=0))
    other, _ = classification_metrics(y, pred, names, BootstrapConfig(n_boot=300, seed=1))
    assert first == again
    assert first != other
    by_name = {m.name: m for m in first}
    for name in ("accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall"):
        m = by_name[name]
        assert m.ci_low is not None and m.ci_high is not None
        assert m.ci_low < m.value < m.ci_high
        assert m.ci_high - m.ci_low < 0.15
    assert by_name["accuracy"].value == pytest.approx(np.mean(y == pred))
    per_class = f1_score(y, pred, average=None, labels=range(5))
    assert [by_name[f"f1/{n}"].value for n in names] == pytest.approx(list(per_class))
    assert np.array(cm).sum() == len(y)


def test_ci_width_shrinks_with_more_examples() -> None:
    small = classification_metrics(*_noisy_predictions(n=100), list("abcde"), BootstrapConfig(n_boot=300))[0]
    large = classification_metrics(*_noisy_predictions(n=3000), list("abcde"), BootstrapConfig(n_boot=300))[0]
    width = {id(x): x.ci_high - x.ci_low for x in (small[1], large[1])}  # macro_f1
    assert width[id(large[1])] < width[id(small[1])] / 2
