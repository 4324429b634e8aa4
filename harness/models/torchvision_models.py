"""torchvision: a torchvision.models classifier with its head removed. Needs harness[vision] (imported lazily)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from harness.errors import HarnessError, close_match
from harness.models.base import ModelSpec
from harness.models.image_encoder import (
    ImageBackboneAdapter,
    LoadedImageModel,
    PixelFeatures,
    import_optional,
    load_backbone_weights,
    load_weights_file,
    local_weights_file,
    probe_feature_dim,
)
from harness.models.image_preprocess import NORMALIZATIONS, Crop, ImagePreprocessor
from harness.models.options import check_image_size, option_error, parse_options

# Attribute names torchvision classifiers use for their final classifier, in lookup order.
_HEAD_ATTRIBUTES = ("fc", "classifier", "heads", "head")


@dataclass(frozen=True)
class TorchvisionOptions:
    arch: str = ""  # torchvision.models name, e.g. "resnet18"
    # torchvision weights name ("DEFAULT", "IMAGENET1K_V1"; downloaded by torchvision) when source is not a file.
    weights: str | None = None
    image_size: int = 224
    normalization: Literal["imagenet", "inception"] = "imagenet"
    crop: Crop = "none"

    def __post_init__(self) -> None:
        check_image_size("torchvision options", self.image_size)


class TorchvisionClassifier(ImageBackboneAdapter):
    zero_shot_reason = "its head scores ImageNet classes and it has no text side to score task labels"

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.options = parse_options(spec, TorchvisionOptions)
        if not self.options.arch:
            raise option_error(spec, "arch", 'is required: the torchvision.models name, e.g. "resnet18".')
        self.weights_file = local_weights_file(spec)
        if spec.source and self.weights_file is None:
            raise HarnessError(
                f'Model "{spec.name}" (torchvision): source "{spec.source}" is not a weights file on disk.'
            )
        if (self.weights_file is None) == (self.options.weights is None):
            raise HarnessError(
                f'Model "{spec.name}" (torchvision): give exactly one of source (a local .pth/.safetensors '
                'state dict) or options.weights (a torchvision weights name such as "DEFAULT").'
            )

    def load(self) -> LoadedImageModel:
        models = import_optional("torchvision", self.spec).models
        arch = self.options.arch
        available = models.list_models()
        if arch not in available:
            raise option_error(
                self.spec, "arch", f'"{arch}" is not a torchvision model.{close_match(arch, available)}'
            )
        if self.weights_file is not None:
            network = models.get_model(arch, weights=None)
            head = _remove_head(network, self.spec)
            load_backbone_weights(
                network, load_weights_file(self.weights_file, self.spec), self.spec, self.weights_file
            )
        else:
            network = models.get_model(arch, weights=self.options.weights)
            head = _remove_head(network, self.spec)
        features = PixelFeatures(network.eval())
        mean, std = NORMALIZATIONS[self.options.normalization]
        return LoadedImageModel(
            features=features,
            preprocessor=ImagePreprocessor(self.options.image_size, mean, std, self.options.crop),
            feature_dim=probe_feature_dim(features, self.options.image_size),
            description=f"torchvision {arch} ({self.options.weights or self.weights_file}), {head} removed",
        )


def _remove_head(network: nn.Module, spec: ModelSpec) -> str:
    """Replace the final Linear of the classifier with Identity, keeping any pre-logits layers before it
    (ConvNeXt's norm + flatten, MobileNetV3's hidden layer, VGG's fc6/fc7)."""
    for name in _HEAD_ATTRIBUTES:
        head = getattr(network, name, None)
        if isinstance(head, nn.Linear):
            setattr(network, name, nn.Identity())
            return f"{name} (Linear)"
        if isinstance(head, nn.Sequential):
            last_linear = max((i for i, m in enumerate(head) if isinstance(m, nn.Linear)), default=None)
            if last_linear is not None:
                head[last_linear] = nn.Identity()
                return f"{name}[{last_linear}] (Linear)"
    raise HarnessError(
        f'Model "{spec.name}" (torchvision): cannot find the final Linear classifier of {type(network).__name__} '
        f"(looked for {', '.join(_HEAD_ATTRIBUTES)}); this architecture is not supported as a feature extractor."
    )
