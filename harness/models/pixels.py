"""pixels: raw pixels scaled to [0, 1] and flattened: the floor every image model must beat."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from harness.errors import DataError, NotApplicable
from harness.models.base import ModelAdapter, ModelInfo, ModelSpec
from harness.models.image_preprocess import uint8_images
from harness.models.options import check_image_size, option_error, parse_options
from harness.models.outputs import checked_features
from harness.tasks import Modality, TaskSpec


@dataclass(frozen=True)
class PixelOptions:
    # Resize every image to image_size x image_size first (needed when image sizes differ).
    image_size: int | None = None

    def __post_init__(self) -> None:
        check_image_size("pixels options", self.image_size)


class RawPixels(ModelAdapter):
    modality: Modality = "image"

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.options = parse_options(spec, PixelOptions)
        if self.options.image_size is not None and self.options.image_size < 1:
            raise option_error(spec, "image_size", f"must be at least 1, got {self.options.image_size}.")

    def info(self) -> ModelInfo:
        size = f"resized to {self.options.image_size}px, " if self.options.image_size else ""
        return self.model_info(
            params=0,
            description=f"raw pixels, {size}scaled to [0, 1] and flattened",
        )

    def encode(self, inputs: Sequence[Any] | np.ndarray) -> np.ndarray:
        images = uint8_images(inputs)
        if self.options.image_size is not None:
            images = [_resize(img, self.options.image_size) for img in images]
        if isinstance(images, np.ndarray):
            flat = images.reshape(len(images), -1)
        else:
            shapes = {img.shape for img in images}
            if len(shapes) > 1:
                raise DataError(
                    f'pixels model "{self.spec.name}": images have {len(shapes)} different shapes (e.g. '
                    f"{sorted(shapes)[:2]}); set options.image_size to resize them to one size."
                )
            flat = (
                np.stack([img.reshape(-1) for img in images]) if images else np.zeros((0, 0), dtype=np.uint8)
            )
        return checked_features(flat.astype(np.float32) / 255.0, self.spec)

    def zero_shot_scores(self, inputs: Sequence[Any], task: TaskSpec) -> np.ndarray:
        raise NotApplicable(
            f"pixels model {self.spec.name!r} has no zero-shot mode: raw pixels know no labels."
        )

    @property
    def feature_cache_id(self) -> str | None:
        return None


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) uint8 -> (size, size, C) uint8, bilinear with antialiasing."""
    x = torch.tensor(image).permute(2, 0, 1)[None].float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
