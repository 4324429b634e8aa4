"""Installed-package plugins: the objects an entry-point group names, each with where it came from.

The groups: "harness.tasks" and "harness.metrics" (harness.registry), "harness.models" (harness.models.families),
"harness.protocols" (harness.protocols).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable
from typing import Any

from harness.errors import ConfigError


def load_group(group: str) -> list[tuple[Any, str]]:
    """(loaded object, origin) of every entry point in `group`; an entry point that fails to import is a
    ConfigError naming it and its package."""
    found: list[tuple[Any, str]] = []
    for ep in importlib.metadata.entry_points(group=group):
        dist = getattr(ep, "dist", None)
        origin = f"entry point '{ep.name} = {ep.value}'" + (f" of package {dist.name} {dist.version}" if dist else "")
        try:
            obj = ep.load()
        except (Exception, SystemExit) as exc:
            raise ConfigError(
                f"{origin} (group {group}) failed to import: {type(exc).__name__}: {exc}. Fix or uninstall that package."
            ) from exc
        found.append((obj, origin))
    return found


def items(obj: Any, kind: type) -> list[Any]:
    """An entry point may load one `kind` object or an iterable of them."""
    return list(obj) if isinstance(obj, Iterable) and not isinstance(obj, (str, kind)) else [obj]
