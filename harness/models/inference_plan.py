"""What a model runs as (device kind and precision) on machines like an Accelerator, worked out at plan time for
the job key without loading the model, and without importing torch: the re-run of a finished suite plans every
job. harness.devices applies the same precision rule where the model runs."""

from __future__ import annotations

from harness.errors import HarnessError, close_match
from harness.models.base import PRECISIONS, Accelerator, Inference, ModelSpec


def planned_inference(spec: ModelSpec, accelerator: Accelerator) -> Inference:
    """What a torch model of `spec` will run as on a machine like `accelerator` (the rules of resolve_device and
    effective_precision), part of its job key. An explicit cuda where no GPU is known (a Ray driver planning for a
    cluster without GPUs) is planned as asked: the worker checks what it resolves against the plan, and the local
    executor refuses the device before any job."""
    text = spec.device.strip().lower()
    if text == "cpu" or (text == "auto" and not accelerator.cuda):
        return Inference("cpu", precision_rule("cpu", spec.precision, bf16_supported=False))
    if not accelerator.cuda:
        return Inference("cuda", spec.precision)
    return Inference("cuda", precision_rule("cuda", spec.precision, accelerator.bf16))


def precision_rule(device: str, requested: str, bf16_supported: bool) -> str:
    """The precision that runs on a `device` kind ("cpu", "cuda") whose bf16 support is known."""
    if requested not in PRECISIONS:
        raise HarnessError(
            f'Unknown precision "{requested}".{close_match(requested, PRECISIONS)} Expected one of: '
            f"{', '.join(PRECISIONS)}."
        )
    if requested == "bf16" and device == "cuda" and bf16_supported:
        return "bf16"
    return "fp32"
