"""Handwritten digits (1,797 8x8 grayscale images, 10 classes) from scikit-learn's load_digits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from harness.data.assemble import PooledTask, split_summary
from harness.data.loaders import RawExamples
from harness.data.signatures import package_version, signature
from harness.tasks import TaskSpec

_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


class Digits(PooledTask):
    validation_size = 0.2
    test_size = 0.2
    split_seed = 0
    spec = TaskSpec(
        name="digits",
        version="1",
        modality="image",
        labels=tuple(str(d) for d in range(10)),
        description=(
            "Which digit an 8x8 grayscale image shows (1,797 images, about 180 per class; "
            "scikit-learn's copy of the UCI optical recognition of handwritten digits test set). "
            "Pixel values 0..16 are scaled to 0..255 uint8, shape (8, 8, 1). " + split_summary(0.2, 0.2, 0)
        ),
        source="sklearn.datasets.load_digits",
        license="CC BY 4.0 (as listed by the UCI Machine Learning Repository)",
        citation=(
            "E. Alpaydin and C. Kaynak. Optical Recognition of Handwritten Digits. UCI Machine Learning "
            "Repository, 1998."
        ),
        homepage="https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits",
        prompt_templates=("a photo of the digit {label}.", "a handwritten {label}."),
        label_verbalizers={str(d): name for d, name in enumerate(_NAMES)},
    )

    def read_pool(self) -> RawExamples:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = np.rint(np.asarray(bunch.images) * (255.0 / 16.0)).astype(np.uint8)[..., None]
        return RawExamples(
            ids=tuple(f"digits-{i}" for i in range(len(images))),
            inputs=cast("Sequence[Any]", images),  # (N, 8, 8, 1) uint8
            labels=[int(t) for t in bunch.target],
            where="sklearn.datasets.load_digits()",
            label_column="target",
        )

    def source_signature(self) -> str:
        return signature(
            self.spec.as_dict(),
            package_version("scikit-learn"),
            (self.validation_size, self.test_size, self.split_seed),
        )
