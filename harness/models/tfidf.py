"""tfidf: TF-IDF word uni+bigrams fitted on the train split (baseline for the linear probe)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from harness.errors import FieldError, HarnessError, NotApplicable
from harness.models.base import ModelAdapter, ModelInfo, ModelSpec
from harness.models.options import parse_options
from harness.models.outputs import as_texts, checked_features
from harness.tasks import Modality, Split, TaskSpec

MAX_FEATURES = 1_000_000
MAX_NGRAM = 10


@dataclass(frozen=True)
class TfidfOptions:
    max_features: int = 10_000  # features are dense (N, V) float32
    min_df: int = 2
    ngram_max: int = 2

    def __post_init__(self) -> None:
        """Checked when the suite is planned. Each text makes ngram_max x its length n-grams: ngram_max
        100,000 ran 98 s on 40 texts; a vocabulary past a million terms is a dense (N, V) float32 past memory."""
        for key, most in (("max_features", MAX_FEATURES), ("min_df", None), ("ngram_max", MAX_NGRAM)):
            value = getattr(self, key)
            if value < 1 or (most is not None and value > most):
                bound = f" to {most:,}" if most is not None else " or more"
                raise FieldError("tfidf options", key, f"must be 1{bound}, got {value}.")


class TfidfFeaturizer(ModelAdapter):
    """Unfitted until `fit_featurizer(train)`, which returns a new, fitted featurizer."""

    modality: Modality = "text"

    def __init__(self, spec: ModelSpec, vectorizer: TfidfVectorizer | None = None) -> None:
        super().__init__(spec)
        self.options = parse_options(spec, TfidfOptions)
        self.vectorizer = vectorizer

    def _new_vectorizer(self, min_df: int) -> TfidfVectorizer:
        return TfidfVectorizer(
            sublinear_tf=True,
            ngram_range=(1, self.options.ngram_max),
            min_df=min_df,
            max_features=self.options.max_features,
            dtype=np.float32,
        )

    def fit_featurizer(self, train: Split) -> TfidfFeaturizer:
        texts = as_texts(train.inputs, self.spec)
        vectorizer = self._new_vectorizer(self.options.min_df)
        try:
            vectorizer.fit(texts)
        except ValueError:
            # Few-shot train sets can leave no term in min_df documents; every term is better than none.
            vectorizer = self._new_vectorizer(1)
            try:
                vectorizer.fit(texts)
            except ValueError as err:
                raise HarnessError(
                    f'tfidf model "{self.spec.name}": the {train.name} split has no usable words ({err}).'
                ) from err
        return TfidfFeaturizer(self.spec, vectorizer)

    @property
    def vocabulary_size(self) -> int | None:
        return None if self.vectorizer is None else len(self.vectorizer.vocabulary_)

    def info(self) -> ModelInfo:
        return self.model_info(
            params=self.vocabulary_size,
            description=(
                f"TF-IDF (sublinear tf, 1-{self.options.ngram_max} grams, min_df {self.options.min_df}, "
                f"at most {self.options.max_features} terms), fitted on the train split; params = vocabulary size"
            ),
            feature_dim=self.vocabulary_size,
        )

    def encode(self, inputs: Sequence[Any]) -> np.ndarray:
        if self.vectorizer is None:
            raise HarnessError(
                f'tfidf model "{self.spec.name}" has not been fitted: call fit_featurizer(train split) first. '
                "It has features only after fitting on a task's train split (linear probe), so it has no zero-shot mode."
            )
        matrix = self.vectorizer.transform(as_texts(inputs, self.spec))
        return checked_features(matrix.toarray(), self.spec)

    def zero_shot_scores(self, inputs: Sequence[Any], task: TaskSpec) -> np.ndarray:
        raise NotApplicable(
            f"tfidf model {self.spec.name!r} has no zero-shot mode: its features are fitted on labelled train data."
        )

    @property
    def feature_cache_id(self) -> str | None:
        return None  # cheap to recompute, and features depend on the train split it was fitted on
