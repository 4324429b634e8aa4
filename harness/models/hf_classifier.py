"""hf_classifier: a transformers sequence classifier. Zero-shot maps its own labels onto the task's labels."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.special import logsumexp
from transformers import AutoModelForSequenceClassification

from harness.devices import to_device, to_host
from harness.errors import ConfigError, NotApplicable, close_match
from harness.models.base import ModelInfo, ModelSpec, TrainableBackbone
from harness.models.hf_common import (
    embed_by_length,
    pool,
    tokenize,
)
from harness.models.hf_pretrained import HFPretrainedAdapter
from harness.models.options import parse_options
from harness.models.outputs import as_texts, checked_features
from harness.records import ScoreKind
from harness.tasks import Modality, TaskSpec


@dataclass(frozen=True)
class ClassifierOptions:
    # model label (config.id2label) -> task label; unlisted labels fall back to case-insensitive name equality.
    label_map: Mapping[str, str] = field(default_factory=dict)


class HFSequenceClassifier(HFPretrainedAdapter):
    modality: Modality = "text"
    zero_shot_score_kind: ScoreKind = "probability"  # the head's softmax, summed per task label
    auto_model_class = AutoModelForSequenceClassification
    example_source = "distilbert-base-uncased-finetuned-sst-2-english"

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.options = parse_options(spec, ClassifierOptions)

    @property
    def model_labels(self) -> list[str]:
        id2label: Mapping[Any, str] = self.model.config.id2label or {}
        by_index = {
            int(i): str(name) for i, name in id2label.items()
        }  # keys may be str after a JSON round-trip
        return [by_index[i] for i in range(len(by_index))]

    def info(self) -> ModelInfo:
        description = f"{self.model.config.model_type} classifier over {', '.join(self.model_labels)}"
        return self.module_info(self.model, description, self.feature_dim)

    def encode(self, inputs: Sequence[Any]) -> np.ndarray:
        """Pooled last hidden state of the base model (for probing), not the logits."""
        return self._run(inputs, self._features_batch, self.feature_dim, "features")

    def logits(self, inputs: Sequence[Any]) -> np.ndarray:
        """(N, n_model_labels) classifier logits, columns in config.id2label order."""
        return self._run(inputs, self._logits_batch, len(self.model_labels), "logits")

    def zero_shot_scores(self, inputs: Sequence[Any], task: TaskSpec) -> np.ndarray:
        """Probability of each task label: the summed softmax of the model labels mapped to it, renormalised
        over the mapped labels (model labels that map to no task label drop out), so rows sum to 1."""
        self.check_modality(task)
        columns = self.task_label_columns(task)
        logits = self.logits(inputs).astype(np.float64)
        per_label = np.stack([logsumexp(logits[:, cols], axis=1) for cols in columns], axis=1)
        return np.exp(per_label - logsumexp(per_label, axis=1, keepdims=True))

    def task_label_columns(self, task: TaskSpec) -> list[list[int]]:
        """For each task label, the model-label columns that vote for it; NotApplicable if one has none."""
        model_labels = self.model_labels
        label_map = dict(self.options.label_map)
        for key in label_map:
            if key not in model_labels:
                raise ConfigError(
                    f'Model "{self.spec.name}": options.label_map names model label "{key}", which the model '
                    f"does not have.{close_match(key, model_labels)} Model labels: {', '.join(model_labels)}."
                )
        task_by_lower = {label.lower(): label for label in task.labels}
        columns: dict[str, list[int]] = {label: [] for label in task.labels}
        for index, model_label in enumerate(model_labels):
            target = label_map.get(model_label, model_label)
            task_label = target if target in columns else task_by_lower.get(target.lower())
            if task_label is not None:
                columns[task_label].append(index)
        missing = [label for label, cols in columns.items() if not cols]
        if missing:
            raise NotApplicable(
                f"classifier {self.spec.name!r} labels [{', '.join(model_labels)}] cannot be mapped onto task "
                f"{task.name!r} labels [{', '.join(task.labels)}]: nothing maps to {', '.join(missing)}. "
                "Set options.label_map (model label -> task label) in the suite to map them."
            )
        return [columns[label] for label in task.labels]

    def trainable_backbone(self) -> TrainableBackbone:
        """The base model (classification head dropped) + pooling."""
        return self.encoder_backbone(self.model.base_model)

    def _run(
        self, inputs: Sequence[Any], batch_fn: Callable[[Sequence[str]], torch.Tensor], width: int, what: str
    ) -> np.ndarray:
        texts = as_texts(inputs, self.spec)
        if not texts:
            return np.zeros((0, width), dtype=np.float32)
        out, self.batch_size = embed_by_length(
            texts, batch_fn, self.batch_size, self.torch_device, self.spec.precision
        )
        return checked_features(out, self.spec, what)

    def _features_batch(self, texts: Sequence[str]) -> torch.Tensor:
        batch = to_device(tokenize(self.tokenizer, texts, self.max_length), self.torch_device)
        hidden = self.model.base_model(**batch).last_hidden_state
        pooled = pool(hidden, batch["attention_mask"], self.pooling)
        if self.spec.normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return to_host(pooled)

    def _logits_batch(self, texts: Sequence[str]) -> torch.Tensor:
        batch = to_device(tokenize(self.tokenizer, texts, self.max_length), self.torch_device)
        return to_host(self.model(**batch).logits)
