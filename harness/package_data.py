"""Package data kept at the top of the repository: tasks/ (built-in task definitions) and site_templates/.

In a wheel, pyproject's package-dir maps them into this package as harness/builtin_tasks and
harness/site_templates, and they are read from there (importlib.resources). From a source checkout (an
editable install, or PYTHONPATH=<checkout>) they are read from the checkout that holds the harness/
folder being imported, never from another checkout's: `install_checkout_finder` makes the module
`harness.builtin_tasks` import from <checkout>/tasks. The top-level folders are never import names.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.resources
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

# Name inside the installed package -> top-level folder of a source checkout.
CHECKOUT_FOLDERS = {"builtin_tasks": "tasks", "site_templates": "site_templates"}
BUILTIN_TASKS_MODULE = "harness.builtin_tasks"
_CHECKOUT = Path(__file__).resolve().parent.parent


def _installed(name: str) -> Path | None:
    """harness/<name> of an installed wheel; None in a checkout (a stale __pycache__ folder does not count)."""
    folder = importlib.resources.files("harness") / name
    if folder.is_dir() and any(entry.name != "__pycache__" for entry in folder.iterdir()):
        return Path(str(folder))
    return None


def data_folder(name: str) -> Path:
    """The folder of package data `name` (a key of CHECKOUT_FOLDERS), installed or in the checkout."""
    installed = _installed(name)
    if installed is not None:
        return installed
    checkout = _CHECKOUT / CHECKOUT_FOLDERS[name]
    if not checkout.is_dir():
        raise RuntimeError(
            f"harness at {_CHECKOUT / 'harness'} has neither harness/{name} (an installed wheel) nor "
            f"{checkout} (a source checkout): the installation is incomplete; reinstall harness."
        )
    return checkout


class _CheckoutTasksFinder(importlib.abc.MetaPathFinder):
    """Finds `harness.builtin_tasks` in <checkout>/tasks. First on sys.meta_path, so that neither a stale
    harness/builtin_tasks/__pycache__ folder nor another checkout's editable-install finder answers."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != BUILTIN_TASKS_MODULE:
            return None
        folder = data_folder("builtin_tasks")
        return importlib.util.spec_from_file_location(
            fullname, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )


def install_checkout_finder() -> None:
    """Called when harness is imported; does nothing for an installed wheel."""
    if _installed("builtin_tasks") is None and not any(
        isinstance(f, _CheckoutTasksFinder) for f in sys.meta_path
    ):
        sys.meta_path.insert(0, _CheckoutTasksFinder())
