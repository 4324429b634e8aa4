"""timm: any timm model as a pooled-feature backbone (num_classes=0). Needs harness[vision] (imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.errors import HarnessError
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
from harness.models.image_preprocess import Crop, ImagePreprocessor
from harness.models.options import check_image_size, option_error, parse_options


@dataclass(frozen=True)
class TimmOptions:
    # timm model name, e.g. "resnet18.a1_in1k"; required when source is a local weights file.
    arch: str = ""
    image_size: int | None = None  # default: the model's pretrained input size
    crop: Crop = "none"

    def __post_init__(self) -> None:
        check_image_size("timm options", self.image_size)


class TimmModel(ImageBackboneAdapter):
    """source: a local weights file (+ options.arch), or a timm/hub model name loaded with pretrained=True."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.options = parse_options(spec, TimmOptions)
        self.weights_file = local_weights_file(spec)
        if self.weights_file is not None and not self.options.arch:
            raise option_error(
                spec, "arch", "is required with a local weights file: the timm model name it fits."
            )
        self.model_name = (
            self.options.arch if self.weights_file is not None else (spec.source or self.options.arch)
        )
        if not self.model_name:
            raise HarnessError(
                f'Model "{spec.name}" (timm): give source (a timm model name such as "resnet18.a1_in1k", '
                '"hf-hub:org/name", or a local weights file with options.arch).'
            )

    def load(self) -> LoadedImageModel:
        timm = import_optional("timm", self.spec)
        try:
            network = timm.create_model(self.model_name, pretrained=self.weights_file is None, num_classes=0)
        except RuntimeError as err:  # timm raises RuntimeError("Unknown model ...") for bad names
            raise HarnessError(
                f'Model "{self.spec.name}" (timm): cannot create "{self.model_name}": {err}'
            ) from err
        if self.weights_file is not None:
            load_backbone_weights(
                network, load_weights_file(self.weights_file, self.spec), self.spec, self.weights_file
            )
        data_config = timm.data.resolve_model_data_config(network)
        image_size = self.options.image_size or int(data_config["input_size"][-1])
        mean, std = _rgb(data_config["mean"]), _rgb(data_config["std"])
        features = PixelFeatures(network.eval())
        return LoadedImageModel(
            features=features,
            preprocessor=ImagePreprocessor(image_size, mean, std, self.options.crop),
            feature_dim=probe_feature_dim(features, image_size),
            description=f"timm {self.model_name}, {image_size}px",
        )


def _rgb(values: Sequence[float]) -> tuple[float, float, float]:
    r, g, b = (float(v) for v in values)
    return r, g, b
