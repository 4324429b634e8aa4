"""Image inputs -> normalised float tensors, shared by the image families.

Inputs are a uint8 array (N, H, W, C) or (N, H, W), or a list of uint8 arrays (H, W, C) / (H, W) of any
sizes. Grey images are repeated to 3 channels and an alpha channel is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from harness.errors import DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# TensorFlow "inception" scaling to [-1, 1] ((x - 127) / 128 in the original EfficientNet-Lite code).
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)
NORMALIZATIONS = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD), "inception": (INCEPTION_MEAN, INCEPTION_STD)}

Crop = Literal["none", "center"]


@dataclass(frozen=True)
class ImagePreprocessor:
    """Callable: images -> (N, 3, size, size) float32 CPU tensor (the collate function of image backbones).

    crop "none" resizes the whole image to a square (aspect not kept); "center" takes the largest
    centred square first, the usual ImageNet evaluation view.
    """

    image_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    crop: Crop = "none"

    def __call__(self, images: Sequence[Any] | np.ndarray) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.pixels(images)}

    def pixels(self, images: Sequence[Any] | np.ndarray) -> torch.Tensor:
        batch = uint8_images(images)
        if len(batch) == 0:
            return torch.zeros((0, 3, self.image_size, self.image_size))
        if isinstance(batch, np.ndarray):
            return self._one(torch.tensor(batch))  # one resize for a same-size batch
        return torch.cat([self._one(torch.tensor(img)[None]) for img in batch])

    def _one(self, images: torch.Tensor) -> torch.Tensor:
        """(n, H, W, C) uint8 -> (n, 3, S, S) normalised float32."""
        x = images.permute(0, 3, 1, 2).float().div_(255.0)
        x = to_rgb(x)
        if self.crop == "center":
            x = center_square(x)
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(
                x,
                size=(self.image_size, self.image_size),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return (x - mean) / std


def uint8_images(images: Sequence[Any] | np.ndarray) -> np.ndarray | list[np.ndarray]:
    """Validate image inputs: a (N, H, W, C) uint8 array, or a list of (H, W, C) uint8 arrays; (…, H, W) means grey."""
    if isinstance(images, np.ndarray):
        _check_dtype(images, "the image array")
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
            raise DataError(
                f"Image inputs must be shaped (N, H, W, C) with C in 1, 3, 4; got {images.shape}."
            )
        return images
    out: list[np.ndarray] = []
    for i, img in enumerate(images):
        arr = np.asarray(img)
        _check_dtype(arr, f"image {i}")
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
            raise DataError(f"Image {i} must be shaped (H, W, C) with C in 1, 3, 4; got {arr.shape}.")
        out.append(arr)
    return out


def _check_dtype(arr: np.ndarray, what: str) -> None:
    if arr.dtype != np.uint8:
        raise DataError(
            f"Image models take uint8 pixels (0-255); {what} has dtype {arr.dtype}. "
            "Convert in the task loader, e.g. (x / x.max() * 255).astype('uint8')."
        )


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """(n, C, H, W) with C in 1, 3, 4 -> 3 channels (grey repeated, alpha dropped)."""
    if x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1)
    return x[:, :3]


def center_square(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return x[..., top : top + side, left : left + side]
