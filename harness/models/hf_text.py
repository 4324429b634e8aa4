"""hf_text: any transformers encoder (AutoModel) + attention-masked mean or CLS pooling."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from harness.devices import to_device, to_host
from harness.models.base import ModelInfo, TrainableBackbone
from harness.models.hf_common import (
    PooledEncoder,
    Tokenize,
    module_bytes,
    parameter_count,
    pool,
    tokenize,
    trainable_copy,
    transformer_layers,
)
from harness.models.hf_pretrained import HFPretrainedAdapter
from harness.models.text_zero_shot import TorchTextEncoder


class HFTextEncoder(HFPretrainedAdapter, TorchTextEncoder):
    def info(self) -> ModelInfo:
        return self.model_info(
            params=parameter_count(self.model),
            weight_bytes=module_bytes(self.model),
            description=f"{self.model.config.model_type} encoder, {self.pooling} pooling, max {self.max_length} tokens",
            feature_dim=self.feature_dim,
        )

    def _embed_batch(self, texts: Sequence[str]) -> torch.Tensor:
        batch = to_device(tokenize(self.tokenizer, texts, self.max_length), self.torch_device)
        pooled = pool(self.model(**batch).last_hidden_state, batch["attention_mask"], self.pooling)
        if self.spec.normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return to_host(pooled)

    def trainable_backbone(self) -> TrainableBackbone:
        module = PooledEncoder(trainable_copy(self.model), self.pooling)
        return TrainableBackbone(
            module=module,
            collate=Tokenize(self.tokenizer, self.max_length),
            feature_dim=self.feature_dim,
            layers=transformer_layers(module.encoder),
        )
