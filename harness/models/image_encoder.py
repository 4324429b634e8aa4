"""Base for torch image backbones (efficientnet_lite, torchvision, timm): batching, features, trainable copies."""

from __future__ import annotations

import importlib
import importlib.util
import pickle
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from torch import nn

from harness.devices import host_rows, run_batched, tensor_to_device, to_host
from harness.errors import HarnessError, NotApplicable
from harness.models import resolve_source
from harness.models.base import ModelInfo, ModelSpec, TrainableBackbone
from harness.models.hf_common import module_bytes, parameter_count, trainable_copy, unsafe_pickle_error
from harness.models.image_preprocess import ImagePreprocessor, uint8_images
from harness.models.outputs import checked_features
from harness.models.torch_adapter import TorchAdapter
from harness.tasks import Modality, TaskSpec


class PixelFeatures(nn.Module):
    """Wraps a network whose forward(images) already returns pooled features (head removed)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.network(pixel_values)


@dataclass(frozen=True, eq=False)
class LoadedImageModel:
    features: nn.Module  # forward(pixel_values=(B, 3, S, S)) -> (B, D)
    preprocessor: ImagePreprocessor
    feature_dim: int
    description: str


class ImageBackboneAdapter(TorchAdapter):
    modality: Modality = "image"
    zero_shot_reason = "it is an image classifier with no text side, so it cannot score arbitrary task labels"

    @abstractmethod
    def load(self) -> LoadedImageModel:
        """Build the network with its weights on CPU; the base class moves it and sets eval mode."""

    def layers(self, features: nn.Module) -> list[nn.Module]:
        """Blocks of `features` in input-to-output order (trainable_backbone freezes a prefix)."""
        return ordered_blocks(features)

    @cached_property
    def loaded(self) -> LoadedImageModel:
        model = self.load()
        model.features.to(self.torch_device).eval()
        return model

    def info(self) -> ModelInfo:
        return self.model_info(
            params=self.parameter_count(),
            description=self.loaded.description,
            feature_dim=self.loaded.feature_dim,
            weight_bytes=module_bytes(self.loaded.features),
        )

    def parameter_count(self) -> int:
        return parameter_count(self.loaded.features)

    def encode(self, inputs: Sequence[Any] | np.ndarray) -> np.ndarray:
        images = uint8_images(inputs)
        if len(images) == 0:
            return np.zeros((0, self.loaded.feature_dim), dtype=np.float32)
        result = run_batched(
            self._embed_batch, images, self.batch_size, self.torch_device, self.spec.precision
        )
        self.batch_size = result.batch_size
        return checked_features(host_rows(result.outputs, self.torch_device), self.spec)

    def _embed_batch(self, images: Sequence[Any] | np.ndarray) -> torch.Tensor:
        pixels = tensor_to_device(self.loaded.preprocessor.pixels(images), self.torch_device)
        features = self.loaded.features(pixel_values=pixels)
        if self.spec.normalize:
            features = torch.nn.functional.normalize(features.float(), dim=-1)
        return to_host(features)

    def zero_shot_scores(self, inputs: Sequence[Any], task: TaskSpec) -> np.ndarray:
        raise NotApplicable(
            f"{self.spec.family} model {self.spec.name!r} has no zero-shot mode: {self.zero_shot_reason}."
        )

    def trainable_features(self) -> nn.Module:
        """A fresh trainable copy of the features module (the cached inference model is untouched)."""
        return trainable_copy(self.loaded.features)

    def trainable_backbone(self) -> TrainableBackbone:
        module = self.trainable_features()
        return TrainableBackbone(
            module=module,
            collate=self.loaded.preprocessor,
            feature_dim=self.loaded.feature_dim,
            layers=self.layers(module),
        )


def ordered_blocks(model: nn.Module) -> list[nn.Module]:
    """Children holding parameters, in order, with block lists opened up one level.

    A Sequential/ModuleList child contributes its children (ResNet's layer1 -> its blocks, torchvision
    EfficientNet's `features` -> its stages, timm ViT's `blocks` -> each block); a child that wraps such a
    list (a wrapper, torchvision ViT's Encoder) is opened up recursively.
    """
    children = [c for c in model.children() if _has_parameters(c)]
    if len(children) == 1 and not _is_block_list(children[0]) and any(True for _ in children[0].children()):
        return ordered_blocks(children[0])  # a wrapper such as PixelFeatures
    blocks: list[nn.Module] = []
    for child in children:
        if _is_block_list(child):
            blocks.extend(c for c in child.children() if _has_parameters(c))
        elif any(_is_block_list(grandchild) for grandchild in child.children()):
            blocks.extend(ordered_blocks(child))
        else:
            blocks.append(child)
    return blocks


def _is_block_list(module: nn.Module) -> bool:
    return (
        isinstance(module, nn.Sequential | nn.ModuleList) and sum(map(_has_parameters, module.children())) > 1
    )


def _has_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def import_optional(module: str, spec: ModelSpec) -> ModuleType:
    """Import torchvision/timm only when a model of that family is built; a clear error when unusable."""
    if importlib.util.find_spec(module) is None:
        raise HarnessError(
            f'Model "{spec.name}" ({spec.family}) needs the "{module}" package, which is not installed. '
            f"Install the vision extra (`pip install -e '.[vision]'`, i.e. harness[vision]) with a build that "
            f"matches the installed torch {torch.__version__}."
        )
    try:
        return importlib.import_module(module)
    # A torchvision built for another torch fails with RuntimeError, OSError or ImportError.
    except Exception as err:
        raise HarnessError(
            f'Model "{spec.name}" ({spec.family}): "{module}" is installed but does not import ({type(err).__name__}: '
            f"{err}). It must be built for the installed torch {torch.__version__}; reinstall harness[vision] "
            "with matching versions."
        ) from err


def load_weights_file(path: Path, spec: ModelSpec) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors or a torch file (weights_only: no code runs while loading)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # weights_only refused it (not a RuntimeError)
        raise unsafe_pickle_error(f'Model "{spec.name}" ({spec.family}): cannot load {path}', "", err) from err
    except (RuntimeError, OSError, ValueError, SafetensorError) as err:
        raise HarnessError(f'Model "{spec.name}": cannot read weights file {path} ({err}).') from err
    for wrapper_key in ("state_dict", "model"):  # common training-checkpoint layouts
        if isinstance(state, dict) and isinstance(state.get(wrapper_key), dict):
            state = state[wrapper_key]
    if not isinstance(state, dict):
        raise HarnessError(f'Model "{spec.name}": {path} holds a {type(state).__name__}, not a state dict.')
    return state


def load_backbone_weights(
    network: nn.Module, state: dict[str, torch.Tensor], spec: ModelSpec, path: Path
) -> None:
    """Load a full-model state dict into a network whose head was removed: head keys are ignored,
    any missing backbone key is an error (wrong architecture for the file)."""
    own = network.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in usable]
    if missing:
        raise HarnessError(
            f'Model "{spec.name}": {path} does not fit the {spec.family} architecture: {len(missing)} weights '
            f"missing or of another shape (first: {', '.join(missing[:3])}). Check options.arch."
        )
    network.load_state_dict(usable)


def probe_feature_dim(features: nn.Module, image_size: int) -> int:
    with torch.inference_mode():
        out = features(pixel_values=torch.zeros(1, 3, image_size, image_size))
    return int(out.shape[-1])


def local_weights_file(spec: ModelSpec) -> Path | None:
    """spec.source as a weights file when it names one on disk; None when it is a hub/model name or empty."""
    if not spec.source:
        return None
    resolved = Path(resolve_source(spec.source))
    if resolved.is_file():
        return resolved
    if resolved.exists():
        raise HarnessError(
            f'Model "{spec.name}" ({spec.family}): source {resolved} is a folder; give the weights file.'
        )
    return None
