"""What a fine-tuning run needs from the torch runtime: training precision, backend settings, peak memory.

Kept apart from the training loop so the precision benchmark script can share it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch

# timing's sampler of resident memory (CPU has no allocator peak counter); private there, shared here.
from harness.timing import RssPeak

TRAIN_PRECISIONS = ("auto", "bf16", "fp16", "fp32")


@dataclass(frozen=True)
class TrainPrecision:
    """The precision a training run actually uses, and why when it differs from the one asked for."""

    name: Literal["bf16", "fp16", "fp32"]
    requested: str
    note: str = ""

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    @property
    def uses_grad_scaler(self) -> bool:
        # fp16 has a narrow exponent range: small gradients underflow without loss scaling. bf16 does not.
        return self.name == "fp16"

    @property
    def inference(self) -> str:
        """The value `harness.devices` takes for evaluation batches (bf16 autocast or plain fp32)."""
        return "bf16" if self.name == "bf16" else "fp32"


def training_precision(device: torch.device, requested: str) -> TrainPrecision:
    """The precision a run on `device` trains in (train_precision_rule, with this GPU's bf16 support)."""
    return train_precision_rule(device.type, requested, device.type == "cuda" and torch.cuda.is_bf16_supported())


def train_precision_rule(device: str, requested: str, bf16_supported: bool) -> TrainPrecision:
    """auto: bf16 autocast on a CUDA GPU that supports it, else fp16 + GradScaler on CUDA, else fp32.

    On CPU only an explicit "bf16" turns autocast on (CPU bf16 autocast exists but is rarely faster);
    fp16 on CPU runs as fp32. `device` is a device kind ("cpu", "cuda"): the plan resolves it for the workers.
    """
    if requested not in TRAIN_PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(TRAIN_PRECISIONS)}, got {requested!r}")
    if device == "cuda":
        if requested in ("auto", "bf16") and bf16_supported:
            return TrainPrecision("bf16", requested)
        if requested == "bf16":
            return TrainPrecision(
                "fp16", requested, "this GPU has no bf16 support: fp16 autocast with GradScaler"
            )
        if requested in ("auto", "fp16"):
            return TrainPrecision("fp16", requested)
        return TrainPrecision("fp32", requested)
    if requested == "bf16":
        return TrainPrecision("bf16", requested, "CPU bf16 autocast")
    note = "fp16 autocast is CUDA-only here: fp32 on CPU" if requested == "fp16" else ""
    return TrainPrecision("fp32", requested, note)


@contextlib.contextmanager
def train_autocast(device: torch.device, precision: TrainPrecision) -> Iterator[None]:
    dtype = precision.autocast_dtype
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def grad_scaler(device: torch.device, precision: TrainPrecision) -> torch.amp.GradScaler | None:
    return torch.amp.GradScaler(device.type) if precision.uses_grad_scaler else None


def backend_state() -> dict[str, Any]:
    """The torch settings that change numerics or speed of a run, as recorded in `selected`."""
    return {
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "num_threads": torch.get_num_threads(),
    }


@contextlib.contextmanager
def backend_settings(*, deterministic: bool, tf32: bool) -> Iterator[dict[str, Any]]:
    """Apply the run's backend settings, yield them as recorded, and restore the previous ones after.

    deterministic: cuDNN picks deterministic kernels (benchmark off) and torch warns on ops without a
    deterministic implementation; off: cuDNN benchmarks kernels for speed. tf32: TF32 matmuls and
    convolutions on Ampere+ GPUs (faster fp32, ~10-bit mantissa).
    """
    saved = (
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    if deterministic:
        # cuBLAS needs this before its first use to be deterministic; harmless when already initialised.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    try:
        yield backend_state()
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[0], saved[1]
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[2], saved[3]
        torch.use_deterministic_algorithms(saved[4], warn_only=saved[5])


class PeakMemory:
    """Peak memory over a block: CUDA max allocated bytes on a GPU; on CPU the process's resident set
    size sampled while the block runs (so it includes the weights and data the process already held)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mb: float | None = None
        self.kind = "cuda_max_allocated" if device.type == "cuda" else "process_rss_peak"
        self._rss = RssPeak()

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._rss.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self._rss.__exit__(*exc)
            self.mb = self._rss.peak / 2**20
