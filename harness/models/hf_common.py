"""Pieces the transformers-based families share: loading errors, pooling, batching by length, trainable copies."""

from __future__ import annotations

import copy
import pickle
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from torch import nn

from harness.devices import host_rows, run_batched
from harness.errors import HarnessError
from harness.models.base import ModelSpec, TrainableBackbone
from harness.models.outputs import as_texts, checked_features, length_order, unsort

# What from_pretrained raises for a source it cannot use: a missing or unreadable folder or hub id (OSError), a
# config it cannot read or custom code it may not run (ValueError), a .bin/.pt that is a pickle of more than
# tensors (torch.load with weights_only=True refuses it), a damaged .safetensors file, a JSON nested too deeply.
# A config.json holding null or a list where transformers expects a mapping: TypeError, AttributeError or
# KeyError from inside its parsing (only from_pretrained calls are guarded with these).
LOAD_ERRORS: tuple[type[Exception], ...] = (
    OSError, ValueError, pickle.UnpicklingError, SafetensorError, RecursionError, TypeError, AttributeError, KeyError
)


def _files_in(source: str, patterns: tuple[str, ...]) -> str:
    """' (a.bin, b.pt)': the names in a local source folder matching `patterns`, or '' (hub id, none)."""
    folder = Path(source)
    names = sorted({p.name for pattern in patterns for p in folder.glob(pattern)}) if folder.is_dir() else []
    return f" ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})" if names else ""


def _unpickler_finding(err: Exception) -> str:
    """What torch's weights-only unpickler refused ('Unsupported global: GLOBAL posix.system ...'), without
    the rest of its message, which advises loading with weights_only=False (running the file's code)."""
    for pattern in (r"WeightsUnpickler error:\s*([^\n]+?)\.?(?: Please|\n|$)", r"(Trying to load unsupported GLOBAL [^\n]+?)\.?(?:\n|$)"):
        match = re.search(pattern, str(err))
        if match:
            return match.group(1).strip()
    return ""


def unsafe_pickle_error(where: str, files: str, err: pickle.UnpicklingError) -> HarnessError:
    """torch.load(weights_only=True) refused a file: `where` says which model and source, `files` (' (a.bin)',
    or '') which file. torch's own message advises weights_only=False; only what it refused is kept."""
    found = _unpickler_finding(err)
    return HarnessError(
        f"{where}: a PyTorch weights file{files} is not "
        "a file of tensors that loads safely: it is a pickle of other objects (which could run code when "
        "loaded) or not a PyTorch file at all. The harness loads such files as tensors only (torch.load with "
        "weights_only=True), so it was refused and no code in it ran"
        f"{f' ({found})' if found else ''}. Use weights saved as tensors only (safetensors, or a plain state "
        "dict) from a source you trust."
    )


def load_error(spec: ModelSpec, source: str, err: Exception) -> HarnessError:
    at = f" at revision {spec.revision!r}" if spec.revision else ""
    where = f'Could not load model "{spec.name}" ({spec.family}) from "{source}"{at}'
    if isinstance(err, pickle.UnpicklingError):
        return unsafe_pickle_error(where, _files_in(source, ("*.bin", "*.pt", "*.pth", "*.ckpt")), err)
    if isinstance(err, SafetensorError):
        return HarnessError(
            f"{where}: a safetensors weights file{_files_in(source, ('*.safetensors',))} cannot be read "
            f"(SafetensorError: {err}); it is truncated or not a safetensors file. Copy the weights again."
        )
    if isinstance(err, RecursionError):
        return HarnessError(
            f"{where}: a JSON file in it (config.json, tokenizer files) is nested too deeply to read ({err}); "
            "it is damaged or not the model's file."
        )
    message = " ".join(str(err).split())  # one paragraph: third-party messages span lines
    if not spec.trust_remote_code and ("custom code" in message or "third-party code" in message):
        # transformers' own advice (a Python argument, a hub URL made of a local path) is left out.
        first = str(err).strip().splitlines()[0].strip()
        return HarnessError(
            f"{where}: {first} No code from a model folder or hub repository runs unless the model's suite "
            "entry opts in, and none ran: to run it, set trust_remote_code: true on this model (only for a "
            "source you trust; its .py files run with your permissions)."
        )
    return HarnessError(
        f"{where}: {type(err).__name__}: {message}. "
        "The source must be a local directory with config.json and weights, or a hub id reachable from "
        "this machine (offline machines: point source at a local copy)."
    )


