"""sentence_transformers: a SentenceTransformer model (its own pooling and normalisation modules)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from sentence_transformers import SentenceTransformer
from torch import nn

from harness.devices import to_device, to_host
from harness.errors import NotApplicable
from harness.models import resolve_source
from harness.models.base import POOLINGS, ModelInfo, ModelSpec, TrainableBackbone, require_source
from harness.models.hf_common import (
    LOAD_ERRORS,
    PooledEncoder,
    Tokenize,
    check_tokenizer,
    check_weights_loaded,
    load_error,
    position_limit,
    quiet_loading_report,
    trainable_copy,
    transformer_layers,
)
from harness.models.text_zero_shot import TorchTextEncoder
from harness.models.torch_adapter import TorchAdapter


class SentenceTransformerEncoder(TorchAdapter, TorchTextEncoder):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        require_source(spec, "sentence-transformers/all-MiniLM-L6-v2")
        self.source = resolve_source(spec.source)

    @cached_property
    def model(self) -> SentenceTransformer:
        try:
            with quiet_loading_report():
                model = SentenceTransformer(
                    self.source,
                    revision=self.spec.revision,
                    trust_remote_code=self.spec.trust_remote_code,
                    device=str(self.torch_device),
                )
        except LOAD_ERRORS as err:
            raise load_error(self.spec, self.source, err) from err
        encoder = getattr(model[0], "auto_model", None)
        if encoder is not None:
            self._check_weights(encoder)
            if getattr(model, "tokenizer", None) is not None:
                check_tokenizer(self.spec, self.source, model.tokenizer, encoder.config)
        # The folder's max_seq_length (sentence_bert_config.json) may exceed what the position embeddings cover:
        # a longer text then failed the job with a tensor size mismatch. The smallest of the three limits.
        limits = [self.spec.max_length, model.max_seq_length, position_limit(encoder.config) if encoder is not None else None]
        model.max_seq_length = min(n for n in limits if n)
        return model.eval()

    def _check_weights(self, encoder: Any) -> None:
        """SentenceTransformer reports no loading info: for a local folder of .safetensors weights, the
        encoder's parameters are looked up among the files' tensor names (their headers only)."""
        folder = Path(str(getattr(encoder, "name_or_path", "")))
        files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
        if not files:
            return
        stored: set[str] = set()
        for file in files:
            try:
                with safe_open(str(file), "pt") as weights:
                    stored.update(weights.keys())
            except (OSError, SafetensorError) as err:
                raise load_error(self.spec, self.source, err) from err
        prefix = f"{encoder.base_model_prefix}."
        missing = [n for n, _ in encoder.named_parameters() if n not in stored and prefix + n not in stored]
        check_weights_loaded(self.spec, self.source, encoder, missing)

    @property
    def max_length(self) -> int:
        return int(self.model.max_seq_length or self.spec.max_length)

    @property
    def feature_dim(self) -> int:
        # get_embedding_dimension since sentence-transformers 6; the older name before.
        get_dim = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        if dim is None:
            raise NotApplicable(
                f"sentence-transformers model {self.spec.name!r} does not report its embedding size."
            )
        return int(dim)

    def info(self) -> ModelInfo:
        return self.module_info(self.model, f"sentence-transformers model, max {self.max_length} tokens", self.feature_dim)

    def _embed_batch(self, texts: Sequence[str]) -> torch.Tensor:
        """What SentenceTransformer.encode() does for one batch, without its per-row Python work:
        tokenize, pinned copy to the device, forward, truncate, normalise."""
        features = to_device(self._tokenize(list(texts)), self.torch_device)
        embeddings = self.model(features)["sentence_embedding"]
        truncate_dim = getattr(self.model, "truncate_dim", None)
        if truncate_dim:
            embeddings = embeddings[:, :truncate_dim]
        if self.spec.normalize:
            embeddings = torch.nn.functional.normalize(embeddings, p=2, dim=1)
        return to_host(embeddings)

    def _tokenize(self, texts: list[str]) -> dict[str, Any]:
        prompt_name = getattr(self.model, "default_prompt_name", None)
        prompt = (getattr(self.model, "prompts", None) or {}).get(prompt_name) if prompt_name else None
        preprocess = getattr(self.model, "preprocess", None)  # sentence-transformers >= 6; tokenize() before
        if preprocess is not None:
            return dict(preprocess(texts, prompt=prompt))
        return dict(self.model.tokenize([prompt + t for t in texts] if prompt else texts))

    def trainable_backbone(self) -> TrainableBackbone:
        """The underlying transformer + the model's own pooling mode (mean, cls or max)."""
        transformer = self.model[0]
        encoder = getattr(transformer, "auto_model", None) or getattr(transformer, "model", None)
        if not isinstance(encoder, nn.Module) or len(self.model) < 2:
            raise NotApplicable(
                f"sentence-transformers model {self.spec.name!r} is not a transformer + pooling stack."
            )
        pooling = _pooling_mode(self.model[1])
        if pooling not in POOLINGS:
            raise NotApplicable(
                f"sentence-transformers model {self.spec.name!r} pools with {pooling!r}; fine-tuning supports "
                f"{', '.join(POOLINGS)}."
            )
        module = PooledEncoder(trainable_copy(encoder), pooling)
        return TrainableBackbone(
            module=module,
            collate=Tokenize(self.model.tokenizer, self.max_length),
            feature_dim=self.feature_dim,
            layers=transformer_layers(module.encoder),
        )


def _pooling_mode(pooling_module: nn.Module) -> str:
    mode = getattr(pooling_module, "pooling_mode", None)  # sentence-transformers >= 6
    if not isinstance(mode, str):
        get_mode = getattr(pooling_module, "get_pooling_mode_str", None)
        mode = get_mode() if callable(get_mode) else "unknown"
    return {"cls_token": "cls", "mean_tokens": "mean", "max_tokens": "max"}.get(mode, mode)
