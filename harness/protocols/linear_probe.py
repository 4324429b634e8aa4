"""Linear probe: frozen features -> scikit-learn logistic regression.

C is chosen on the validation split (main metric: macro-F1), then the probe is refit on train+val.
k-shot (MTEB style): k training examples per class drawn with a seed, n repeats; the stored predictions
and headline metrics are those of repeat 0 (so paired comparisons use real predictions), and the mean
and spread over repeats are recorded as extra metrics. A label with fewer than k train examples fails the
job (k_shot_indices): a run labelled k-shot always trained on k examples of each label.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from harness.errors import DataError, ModelOutputError
from harness.models.base import ModelAdapter
from harness.protocols.base import (
    ProtocolContext,
    ProtocolOutput,
    macro_f1,
    repeat_metrics,
    require_two_labels,
)
from harness.protocols.limits import MAX_CS, MAX_REPEATS
from harness.tasks import TaskData

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


@dataclass(frozen=True)
class LinearProbeConfig:
    Cs: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)
    k_shot: int | None = None  # examples per class from train; None = the whole train split
    repeats: int = 1  # k-shot draws (k_shot only)
    max_iter: int = 2000
    standardize: bool = True
    refit_on_train_val: bool = True

    def __post_init__(self) -> None:
        if not self.Cs or any(c <= 0 for c in self.Cs):
            raise ValueError(f"Cs must be a non-empty list of positive numbers, got {list(self.Cs)}")
        if self.k_shot is not None and self.k_shot < 1:
            raise ValueError(f"k_shot must be >= 1, got {self.k_shot}")
        if len(self.Cs) > MAX_CS:
            raise ValueError(f"Cs must list at most {MAX_CS} values, got {len(self.Cs)}")
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        if self.repeats > MAX_REPEATS:
            raise ValueError(f"repeats must be at most {MAX_REPEATS:,}, got {self.repeats}")
        if self.repeats > 1 and self.k_shot is None:  # one fit would be stored as a run of several draws
            raise ValueError(
                f"repeats must be 1 without k_shot, got {self.repeats}: repeats are k-shot draws, and the whole "
                "train split is drawn only one way (set k_shot, or use the suite's seeds for runs with other seeds)"
            )
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter}")


def _stack(a: Any, b: Any) -> Any:
    return sp.vstack([a, b]).tocsr() if sp.issparse(a) else np.concatenate([a, b])


def _probe(C: float, sparse: bool, cfg: LinearProbeConfig, seed: int) -> Pipeline:
    # sklearn is imported where a probe is fitted: planning a run imports this module for its config class,
    # and a re-run of a finished suite should not pay ~1.5 s for it.
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    steps: list[Any] = []
    if cfg.standardize:
        steps.append(StandardScaler(with_mean=not sparse))
    # seed is the run seed + the repeat: past 2**32 - 1 for the largest run seeds, which sklearn refuses.
    steps.append(LogisticRegression(C=C, max_iter=cfg.max_iter, random_state=seed % 2**32))
    return make_pipeline(*steps)


def _fit(C: float, sparse: bool, cfg: LinearProbeConfig, seed: int, X: Any, y: np.ndarray) -> tuple[Pipeline, bool]:
    """(fitted probe, whether its solver converged). sklearn's ConvergenceWarning (8 lines per fit on the
    console, stored nowhere) becomes the flag; other warnings pass through."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = _probe(C, sparse, cfg, seed).fit(X, y)
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model, not any(issubclass(w.category, ConvergenceWarning) for w in caught)


def k_shot_indices(
    labels: np.ndarray, k: int, rng: np.random.Generator, names: Sequence[str] = ()
) -> np.ndarray:
    """k examples of each class (`labels`: the train split's label indices; `names`: the task's labels),
    sorted; deterministic for a given rng. A class with fewer than k examples is a DataError: taking all of
    it instead made a run stored as k_shot: 1000 train on 18 examples, mislabelled on every leaderboard. A
    declared label with no train example at all counts too (it was skipped: a 2-shot run of 3 labels trained
    on 2 of them)."""
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=len(names)) if labels.size else np.zeros(len(names), dtype=np.int64)
    classes = np.arange(len(counts))
    short = [(int(c), int(n)) for c, n in zip(classes, counts, strict=True) if n < k]
    if short:
        def name(c: int) -> str:
            return repr(names[c]) if c < len(names) else str(c)

        listed = ", ".join(f"{name(c)} {n}" for c, n in short[:5]) + (f" and {len(short) - 5} more" if len(short) > 5 else "")
        raise DataError(
            f"k_shot {k} asks for {k} train examples of each label, but the train split has {len(labels)} "
            f"examples and {len(short)} label(s) fewer than {k} ({listed}). "
            + (
                f"Set k_shot to at most {int(counts.min())}, so that every k-shot draw holds k examples of each label."
                if counts.min() > 0
                else "A label with no train example cannot be drawn: add train examples of it, or leave k_shot out "
                "(the whole train split)."
            )
        )
    chosen = [rng.choice(np.flatnonzero(labels == cls), size=k, replace=False) for cls in classes]
    return np.sort(np.concatenate(chosen))


