"""Typed family options: `ModelSpec.options` (a free mapping in the suite file) -> a frozen dataclass.

The schema engine (harness.typed_config) checks them; errors read ``Model "m" (family): key 'options.x' must
be ..., got ...``.
"""

from __future__ import annotations

from typing import TypeVar

from harness.errors import ConfigError, FieldError
from harness.models.base import ModelSpec
from harness.typed_config import build

OptionsT = TypeVar("OptionsT")


def _owner(spec: ModelSpec) -> str:
    return f'Model "{spec.name}" ({spec.family})'


def parse_options(spec: ModelSpec, options_cls: type[OptionsT]) -> OptionsT:
    """Build `options_cls` (a dataclass whose fields all have defaults) from `spec.options`."""
    return build(options_cls, spec.options, file=_owner(spec), at="options")


def option_error(spec: ModelSpec, key: str, message: str) -> ConfigError:
    """A family's own check of option `key` failed: `message` starts with 'must be' or says what is wrong."""
    return ConfigError(f"{_owner(spec)}: key 'options.{key}' {message}")


MAX_IMAGE_SIZE = 4096  # pixels per side; larger is a typo (one 100,000 px image is 120 GB of float32), not a setting


def check_image_size(owner: str, size: int | None, minimum: int = 1) -> None:
    """An image family's options.image_size (None: the family's default), checked when the suite is planned."""
    if size is not None and not minimum <= size <= MAX_IMAGE_SIZE:
        raise FieldError(
            owner, "image_size", f"must be {minimum} to {MAX_IMAGE_SIZE:,} pixels (the side images are resized to), got {size}."
        )
