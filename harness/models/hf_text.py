"""hf_text: any transformers encoder (AutoModel) + attention-masked mean or CLS pooling."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from harness.devices import to_device, to_host
from harness.models.base import ModelInfo, TrainableBackbone
from harness.models.hf_common import (
    pool,
    tokenize,
)
from harness.models.hf_pretrained import HFPretrainedAdapter
from harness.models.text_zero_shot import TorchTextEncoder


class HFTextEncoder(HFPretrainedAdapter, TorchTextEncoder):
    def info(self) -> ModelInfo:
        description = f"{self.model.config.model_type} encoder, {self.pooling} pooling, max {self.max_length} tokens"
        return self.module_info(self.model, description, self.feature_dim)

    def _embed_batch(self, texts: Sequence[str]) -> torch.Tensor:
        batch = to_device(tokenize(self.tokenizer, texts, self.max_length), self.torch_device)
        pooled = pool(self.model(**batch).last_hidden_state, batch["attention_mask"], self.pooling)
        if self.spec.normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return to_host(pooled)

    def trainable_backbone(self) -> TrainableBackbone:
        return self.encoder_backbone(self.model)
