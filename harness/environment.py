"""What produced a result: harness version, git hash, package versions, hardware fingerprint."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness import RESULT_SCHEMA_VERSION, __version__

PACKAGES = (
    "torch", "transformers", "sentence-transformers", "onnxruntime", "scikit-learn",
    "numpy", "datasets", "tokenizers", "timm", "torchvision",
)  # fmt: skip


@lru_cache(maxsize=1)
def git_hash() -> str | None:
    here = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def run_environment(hardware: str | None) -> dict[str, Any]:
    return {
        "harness_version": __version__,
        "schema_version": RESULT_SCHEMA_VERSION,
        "git_hash": git_hash(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "hardware": hardware,
    }