def _fit_one(
    X_tr: Any,
    y_tr: np.ndarray,
    X_val: Any,
    y_val: np.ndarray,
    n_labels: int,
    cfg: LinearProbeConfig,
    seed: int,
) -> tuple[Pipeline, float, dict[str, float], list[str]]:
    """(final probe, its C, validation macro-F1 by C, the fits whose solver did not converge, in words)."""
    sparse = sp.issparse(X_tr)
    val_scores: dict[str, float] = {}
    unconverged: list[str] = []
    for C in cfg.Cs:
        model, converged = _fit(C, sparse, cfg, seed, X_tr, y_tr)
        val_scores[repr(C)] = macro_f1(y_val, model.predict(X_val), n_labels)
        unconverged += [] if converged else [f"C={C:g} (validation)"]
    best_C = float(max(cfg.Cs, key=lambda c: (val_scores[repr(c)], -abs(np.log10(c)))))
    if cfg.refit_on_train_val and cfg.k_shot is None:  # k-shot stays k-shot: no refit on the whole val split
        final, converged = _fit(best_C, sparse, cfg, seed, _stack(X_tr, X_val), np.concatenate([y_tr, y_val]))
    else:
        final, converged = _fit(best_C, sparse, cfg, seed, X_tr, y_tr)
    unconverged += [] if converged else [f"C={best_C:g} (final fit)"]
    return final, best_C, val_scores, unconverged


def _train_subsets(
    y_train: np.ndarray, cfg: LinearProbeConfig, seed: int, repeats: int, names: Sequence[str]
) -> list[np.ndarray]:
    if not cfg.k_shot:
        return [np.arange(len(y_train))]
    rng = np.random.default_rng(seed)
    return [k_shot_indices(y_train, cfg.k_shot, rng, names) for _ in range(repeats)]


def _fit_repeat(
    X_train: Any,
    y_train: np.ndarray,
    X_val: Any,
    y_val: np.ndarray,
    X_test: Any,
    idx: np.ndarray,
    n_labels: int,
    cfg: LinearProbeConfig,
    seed: int,
) -> tuple[Pipeline, float, dict[str, float], np.ndarray, np.ndarray, int, list[str]]:
    """(probe, C, validation scores, test predictions, (N_test, n_labels) test probabilities, n_train, the
    fits that did not converge)."""
    probe, best_C, val_scores, unconverged = _fit_one(X_train[idx], y_train[idx], X_val, y_val, n_labels, cfg, seed)
    # A label absent from the training examples (k-shot of a rare class) gets probability 0.
    proba = np.zeros((X_test.shape[0], n_labels), dtype=np.float64)
    proba[:, probe.classes_] = probe.predict_proba(X_test)
    return probe, best_C, val_scores, proba.argmax(axis=1), proba, len(idx), unconverged


def run(
    adapter: ModelAdapter, data: TaskData, config: LinearProbeConfig, ctx: ProtocolContext
) -> ProtocolOutput:
    adapter.check_modality(data.spec)
    n_labels = len(data.spec.labels)
    featurizer = adapter.fit_featurizer(data.train)
    X_train = ctx.encode(featurizer, data.train)
    X_val = ctx.encode(featurizer, data.validation)
    X_test = ctx.encode(featurizer, data.test)
    widths = {split.name: x.shape[1] for split, x in ((data.train, X_train), (data.validation, X_val), (data.test, X_test))}
    if len(set(widths.values())) > 1:  # sklearn's "X has 4 features, but StandardScaler is expecting 8" named no model
        raise ModelOutputError(
            f"model {adapter.spec.name!r} ({adapter.spec.family}) produced features of different widths for the splits "
            f"({', '.join(f'{name} {d}' for name, d in widths.items())}): encode() must give every input the same "
            "number of features (a featurizer fitted once, in fit_featurizer, not per call)."
        )
    # After encoding, so a model without features is not applicable whatever the data. (A k-shot draw holds
    # every label.)
    require_two_labels(data.train.labels, data.spec.labels, "linear_probe")
    y_train, y_val, y_test = (np.asarray(s.labels) for s in (data.train, data.validation, data.test))

    repeats = config.repeats if config.k_shot else 1
    # Probe matrices are small: multi-threaded BLAS only spins (measured 37 s vs 2 s for one lbfgs fit
    # of 2,000 x 384 on a loaded 2-core machine), so the probe runs single-threaded.
    with threadpool_limits(limits=1, user_api="blas"):
        outcomes = [
            _fit_repeat(X_train, y_train, X_val, y_val, X_test, idx, n_labels, config, ctx.seed + r)
            for r, idx in enumerate(_train_subsets(y_train, config, ctx.seed, repeats, data.spec.labels))
        ]

    probe, best_C, val_scores, preds, proba, n_train, _ = outcomes[0]
    extra = repeat_metrics(y_test, [o[3] for o in outcomes], n_labels) if repeats > 1 else ()
    unconverged = [f"{fit}{f' of repeat {r}' if repeats > 1 else ''}" for r, o in enumerate(outcomes) for fit in o[6]]
    notes = {}
    if unconverged:
        listed = ", ".join(unconverged[:6]) + (f" and {len(unconverged) - 6} more" if len(unconverged) > 6 else "")
        notes["warnings"] = [
            f"the probe's solver (lbfgs) did not converge within max_iter {config.max_iter} for {listed}: its "
            "predictions may be far from the optimum. Raise max_iter, or lower C."
        ]
        warnings.warn(notes["warnings"][0], UserWarning, stacklevel=2)

    def predict(inputs: Sequence[Any]) -> np.ndarray:
        return np.asarray(probe.predict(featurizer.encode(inputs)))

    return ProtocolOutput(
        preds=np.asarray(preds, dtype=np.int64),
        scores=proba[np.arange(len(preds)), preds],
        predict=predict,
        selected={
            "C": best_C,
            "validation_macro_f1_by_C": val_scores,
            "n_train_examples": int(n_train),
            "refit_on_train_val": config.refit_on_train_val and config.k_shot is None,
            "selected_C_per_repeat": [o[1] for o in outcomes],
            **notes,
        },
        extra_metrics=extra,
        class_scores=proba,
        score_kind="probability",
    )
