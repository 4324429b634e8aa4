"""Model families and source resolution.

Importing this package stays cheap: each family's module (and torch/transformers with it) is imported
only when `load_adapter` builds an adapter of that family.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from harness.assets import PKG_SCHEME, package_distribution, resolve_package_path
from harness.errors import HarnessError, close_match, unknown_name
from harness.models.base import ModelAdapter, ModelInfo, ModelSpec, TrainableBackbone
from harness.tasks import Modality
from harness.typed_config import schema_error

__all__ = [
    "FAMILIES",
    "CPU_ONLY_FAMILIES",
    "FAMILY_MODALITY",
    "FP32_ONLY_FAMILIES",
    "ModelAdapter",
    "ModelInfo",
    "ModelSpec",
    "TrainableBackbone",
    "adapter_class",
    "check_spec",
    "load_adapter",
    "package_distribution",
    "resolve_source",
    "validate_spec",
]

# family name -> "module:ClassName" (module relative to this package)
FAMILIES: dict[str, str] = {
    "hf_text": "hf_text:HFTextEncoder",
    "sentence_transformers": "sentence_tf:SentenceTransformerEncoder",
    "onnx": "onnx_encoder:OnnxTextEncoder",
    "hf_classifier": "hf_classifier:HFSequenceClassifier",
    "efficientnet_lite": "efficientnet_lite:EfficientNetLite",
    "torchvision": "torchvision_models:TorchvisionClassifier",
    "timm": "timm_models:TimmModel",
    "tfidf": "tfidf:TfidfFeaturizer",
    "pixels": "pixels:RawPixels",
    "vader": "vader:VaderSentiment",
    "hf_causal_lm": "hf_causal_lm:HFCausalLM",
}

# Known without importing the family's module: the runner pairs models with tasks of the same modality.
FAMILY_MODALITY: dict[str, Modality] = {
    "hf_text": "text",
    "sentence_transformers": "text",
    "onnx": "text",
    "hf_classifier": "text",
    "efficientnet_lite": "image",
    "torchvision": "image",
    "timm": "image",
    "tfidf": "text",
    "pixels": "image",
    "vader": "text",
    "hf_causal_lm": "text",
}

# Families with checks that need no weights (e.g. "this GGUF source is not a GGUF file"): "module:function",
# run by the runner for every planned model before any job starts, so bad input exits 2 with the store untouched.
SPEC_CHECKS: dict[str, str] = {
    "hf_causal_lm": "hf_causal_lm:check_spec",
}

# Families computed with numpy/scikit-learn/a lexicon on the CPU: a GPU device or a reduced precision cannot
# be honoured, so a suite asking for one is refused when it is parsed (not silently run in fp32 on the CPU).
CPU_ONLY_FAMILIES = frozenset({"tfidf", "pixels", "vader"})
# ONNX Runtime runs the exported graph as stored (fp32); device (CPU or CUDA provider) is honoured.
FP32_ONLY_FAMILIES = CPU_ONLY_FAMILIES | {"onnx"}


def validate_spec(spec: ModelSpec, file: str, key: str) -> None:
    """Refuse, when the suite is parsed, settings the model's family cannot honour (ModelSpec checks the rest);
    errors name the file, the key (`key` is the model's, e.g. models[0]) and what the family accepts."""
    if spec.family not in FAMILIES:
        raise schema_error(
            file, f"{key}.family", f"one of {', '.join(sorted(FAMILIES))}", spec.family, close_match(spec.family, FAMILIES)
        )
    device = spec.device.strip().lower()
    if spec.family in CPU_ONLY_FAMILIES and device not in ("auto", "cpu"):
        raise schema_error(
            file, f"{key}.device", f"auto or cpu (family {spec.family} runs on the CPU only; or leave it out)", spec.device
        )
    if spec.family in FP32_ONLY_FAMILIES and spec.precision != "fp32":
        raise schema_error(
            file, f"{key}.precision", f"fp32 (family {spec.family} computes in fp32 only; or leave it out)", spec.precision
        )


def adapter_class(family: str) -> type[ModelAdapter]:
    if family not in FAMILIES:
        raise unknown_name("model family", family, FAMILIES)
    module_name, class_name = FAMILIES[family].split(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    cls: type[ModelAdapter] = getattr(module, class_name)
    return cls


def check_spec(spec: ModelSpec) -> None:
    """Raise a HarnessError now for a spec its family can already tell is unusable (see SPEC_CHECKS)."""
    if spec.family in SPEC_CHECKS:
        module_name, function = SPEC_CHECKS[spec.family].split(":")
        getattr(importlib.import_module(f"{__name__}.{module_name}"), function)(spec)


def load_adapter(spec: ModelSpec) -> ModelAdapter:
    """Build the adapter for `spec`. Cheap: weights load on first use (encode, info, ...)."""
    return adapter_class(spec.family)(spec)


def resolve_source(source: str) -> str:
    """A model source as a loader takes it: `pkg://...` -> the installed asset's path (harness.assets);
    local paths (./x, ../x, /x, ~/x) must exist; anything else (a hub id like "org/model") passes through.
    """
    if source.startswith(PKG_SCHEME):
        return resolve_package_path(source)
    if source.startswith(("./", "../", "/", "~")) or source in (".", ".."):
        path = Path(source).expanduser()
        if not path.exists():
            raise HarnessError(
                f'Model source "{source}" looks like a local path but {path.resolve()} does not exist. '
                "Fix the path (relative paths are resolved from the current directory) or give a hub id."
            )
        return str(path)
    return source
