"""What a fine-tuning run needs from the torch runtime: this GPU's training precision, backend settings, peak memory.

Kept apart from the training loop so the precision benchmark script can share it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch

from harness.protocols.train_precision import TrainPrecision, train_precision_rule

# timing's sampler of resident memory (CPU has no allocator peak counter); private there, shared here.
from harness.timing import RssPeak


def training_precision(device: torch.device, requested: str) -> TrainPrecision:
    """The precision a run on `device` trains in (train_precision_rule, with this GPU's bf16 support)."""
    return train_precision_rule(device.type, requested, device.type == "cuda" and torch.cuda.is_bf16_supported())


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
