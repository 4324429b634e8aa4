"""The model being fine-tuned: a backbone + a new linear head, frozen bottom blocks, batched inference."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from harness.devices import run_batched, to_device
from harness.errors import HarnessError
from harness.models.base import TrainableBackbone
from harness.models.outputs import length_order, unsort

Inputs = Sequence[Any] | np.ndarray  # texts, or an (N, ...) array of images / token ids


def take(inputs: Inputs, idx: Sequence[int] | np.ndarray) -> Sequence[Any]:
    """The inputs at `idx`, as an array slice for arrays and a list otherwise."""
    if isinstance(inputs, np.ndarray):
        return cast(Sequence[Any], inputs[np.asarray(idx, dtype=np.int64)])  # an array is a sequence of rows
    return [inputs[int(i)] for i in idx]


def predict_logits(
    model: nn.Module,
    collate: Callable[[Sequence[Any]], dict[str, torch.Tensor]],
    inputs: Sequence[Any],
    batch_size: int,
    device: torch.device,
    precision: str,
) -> np.ndarray:
    """(N, n_labels) float32 logits under inference_mode; texts go longest-first (less padding)."""
    texts = len(inputs) > 0 and not isinstance(inputs, np.ndarray) and all(isinstance(x, str) for x in inputs)
    order = length_order(list(inputs)) if texts else np.arange(len(inputs))
    ordered = take(inputs, order)

    def logits_of(batch: Sequence[Any]) -> np.ndarray:
        return model(**to_device(collate(batch), device)).float().cpu().numpy()

    result = run_batched(logits_of, ordered, batch_size, device, precision)
    return unsort(np.concatenate(result.outputs), order)


class Classifier(nn.Module):
    """Backbone features -> dropout -> a fresh linear head (initialised from the global RNG)."""

    def __init__(self, backbone: nn.Module, feature_dim: int, n_labels: int, dropout: float) -> None:
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feature_dim, n_labels)

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        features = self.backbone(**batch)
        return self.head(self.dropout(features.float()))


def freeze_bottom(backbone: TrainableBackbone, n: int) -> list[nn.Module]:
    """Turn off gradients for the bottom `n` blocks; returns them (the trainer keeps them in eval mode)."""
    if n > len(backbone.layers):
        raise HarnessError(
            f"finetune: freeze_layers is {n}, but this backbone has only {len(backbone.layers)} freezable "
            f"blocks (embeddings/stem first). Use a value from 0 to {len(backbone.layers)}."
        )
    frozen = backbone.layers[:n]
    for layer in frozen:
        layer.requires_grad_(False)
    return frozen
