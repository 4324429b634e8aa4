"""Zero-shot: no training on task data. The model scores labels itself (label prompts, own head, lexicon)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.errors import ModelOutputError
from harness.models.base import ModelAdapter
from harness.models.language_model import LanguageModel
from harness.protocols import lm_loglik
from harness.protocols.base import ProtocolContext, ProtocolOutput, confidence
from harness.tasks import TaskData


@dataclass(frozen=True)
class ZeroShotConfig:
    """No knobs yet: prompts and label words come from the task, thresholds from the model spec."""


def run(adapter: ModelAdapter, data: TaskData, config: ZeroShotConfig, ctx: ProtocolContext) -> ProtocolOutput:
    spec = data.spec
    adapter.check_modality(spec)
    if isinstance(adapter, LanguageModel):  # causal LMs: label log-likelihood, plain sum, no demonstrations
        return lm_loglik.run(adapter, data, lm_loglik.LMLoglikConfig(), ctx)
    head = adapter.zero_shot_head(spec)  # raises NotApplicable when the model has no zero-shot mode
    if head is not None:
        # Embedding models: cached test features -> similarity with label prompt embeddings.
        scores = head(ctx.encode(adapter, data.test))

        def predict(inputs: Sequence[Any]) -> np.ndarray:
            return np.asarray(head(adapter.encode(inputs))).argmax(axis=1)
    else:
        scores = adapter.zero_shot_scores(data.test.inputs, spec)

        def predict(inputs: Sequence[Any]) -> np.ndarray:
            return np.asarray(adapter.zero_shot_scores(inputs, spec)).argmax(axis=1)

    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(data.test), len(spec.labels)):
        raise ModelOutputError(f"zero-shot scores have shape {scores.shape}, expected ({len(data.test)}, {len(spec.labels)})")
    if not np.isfinite(scores).all():
        raise ModelOutputError(f"model {adapter.spec.name!r} produced NaN/inf zero-shot scores")
    preds, conf = confidence(scores)
    return ProtocolOutput(
        preds=preds,
        scores=conf,
        predict=predict,
        selected={"prompt_templates": list(spec.prompt_templates), "label_verbalizers": dict(spec.label_verbalizers)},
        class_scores=scores,
        score_kind=adapter.zero_shot_score_kind,
    )