@contextmanager
def quiet_loading_report() -> Iterator[None]:
    """transformers' load report (weights missing, unexpected or newly initialised) off while a model loads:
    check_weights_loaded turns the missing encoder weights that matter into the job's one error, and a pooler
    or a new task head being initialised is expected, not news."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def check_weights_loaded(spec: ModelSpec, source: str, model: Any, missing_keys: Sequence[str]) -> None:
    """HarnessError when the checkpoint lacked weights of the encoder itself: from_pretrained fills those with
    random values and only logs it, and a randomly initialised encoder would be benchmarked as the pretrained
    one. A task head the family adds (a classifier) and the pooler (unused by mean or CLS pooling) may be new."""
    base = model.base_model
    prefix = f"{model.base_model_prefix}."
    own = [name for name, _ in base.named_parameters()]
    lacking = {k.removeprefix(prefix) for k in missing_keys}
    missing = [name for name in own if name in lacking and not name.startswith("pooler.")]  # the model's order
    if missing:
        raise HarnessError(
            f'Could not load model "{spec.name}" ({spec.family}) from "{source}": its checkpoint lacks {len(missing)} of '
            f"the encoder's {len(own)} weight tensors (e.g. {', '.join(missing[:3])}), which would run with random "
            "values. Copy the weights again, or check that the source is this model's folder or hub id."
        )


def check_tokenizer(spec: ModelSpec, source: str, tokenizer: Any, config: Any) -> None:
    """HarnessError when the tokenizer knows far fewer tokens than the model's embedding has rows: with its
    vocabulary files missing, transformers builds one of a few special tokens, every word becomes [UNK], and
    the run scores chance while looking done. (A vocabulary padded to a round size is a few rows short.)"""
    rows = getattr(config, "vocab_size", None)
    if isinstance(rows, int) and rows > 0 and len(tokenizer) < rows // 2:
        raise HarnessError(
            f'Could not load model "{spec.name}" ({spec.family}) from "{source}": its tokenizer knows {len(tokenizer):,} '
            f"tokens for an embedding of {rows:,}: the vocabulary files (tokenizer.json, vocab.txt, ...) are missing "
            "or not this model's, and every word would read as unknown. Copy the tokenizer files again."
        )


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(B, T, H) token states -> (B, H), ignoring padding; computed in float32 even under autocast."""
    hidden = hidden.float()
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    if pooling == "max":
        return hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).amax(dim=1)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class PooledEncoder(nn.Module):
    """A transformers encoder + pooling: forward(**tokenized batch) -> pooled features (B, H)."""

    def __init__(self, encoder: nn.Module, pooling: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(**batch).last_hidden_state
        return pool(hidden, batch["attention_mask"], self.pooling)


def transformer_layers(model: nn.Module) -> list[nn.Module]:
    """Embeddings first, then the stack of transformer blocks, whatever the architecture calls them."""
    config = getattr(model, "config", None)
    n_layers = getattr(config, "num_hidden_layers", None)
    blocks: list[nn.Module] = []
    for module in model.modules():
        if (
            isinstance(module, nn.ModuleList)
            and len(module) > 0
            and (n_layers is None or len(module) == n_layers)
        ):
            blocks = list(module)
            break
    embeddings = getattr(model, "embeddings", None)
    if not isinstance(embeddings, nn.Module):
        get_embeddings = getattr(model, "get_input_embeddings", None)
        embeddings = get_embeddings() if callable(get_embeddings) else None
    return ([embeddings] if isinstance(embeddings, nn.Module) else []) + blocks


def trainable_copy(model: nn.Module) -> nn.Module:
    """A deep copy in float32 with every parameter trainable; the cached inference model is untouched."""
    clone = copy.deepcopy(model).float()
    clone.requires_grad_(True)
    return clone


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def module_bytes(model: nn.Module) -> int:
    """Bytes of the parameters and buffers by their actual dtype (a bf16 copy is half an fp32 one);
    tensors shared between modules (tied embeddings) count once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for tensor in [*model.parameters(), *model.buffers()]:
        ident = (tensor.data_ptr(), tensor.numel())
        if ident in seen:
            continue
        seen.add(ident)
        total += tensor.numel() * tensor.element_size()
    return total


def max_length_for(tokenizer: Any, requested: int, config: Any = None) -> int:
    """The smallest of the spec's max_length, what the tokenizer says the model accepts and the model's
    position embeddings (`config`): a tokenizer saved without model_max_length says nothing, and a longer
    input fails in the embeddings ("The size of tensor a (256) must match the size of tensor b (128)")."""
    limits = [requested]
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        limits.append(limit)
    if (positions := position_limit(config)) is not None:
        limits.append(positions)
    return min(limits)


_OFFSET_POSITIONS = frozenset({"roberta", "xlm-roberta", "camembert", "longformer", "mpnet", "data2vec-text"})


def position_limit(config: Any) -> int | None:
    """How many tokens the model's learned position embeddings cover, if the config says."""
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int) or positions <= 0:
        return None
    if getattr(config, "model_type", None) in _OFFSET_POSITIONS:
        # RoBERTa-style models number positions from padding_idx + 1 (514 embeddings serve 512 tokens)
        positions -= (getattr(config, "pad_token_id", None) or 0) + 1
    return positions if positions > 0 else None


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
    encoded = tokenizer(
        list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    return dict(encoded)


def encoder_backbone(
    encoder: nn.Module, pooling: str, tokenizer: Any, max_length: int, feature_dim: int
) -> TrainableBackbone:
    """A trainable float32 copy of a transformers encoder + pooling, its layers embeddings-first (fine-tune)."""
    module = PooledEncoder(trainable_copy(encoder), pooling)
    return TrainableBackbone(
        module=module,
        collate=Tokenize(tokenizer, max_length),
        feature_dim=feature_dim,
        layers=transformer_layers(module.encoder),
    )


class Tokenize:
    """Picklable collate function: raw texts -> tokenized batch on CPU."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, texts: Sequence[Any]) -> dict[str, torch.Tensor]:
        return tokenize(self.tokenizer, [str(t) for t in texts], self.max_length)


def embed_by_length(
    texts: Sequence[str],
    embed_batch: Callable[[Sequence[str]], torch.Tensor],
    batch_size: int,
    device: torch.device,
    precision: str,
) -> tuple[np.ndarray, int]:
    """Embed longest-first in batches (less padding, early OOM), then restore input order.

    `embed_batch` returns its rows through `devices.to_host` (no per-batch wait for the GPU).
    Returns the features and the batch size the run ended with (after any OOM back-off).
    """
    order = length_order(texts)
    result = run_batched(embed_batch, [texts[i] for i in order], batch_size, device, precision)
    return unsort(host_rows(result.outputs, device), order), result.batch_size


class LengthBatchedTextEncoder:
    """`encode` for text models that embed one length-sorted batch at a time on a torch device (`_embed_batch`);
    the batch size a call ends with (after any out-of-memory back-off) is where the next one starts."""

    spec: ModelSpec
    batch_size: int
    torch_device: torch.device

    @property
    def feature_dim(self) -> int:
        raise NotImplementedError

    def _embed_batch(self, texts: Sequence[str]) -> torch.Tensor:
        raise NotImplementedError

    def encode(self, inputs: Sequence[Any]) -> np.ndarray:
        texts = as_texts(inputs, self.spec)
        if not texts:
            return np.zeros((0, self.feature_dim), dtype=np.float32)
        features, self.batch_size = embed_by_length(
            texts, self._embed_batch, self.batch_size, self.torch_device, self.spec.precision
        )
        return checked_features(features, self.spec)
