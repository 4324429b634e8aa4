"""What every protocol returns, and the registry of protocol names -> (config class, run function)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

import numpy as np

from harness.errors import DataError, close_match
from harness.features import FeatureCache
from harness.models.base import ModelAdapter
from harness.models.outputs import checked_features
from harness.records import MetricValue, ScoreKind
from harness.tasks import Split


@dataclass(frozen=True, eq=False)
class ProtocolOutput:
    preds: np.ndarray  # (N_test,) predicted label indices
    scores: np.ndarray  # (N_test,) confidence of the predicted label
    predict: Callable[[Sequence[Any]], np.ndarray]  # raw inputs -> label indices: the timed inference path
    selected: Mapping[str, Any] = field(default_factory=dict)  # hyper-parameters chosen on validation
    extra_metrics: tuple[MetricValue, ...] = ()
    class_scores: np.ndarray | None = None  # (N_test, n_labels) scores of every label, kind in score_kind
    score_kind: ScoreKind | None = None


def checked_output(out: object, protocol: str, n_test: int, n_labels: int) -> ProtocolOutput:
    """What a protocol's run() returned, checked before any metric or the store sees it: predictions wrong in
    length failed the job blaming the built-in "accuracy", fractional ones were truncated to label indices and
    stored, a short `scores` crashed the store writer, and probabilities that were not probabilities were
    scored by the calibration metrics."""
    where = f'protocol "{protocol}"'
    if not isinstance(out, ProtocolOutput):
        raise DataError(
            f"{where}: run() returned {type(out).__name__}, expected a harness.protocols.base.ProtocolOutput."
        )
    preds = np.asarray(out.preds)
    if preds.shape != (n_test,):
        raise DataError(
            f"{where} returned preds of shape {preds.shape} for {n_test} test examples; expected one label index "
            f"per test example, shape ({n_test},)."
        )
    whole = preds.dtype.kind in "iu" or (preds.dtype.kind == "f" and bool(np.all(np.mod(preds, 1) == 0)))
    if not whole or (n_test and (preds.min() < 0 or preds.max() >= n_labels)):
        raise DataError(
            f"{where} returned preds of dtype {preds.dtype} ({_first(preds)}...); expected label indices, "
            f"integers from 0 to {n_labels - 1} (the position of the label in the task's labels)."
        )
    _check_numbers(where, "scores", out.scores, (n_test,), "the confidence of each prediction")
    if out.class_scores is not None:
        kinds = get_args(ScoreKind)
        if out.score_kind not in kinds:
            raise DataError(
                f"{where} returned class scores of score_kind {out.score_kind!r}; expected one of "
                f"{', '.join(map(repr, kinds))}.{close_match(str(out.score_kind), kinds)}"
            )
        class_scores = _check_numbers(where, "class_scores", out.class_scores, (n_test, n_labels), "a score per label")
        if out.score_kind == "probability" and n_test and (
            class_scores.min() < 0 or class_scores.max() > 1 or not np.allclose(class_scores.sum(axis=1), 1, atol=1e-3)
        ):
            raise DataError(
                f"{where} returned class scores of score_kind 'probability' that are not probabilities (rows in "
                f"0..1 summing to 1; row 0 sums to {class_scores[0].sum():g}): log-loss, Brier and ECE would score "
                "them. Return softmax probabilities, or name their kind (e.g. 'logit')."
            )
    if not isinstance(out.selected, Mapping):
        raise DataError(f"{where} returned selected of {type(out.selected).__name__}; expected a mapping (a dict).")
    bad = _non_finite(out.selected, "selected")
    if bad is not None:  # stored as JSON NaN: `harness export` then failed with a traceback
        raise DataError(
            f"{where} returned {bad[0]} = {bad[1]!r}: what a protocol selected is stored as JSON, which has no NaN or "
            "infinity. Store None, or a text, instead."
        )
    if not callable(out.predict):
        raise DataError(f"{where}: predict must be a function of raw inputs, got {type(out.predict).__name__}.")
    return out


def _non_finite(value: object, path: str) -> tuple[str, float] | None:
    """(where, value) of the first NaN or infinite float in nested mappings and sequences, or None."""
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return path, float(value)
    if isinstance(value, Mapping):
        items: Any = ((f"{path}[{k!r}]", v) for k, v in value.items())
    elif isinstance(value, (list, tuple, np.ndarray)):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    return next((bad for p, v in items if (bad := _non_finite(v, p)) is not None), None)


def _first(values: np.ndarray) -> str:
    return ", ".join(map(repr, values.ravel()[:3].tolist()))


def _check_numbers(where: str, field_name: str, values: object, shape: tuple[int, ...], what: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{where} returned {field_name} of {type(values).__name__}; expected numbers, {what}.") from None
    if array.shape != shape:
        raise DataError(f"{where} returned {field_name} of shape {array.shape}; expected {shape}, {what}.")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).reshape(len(array), -1).any(axis=1).sum()) if array.size else 0
        raise DataError(f"{where} returned NaN or infinite {field_name} for {bad} of {len(array)} test examples.")
    return array


@dataclass
class ProtocolContext:
    features: FeatureCache
    seed: int
    model_identity: str = ""  # ModelIdentity.token: features of changed weights are never served from cache
    # The job's Inference as "cuda-bf16" ("" for a CPU-only family): features a GPU computed in bf16 are not
    # served to a run on the CPU from a shared cache, nor the reverse.
    inference: str = ""

    def encode(self, adapter: ModelAdapter, split: Split) -> Any:
        # A plugin adapter's encode() that skips checked_features: 71 rows for 72 inputs, a 3-D array or text
        # features failed the probe naming no model.
        return self.cached(
            adapter, split, lambda: checked_features(adapter.encode(split.inputs), adapter.spec, n_inputs=len(split))
        )

    def cached(self, adapter: ModelAdapter, split: Split, compute: Callable[[], Any], variant: str = "") -> Any:
        """`compute()` for `split` through the feature cache, keyed by the adapter, its weights and `variant`
        (what else the result depends on, e.g. an LM's prompt and label tokens)."""
        cache_id = adapter.feature_cache_id
        if cache_id is not None and self.model_identity:
            cache_id = f"{cache_id}-{self.model_identity}"
        if cache_id is not None and self.inference:
            cache_id = f"{cache_id}-{self.inference}"
        if cache_id is not None and variant:
            cache_id = f"{cache_id}-{variant}"
        return self.features.get(cache_id, split, compute)


def require_two_labels(labels: np.ndarray, names: Sequence[str], protocol: str) -> None:
    """A DataError unless the training examples hold at least two labels: a classifier trained on one learns
    only to say it, and its test numbers measure nothing."""
    present = np.unique(np.asarray(labels))
    if len(present) < 2:
        only = f"all {len(labels)} are labelled {names[int(present[0])]!r}" if len(present) else "there are none"
        raise DataError(
            f"{protocol} needs training examples of at least two labels, but {only}. Add train examples of the "
            "other labels (or a larger few-shot budget)."
        )


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a (N, n_labels) score matrix (numerically stable)."""
    z = np.asarray(scores, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def confidence(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(argmax predictions, softmax probability of the argmax) for a score matrix."""
    preds = scores.argmax(axis=1)
    return preds, softmax(scores)[np.arange(len(preds)), preds]


def macro_f1(y: np.ndarray, pred: np.ndarray, n_labels: int) -> float:
    """Macro-F1 over all n_labels labels (a label never predicted nor present counts as 0)."""
    # sklearn is imported here: planning a run imports the protocols for their config classes, and a
    # re-run of a finished suite should not pay ~1.5 s for it.
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, labels=list(range(n_labels)), average="macro", zero_division=0))


def repeat_metrics(y: np.ndarray, preds: Sequence[np.ndarray], n_labels: int) -> tuple[MetricValue, ...]:
    """The spread of macro-F1 and accuracy over repeated fits (or prompt draws) of one run: mean with
    min-max, and the sample standard deviation."""
    from sklearn.metrics import accuracy_score

    f1s = np.array([macro_f1(y, p, n_labels) for p in preds])
    accs = np.array([accuracy_score(y, p) for p in preds])
    return (
        MetricValue("macro_f1_repeats_mean", float(f1s.mean()), float(f1s.min()), float(f1s.max())),
        MetricValue("macro_f1_repeats_std", float(f1s.std(ddof=1))),
        MetricValue("accuracy_repeats_mean", float(accs.mean()), float(accs.min()), float(accs.max())),
        MetricValue("accuracy_repeats_std", float(accs.std(ddof=1))),
    )
