"""Base for adapters that run a torch model: device and precision from the spec, OOM-adjusted batch size."""

from __future__ import annotations

from abc import ABC

import torch

from harness.devices import effective_precision, resolve_device
from harness.errors import HarnessError
from harness.models.base import ModelAdapter, ModelInfo, ModelSpec
from harness.models.hf_common import module_bytes, parameter_count


class TorchAdapter(ModelAdapter, ABC):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        if spec.batch_size < 1:
            raise HarnessError(f'Model "{spec.name}": batch_size must be at least 1, got {spec.batch_size}.')
        self.torch_device: torch.device = resolve_device(spec.device)
        self._precision = effective_precision(self.torch_device, spec.precision)
        # Lowered after a CUDA out-of-memory back-off, so later calls start from a size that fits.
        self.batch_size = spec.batch_size

    @property
    def device(self) -> str:
        return str(self.torch_device)

    @property
    def precision(self) -> str:
        return self._precision

    def module_info(self, module: torch.nn.Module, description: str, feature_dim: int | None) -> ModelInfo:
        """ModelInfo with the parameter count and weight bytes of the torch module that computes the features."""
        return self.model_info(
            params=parameter_count(module), weight_bytes=module_bytes(module), description=description, feature_dim=feature_dim
        )
