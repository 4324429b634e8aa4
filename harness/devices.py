"""Device selection, bf16 autocast, host->device copies, and batched inference that backs off on CUDA OOM."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, get_args

import numpy as np
import torch

from harness.errors import HarnessError, close_match
from harness.models.base import DeviceKind
from harness.models.inference_plan import precision_rule

_DEVICE_WORDS: tuple[str, ...] = get_args(DeviceKind)

T = TypeVar("T")


def resolve_device(name: str = "auto") -> torch.device:
    """Map "auto" to the current CUDA device when one is usable, else CPU; "cpu", "cuda", "cuda:N" as asked."""
    text = (name or "auto").strip().lower()
    if text == "auto":
        return (
            torch.device("cuda", torch.cuda.current_device())
            if torch.cuda.is_available()
            else torch.device("cpu")
        )
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise HarnessError(
                f'Device "{name}" was asked for, but torch {torch.__version__} sees no usable CUDA GPU. '
                "Use device: auto (GPU when present, CPU otherwise) or device: cpu."
            )
        try:
            device = torch.device(text)
        except RuntimeError:
            raise HarnessError(
                f'Device "{name}" is malformed: expected cuda or cuda:N with N a GPU index.'
            ) from None
        index = torch.cuda.current_device() if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise HarnessError(
                f'Device "{name}": this machine has {torch.cuda.device_count()} CUDA device(s), '
                f"indices 0..{torch.cuda.device_count() - 1}."
            )
        return torch.device("cuda", index)
    raise HarnessError(
        f'Unknown device "{name}".{close_match(text, _DEVICE_WORDS)} Expected auto, cpu, cuda or cuda:N.'
    )


def effective_precision(device: torch.device, requested: str) -> str:
    """The precision that will actually run here: bf16 only on a CUDA device that supports it, else fp32."""
    return precision_rule(device.type, requested, device.type == "cuda" and torch.cuda.is_bf16_supported())


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[str]:
    """bf16 autocast on CUDA when asked for; a no-op otherwise. Yields the precision actually used."""
    used = effective_precision(device, precision)
    if used == "bf16":
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            yield used
    else:
        yield used


def synchronize(device: torch.device | str) -> None:
    """Wait for queued CUDA work (timing must not stop while kernels still run); no-op on CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """Move the tensors of a batch to `device`; on CUDA via pinned memory with asynchronous copies."""
    return {
        key: tensor_to_device(value, device) if isinstance(value, torch.Tensor) else value
        for key, value in batch.items()
    }


def tensor_to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def to_host(tensor: torch.Tensor) -> torch.Tensor:
    """A float32 CPU copy. From CUDA the copy is asynchronous, into pinned memory, so the host can
    prepare the next batch while the GPU still works: read it only after `synchronize` (`host_rows` does)."""
    tensor = tensor.float()
    if tensor.device.type == "cuda":
        return tensor.to("cpu", non_blocking=True)
    return tensor


def host_rows(outputs: Sequence[torch.Tensor | np.ndarray], device: torch.device) -> np.ndarray:
    """Per-batch `to_host` outputs (or arrays) -> one (N, ...) array, after a single wait for the GPU."""
    synchronize(device)
    return np.concatenate([out.numpy() if isinstance(out, torch.Tensor) else np.asarray(out) for out in outputs])


@dataclass(frozen=True)
class BatchedResult(Generic[T]):
    outputs: list[T]  # one entry per batch, in input order
    batch_size: int  # the batch size the run ended with (smaller than asked after an OOM back-off)


def run_batched(
    fn: Callable[[Any], T],
    items: Sequence[Any] | np.ndarray,
    batch_size: int,
    device: torch.device,
    precision: str = "fp32",
) -> BatchedResult[T]:
    """Run `fn` over consecutive slices of `items` under inference_mode (and bf16 autocast if asked).

    On CUDA out-of-memory the failed batch is retried at half the size, down to 1; an OOM at batch
    size 1 is re-raised. Batches already done are kept, so a back-off costs one failed batch.
    """
    if batch_size < 1:
        raise HarnessError(f"batch_size must be at least 1, got {batch_size}.")
    outputs: list[T] = []
    size = batch_size
    start = 0
    while start < len(items):
        batch = items[start : start + size]
        out_of_memory = False
        try:
            with torch.inference_mode(), autocast(device, precision):
                outputs.append(fn(batch))
        except torch.cuda.OutOfMemoryError:
            if size == 1:
                raise
            out_of_memory = True
        if out_of_memory:
            # Outside the except block, so the exception's frames (holding activations) are gone.
            release_cuda_memory()
            size = max(1, size // 2)
            continue
        start += len(batch)
    return BatchedResult(outputs=outputs, batch_size=size)


def release_cuda_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
