"""The precision a fine-tune trains in, as a rule of the device kind and its bf16 support: the plan keys it for the
workers (without importing torch: the re-run of a finished suite plans every job) and a run applies it
(finetune_runtime.training_precision)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

TRAIN_PRECISIONS = ("auto", "bf16", "fp16", "fp32")


@dataclass(frozen=True)
class TrainPrecision:
    """The precision a training run actually uses, and why when it differs from the one asked for."""

    name: Literal["bf16", "fp16", "fp32"]
    requested: str
    note: str = ""

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        import torch

        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    @property
    def uses_grad_scaler(self) -> bool:
        # fp16 has a narrow exponent range: small gradients underflow without loss scaling. bf16 does not.
        return self.name == "fp16"

    @property
    def inference(self) -> str:
        """The value `harness.devices` takes for evaluation batches (bf16 autocast or plain fp32)."""
        return "bf16" if self.name == "bf16" else "fp32"


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
