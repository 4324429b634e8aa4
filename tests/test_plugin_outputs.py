"""What a plugin protocol's run() returns is checked before any metric or the store sees it: a mistake fails its
job with one paragraph naming the protocol and what was expected, the other jobs finish, nothing is stored
wrong."""

from __future__ import annotations

import functools
import importlib.metadata
import sys
import types
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.errors import DataError
from harness.protocols.base import ProtocolOutput, checked_output

N, L = 6, 3
PREDS = np.array([0, 1, 2, 0, 1, 2])
PROBA = np.full((N, L), 1 / L)


def _out(**fields: Any) -> ProtocolOutput:
    base: dict[str, Any] = {
        "preds": PREDS, "scores": np.full(N, 0.5), "predict": lambda x: np.zeros(len(x), dtype=int),
        "class_scores": PROBA, "score_kind": "probability",
    }  # fmt: skip
    return ProtocolOutput(**{**base, **fields})


BAD_OUTPUTS: dict[str, tuple[object, str]] = {
    "none": (None, "run() returned NoneType, expected a harness.protocols.base.ProtocolOutput"),
    # Failed its job blaming the built-in: 'metric "accuracy" raised ValueError: Found input variables ...'.
    "one prediction short": (_out(preds=PREDS[:-1]), "preds of shape (5,) for 6 test examples; expected one label"),
    "class scores as preds": (_out(preds=PROBA), "preds of shape (6, 3) for 6 test examples"),
    # Truncated to label indices and stored: 0.9 was label 0.
    "fractional preds": (_out(preds=PREDS + 0.9), "preds of dtype float64 (0.9, 1.9, 2.9...); expected label indices"),
    "label names as preds": (_out(preds=np.array(list("abcabc"))), "preds of dtype <U1 ('a', 'b', 'c'...)"),
    # The store writer raised a zip() ValueError: a traceback, the whole sweep stopped.
    "scores one short": (_out(scores=np.ones(N - 1)), "scores of shape (5,); expected (6,), the confidence"),
    "NaN class scores": (
        _out(class_scores=np.where(np.eye(N, L) > 0, np.nan, PROBA)), "NaN or infinite class_scores for 3 of 6"
    ),
    "class scores transposed": (_out(class_scores=PROBA.T), "class_scores of shape (3, 6); expected (6, 3)"),
    # Stored; log-loss, Brier and ECE scored them as probabilities.
    "logits called probabilities": (_out(class_scores=PROBA * 5), "that are not probabilities (rows in 0..1 summing to 1; row 0 sums to 5)"),
    # Stored; every calibration metric was then "not applicable: needs probabilities, the scores are probabilities".
    "misspelt score kind": (_out(score_kind="probabilities"), "score_kind 'probabilities'; expected one of 'probability',"),
    # Stored as JSON NaN: `harness export` then ended in a traceback.
    "NaN in selected": (_out(selected={"C": 1.0, "by_C": {"1.0": float("nan")}}), "returned selected['by_C']['1.0'] = nan"),
    "predict not a function": (_out(predict=None), "predict must be a function of raw inputs, got NoneType"),
}


@pytest.mark.parametrize("case", list(BAD_OUTPUTS))
def test_a_bad_protocol_output_is_one_paragraph_naming_the_protocol(case: str) -> None:
    out, needle = BAD_OUTPUTS[case]
    with pytest.raises(DataError) as caught:
        checked_output(out, "mine", N, L)
    assert str(caught.value).startswith('protocol "mine"') and needle in str(caught.value), str(caught.value)


def test_a_good_protocol_output_passes() -> None:
    assert checked_output(_out(), "mine", N, L).score_kind == "probability"
    assert checked_output(_out(preds=PREDS.astype(float), class_scores=None, score_kind=None), "mine", N, L)


@dataclass(frozen=True)
class _Config:
    pass


def _short_scores(adapter: Any, data: Any, config: Any, ctx: Any) -> ProtocolOutput:
    n = len(data.test)
    return ProtocolOutput(np.zeros(n, dtype=np.int64), np.ones(n - 1), lambda x: np.zeros(len(x), dtype=int))


