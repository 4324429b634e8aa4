"""vader: the VADER sentiment lexicon. Features are its four scores; zero-shot is its own compound-score rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from harness.errors import ConfigError, NotApplicable, close_match
from harness.models.base import ModelAdapter, ModelInfo, ModelSpec
from harness.models.options import option_error, parse_options
from harness.models.outputs import as_texts, checked_features
from harness.records import ScoreKind
from harness.tasks import Modality, TaskSpec

VADER_LABELS = ("negative", "neutral", "positive")
FEATURES = ("neg", "neu", "pos", "compound")


@dataclass(frozen=True)
class VaderOptions:
    # |compound| below this is neutral (VADER's published rule uses 0.05).
    threshold: float = 0.05
    # VADER label (negative / neutral / positive) -> task label, when the task's names differ.
    label_map: Mapping[str, str] = field(default_factory=dict)


class VaderSentiment(ModelAdapter):
    modality: Modality = "text"
    zero_shot_score_kind: ScoreKind = "lexicon"  # rule indicator + compound-derived confidence

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.options = parse_options(spec, VaderOptions)
        if not 0.0 < self.options.threshold < 1.0:
            raise option_error(
                spec, "threshold", f"must be between 0 and 1 (exclusive), got {self.options.threshold}."
            )
        for key in self.options.label_map:
            if key not in VADER_LABELS:
                raise ConfigError(
                    f'Model "{spec.name}" (vader): options.label_map key "{key}" is not a VADER label.'
                    f"{close_match(key, VADER_LABELS)} Keys must be among: {', '.join(VADER_LABELS)}."
                )

    @cached_property
    def analyzer(self) -> SentimentIntensityAnalyzer:
        return SentimentIntensityAnalyzer()

    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.spec.name,
            family=self.spec.family,
            modality=self.modality,
            source="vaderSentiment",  # the lexicon's package (the family takes no source)
            revision=self.spec.revision,
            params=len(self.analyzer.lexicon),
            license=self.spec.license or "MIT",
            description="VADER rule-based sentiment lexicon (params = lexicon entries); features neg, neu, pos, compound",
            feature_dim=len(FEATURES),
        )

    def encode(self, inputs: Sequence[Any]) -> np.ndarray:
        texts = as_texts(inputs, self.spec)
        rows = [[scores[k] for k in FEATURES] for scores in map(self.analyzer.polarity_scores, texts)]
        return checked_features(
            np.asarray(rows, dtype=np.float32).reshape(len(texts), len(FEATURES)), self.spec
        )

    @property
    def feature_cache_id(self) -> str | None:
        return None  # a lexicon lookup is cheaper than a cache read

    def zero_shot_scores(self, inputs: Sequence[Any], task: TaskSpec) -> np.ndarray:
        """Scores whose argmax is VADER's rule: compound >= t positive, <= -t negative, else neutral
        (2-label tasks: the sign of compound, 0 counting as positive). The rule's label gets 1 plus a
        confidence in [0, 0.5]; other labels get only their confidence, so the rule always wins."""
        self.check_modality(task)
        columns = self.task_columns(task)
        compound = self.encode(inputs)[:, FEATURES.index("compound")].astype(np.float64)
        t = self.options.threshold
        confidence = {
            "positive": (1.0 + compound) / 4.0,
            "negative": (1.0 - compound) / 4.0,
            "neutral": (1.0 - np.abs(compound)) / 4.0,
        }
        if "neutral" in columns:
            rule = np.where(compound >= t, "positive", np.where(compound <= -t, "negative", "neutral"))
        else:
            rule = np.where(compound >= 0.0, "positive", "negative")
        scores = np.empty((len(compound), len(task.labels)), dtype=np.float64)
        for vader_label, column in columns.items():
            scores[:, column] = confidence[vader_label] + (rule == vader_label)
        return scores

    def task_columns(self, task: TaskSpec) -> dict[str, int]:
        """VADER label -> task label column; every task label must be one of them, with positive and negative."""
        mapped = {v: v for v in VADER_LABELS} | dict(self.options.label_map)
        # A task label matches by its name or by its verbalizer (e.g. rotten -> negative, fresh -> positive).
        by_lower = {task.label_verbalizers.get(label, label).lower(): i for i, label in enumerate(task.labels)}
        by_lower |= {label.lower(): i for i, label in enumerate(task.labels)}
        columns: dict[str, int] = {}
        for vader_label, task_label in mapped.items():
            column = by_lower.get(task_label.lower())
            if column is not None:
                columns[vader_label] = column
        unmapped = [label for i, label in enumerate(task.labels) if i not in columns.values()]
        if "positive" not in columns or "negative" not in columns or unmapped:
            unmatched = f" (unmatched: {', '.join(unmapped)})" if unmapped else ""
            raise NotApplicable(
                f"VADER predicts {', '.join(VADER_LABELS)}; task {task.name!r} has labels [{', '.join(task.labels)}]"
                f"{unmatched}. Zero-shot needs positive and negative, optionally neutral, and no other label. "
                "Map differing names with the task's label_verbalizers (task label -> negative/neutral/positive) "
                "or the model's options.label_map (VADER label -> task label)."
            )
        return columns
