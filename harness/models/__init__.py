"""Model specs checked against the family table (harness.models.families), adapters built, sources resolved.

Importing this package stays cheap: each family's module (and torch/transformers with it) is imported
only when `load_adapter` builds an adapter of that family.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from harness.assets import PKG_SCHEME, package_distribution, resolve_package_path
from harness.errors import HarnessError, close_match
from harness.models.base import ModelAdapter, ModelInfo, ModelSpec, TrainableBackbone
from harness.models.families import BUILTIN_FAMILIES, SPEC_KEYS, Family, families, family
from harness.typed_config import schema_error

__all__ = [
    "BUILTIN_FAMILIES",
    "Family",
    "ModelAdapter",
    "ModelInfo",
    "ModelSpec",
    "TrainableBackbone",
    "check_folder_source",
    "check_spec",
    "families",
    "family",
    "load_adapter",
    "package_distribution",
    "resolve_source",
    "validate_spec",
]

def validate_spec(spec: ModelSpec, file: str, key: str, given: Iterable[str]) -> None:
    """Refuse, when the suite is parsed, settings the model's family cannot honour (ModelSpec checks the rest);
    errors name the file, the key (`key` is the model's, e.g. models[0]) and what the family accepts. `given`:
    the keys the suite wrote for this model (a key the family does not read is refused even at its default)."""
    table = families()
    if spec.family not in table:
        raise schema_error(
            file, f"{key}.family", f"one of {', '.join(sorted(table))}", spec.family, close_match(spec.family, table)
        )
    device = spec.device.strip().lower()
    if table[spec.family].cpu_only and device not in ("auto", "cpu"):
        raise schema_error(
            file, f"{key}.device", f"auto or cpu (family {spec.family} runs on the CPU only; or leave it out)", spec.device
        )
    for name in given:
        if name in SPEC_KEYS and name not in table[spec.family].spec_keys:
            takers = [f for f, row in sorted(table.items()) if name in row.spec_keys]
            raise schema_error(
                file, f"{key}.{name}", f"left out (model {spec.name!r}: family {spec.family} does not use {name}, "
                f"so it would be ignored; the families that take it: {', '.join(takers) or 'none'})",
                getattr(spec, name),
            )
    if table[spec.family].fp32_only and spec.precision != "fp32":
        raise schema_error(
            file, f"{key}.precision", f"fp32 (family {spec.family} computes in fp32 only; or leave it out)", spec.precision
        )


def check_spec(spec: ModelSpec) -> None:
    """Raise a HarnessError now for a spec its family can already tell is unusable (Family.spec_check)."""
    family(spec.family).check_spec(spec)


def load_adapter(spec: ModelSpec) -> ModelAdapter:
    """Build the adapter for `spec`. Cheap: weights load on first use (encode, info, ...)."""
    return family(spec.family).adapter_class()(spec)


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


def check_folder_source(spec: ModelSpec) -> None:
    """Plan-time check (Family.spec_check) of the families that load a transformers model folder: a local
    source that is a file (its config.json, a weights file) is refused before any job; from_pretrained read
    it as something else (a JSON file unpickled as PyTorch weights). A missing path is the job's to record."""
    if not spec.source:
        return
    try:
        path = Path(resolve_source(spec.source))
    except HarnessError:
        return
    if path.is_file():
        hint = f" ({path.parent} holds one)" if (path.parent / "config.json").is_file() else ""
        raise HarnessError(
            f'Model "{spec.name}" ({spec.family}): source "{spec.source}" is a file, not a model folder; give the '
            f"folder that holds config.json{hint} and the weights, or a hub id."
        )
    config = path / "config.json"
    if path.is_dir() and config.exists() and not config.is_file():
        what = "a folder" if config.is_dir() else "not a regular file (a device or a pipe)"
        raise HarnessError(
            f'Model "{spec.name}" ({spec.family}): {config} is {what}; a model folder\'s config.json is the JSON '
            "file of the model's settings (config.json of a saved transformers model)."
        )