def test_a_protocol_plugins_bad_output_fails_its_job_and_the_others_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One score short: the store writer raised a zip() ValueError and `harness run` ended in a traceback."""
    from test_job_keys import TASK_YAML, _write_data  # tests/ is on sys.path

    import harness.protocols as protocols
    from harness.config import load_suite
    from harness.runner import run_suite
    from harness.store import Store

    fake = types.ModuleType("short_scores_protocol")
    fake.SHORT = protocols.ProtocolDef("short", _Config, _short_scores, "one score short")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "short_scores_protocol", fake)
    point = importlib.metadata.EntryPoint(name="short", value="short_scores_protocol:SHORT", group="harness.protocols")
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [point] if kw.get("group") == "harness.protocols" else real(**kw))
    monkeypatch.setattr(protocols, "_table", functools.cache(protocols._table.__wrapped__))
    _write_data(tmp_path / "data.csv")
    (tmp_path / "task.yaml").write_text(TASK_YAML.replace("[accuracy, my_metric]", "[accuracy]"))
    (tmp_path / "suite.yaml").write_text(
        "name: s\nplugins: [task.yaml]\ntasks: [toy]\nmodels:\n  - {name: tfidf, family: tfidf}\n"
        "protocols: [short, linear_probe]\ntiming: {enabled: false}\nbootstrap: {n_boot: 50, seed: 0}\n"
    )
    with closing(Store(tmp_path / "r.db")) as store:
        summary = run_suite(load_suite(tmp_path / "suite.yaml"), store)
        rows = dict(store.db.execute("SELECT protocol, status FROM runs").fetchall())
        errors = [e for (e,) in store.db.execute("SELECT error FROM runs WHERE status = 'failed'")]
    assert (summary.done, summary.failed) == (1, 1) and rows == {"short": "failed", "linear_probe": "done"}
    assert errors == ['protocol "short" returned scores of shape (23,); expected (24,), the confidence of each prediction.']


_X = np.arange(24, dtype=np.float32).reshape(6, 4)
BAD_FEATURES: dict[str, tuple[Any, str]] = {
    # Each failed inside the probe (sklearn's "Found input variables with inconsistent numbers of samples",
    # "Found array with dim 3", "could not convert string to float"), naming no model.
    "a row short": (_X[:-1], "produced features of shape (5, 4), expected (6, D) with D >= 1: one row per input"),
    "3-D": (_X[:, :, None], "produced features of shape (6, 4, 1), expected (6, D)"),
    "no columns": (_X[:, :0], "produced features of shape (6, 0), expected (6, D) with D >= 1"),  # StandardScaler's error
    "None": (None, "produced features NoneType None, expected (6, D)"),  # "of shape (1,)"
    "text": (np.array([["a"] * 4] * 6), "produced features that are not numbers (ndarray of dtype <U1"),
    "NaN": (np.where(_X == 5, np.nan, _X), "produced NaN/inf features for 1 of 6 inputs"),
}


@pytest.mark.parametrize("case", list(BAD_FEATURES))
def test_a_plugin_adapters_bad_features_name_the_model(case: str) -> None:
    from harness.errors import ModelOutputError
    from harness.features import FeatureCache
    from harness.models.base import ModelAdapter, ModelInfo, ModelSpec
    from harness.protocols.base import ProtocolContext
    from harness.tasks import Split

    features, needle = BAD_FEATURES[case]

    class Odd(ModelAdapter):
        modality = "text"

        def encode(self, inputs: Any) -> Any:
            return features

        def info(self) -> ModelInfo:
            return self.model_info(params=0)

    split = Split("test", tuple("abcdef"), list("abcdef"), np.zeros(6, dtype=np.int64))
    with pytest.raises(ModelOutputError) as caught:
        ProtocolContext(FeatureCache(None), seed=0).encode(Odd(ModelSpec(name="odd", family="oddfam")), split)
    assert str(caught.value).startswith("model 'odd' (oddfam) produced") and needle in str(caught.value), str(caught.value)


def test_a_plugin_adapter_whose_feature_width_differs_between_splits_names_the_model() -> None:
    """A featurizer fitted on every encode() call: sklearn's 'X has 4 features, but StandardScaler is expecting 8'."""
    from harness.errors import ModelOutputError
    from harness.features import FeatureCache
    from harness.models.base import ModelAdapter, ModelInfo, ModelSpec
    from harness.protocols.base import ProtocolContext
    from harness.protocols.linear_probe import LinearProbeConfig
    from harness.protocols.linear_probe import run as probe_run
    from harness.tasks import Split, TaskData, TaskSpec

    class Refits(ModelAdapter):
        modality = "text"

        def encode(self, inputs: Any) -> Any:
            return np.ones((len(inputs), len(inputs)), dtype=np.float32)  # one column per word "learnt"

        def info(self) -> ModelInfo:
            return self.model_info(params=0)

    def split(name: str, n: int) -> Split:
        return Split(name, tuple(f"{name}{i}" for i in range(n)), [f"t{i}" for i in range(n)], np.arange(n) % 2)

    spec = TaskSpec(name="t", version="1", modality="text", labels=("a", "b"))
    data = TaskData(spec, {"train": split("train", 8), "validation": split("validation", 4), "test": split("test", 6)})
    with pytest.raises(ModelOutputError, match=r"model 'refits' \(mine\) produced features of different widths for the "
                       r"splits \(train 8, validation 4, test 6\)"):
        probe_run(Refits(ModelSpec(name="refits", family="mine")), data, LinearProbeConfig(), ProtocolContext(FeatureCache(None), seed=0))
