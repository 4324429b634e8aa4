"""Zero-shot for text embedding models: cosine similarity between an input and each label's prompt embedding."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.models.base import ModelAdapter
from harness.models.hf_common import LengthBatchedTextEncoder
from harness.models.outputs import l2_normalize
from harness.records import ScoreKind
from harness.tasks import Modality, TaskSpec


class TextEncoderAdapter(ModelAdapter):
    """Base of the text embedding families (hf_text, sentence_transformers, onnx)."""

    modality: Modality = "text"
    zero_shot_score_kind: ScoreKind = "similarity"  # cosine similarities in [-1, 1], not probabilities

    def label_embeddings(self, task: TaskSpec) -> np.ndarray:
        """(n_labels, D): per label, the mean of its L2-normalised prompt embeddings, renormalised."""
        prompts = [task.prompts_for(label) for label in task.labels]
        if any(not p for p in prompts):
            raise HarnessError(f"Task {task.name!r} has no prompt templates; zero-shot needs at least one.")
        flat = [text for per_label in prompts for text in per_label]
        embedded = l2_normalize(self.encode(flat))
        bounds = np.cumsum([0] + [len(p) for p in prompts])
        means = np.stack([embedded[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
        return l2_normalize(means)

    def zero_shot_head(self, task: TaskSpec) -> Callable[[np.ndarray], np.ndarray]:
        self.check_modality(task)
        labels = self.label_embeddings(task)

        def cosine_scores(features: np.ndarray) -> np.ndarray:
            return l2_normalize(np.asarray(features, dtype=np.float32)) @ labels.T

        return cosine_scores

    def zero_shot_scores(self, inputs: Sequence[Any], task: TaskSpec) -> np.ndarray:
        return self.zero_shot_head(task)(self.encode(inputs))


class TorchTextEncoder(LengthBatchedTextEncoder, TextEncoderAdapter):
    """Text encoders that embed one length-sorted batch at a time on a torch device (`_embed_batch`)."""
