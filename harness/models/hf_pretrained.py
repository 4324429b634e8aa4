"""Shared loading for transformers families: tokenizer + model via from_pretrained (hub id or local dir)."""

from __future__ import annotations

from functools import cached_property
from typing import Any, ClassVar

from transformers import AutoModel, AutoTokenizer, PreTrainedModel

from harness.models import resolve_source
from harness.models.base import ModelSpec, TrainableBackbone, check_pooling, require_source
from harness.models.hf_common import (
    LOAD_ERRORS,
    check_tokenizer,
    check_weights_loaded,
    encoder_backbone,
    load_error,
    max_length_for,
    quiet_loading_report,
)
from harness.models.torch_adapter import TorchAdapter


class HFPretrainedAdapter(TorchAdapter):
    """Subclasses set `auto_model_class` (AutoModel, AutoModelForSequenceClassification, ...) and an
    example hub id for error messages. Weights load on first use; revision and trust_remote_code
    come from the spec (remote code stays off unless the model opts in)."""

    auto_model_class: ClassVar[Any] = AutoModel
    example_source: ClassVar[str] = "sentence-transformers/all-MiniLM-L6-v2"

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        require_source(spec, self.example_source)
        self.pooling = check_pooling(spec)
        self.source = resolve_source(spec.source)

    def _from_pretrained(self, loader: Any, **kwargs: Any) -> Any:
        try:
            return loader.from_pretrained(
                self.source, revision=self.spec.revision, trust_remote_code=self.spec.trust_remote_code, **kwargs
            )
        except LOAD_ERRORS as err:
            raise load_error(self.spec, self.source, err) from err

    @cached_property
    def tokenizer(self) -> Any:
        return self._from_pretrained(AutoTokenizer)

    @cached_property
    def model(self) -> PreTrainedModel:
        with quiet_loading_report():
            model, info = self._from_pretrained(self.auto_model_class, output_loading_info=True)
        check_weights_loaded(self.spec, self.source, model, info.get("missing_keys", ()))
        check_tokenizer(self.spec, self.source, self.tokenizer, model.config)
        loaded: PreTrainedModel = model.to(self.torch_device).eval()
        return loaded

    @property
    def max_length(self) -> int:
        return max_length_for(self.tokenizer, self.spec.max_length, self.model.config)

    @property
    def feature_dim(self) -> int:
        return int(self.model.config.hidden_size)

    def encoder_backbone(self, encoder: Any) -> TrainableBackbone:
        """A trainable copy of `encoder` (the model, or its base without a head) + this model's pooling."""
        return encoder_backbone(encoder, self.pooling, self.tokenizer, self.max_length, self.feature_dim)
