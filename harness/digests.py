"""The two digests that key things across the code: of a JSON-able value (job keys, model and hardware
fingerprints, data signatures, cache entries) and of source files (a cache made by other code is not read).

A leaf module: standard library only, so the store and everything above it can use it."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def json_digest(value: Any, length: int) -> str:
    """The first `length` hex digits of the SHA-256 of `value` as JSON with sorted keys; a value JSON cannot
    hold (a Path, a date) counts as its str(). Stored keys depend on these exact bytes: do not change them."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def code_digest(files: Iterable[Path], *salt: str) -> str:
    """32 hex digits over the names and bytes of `files` (in sorted order) and `salt` (e.g. a version): what a
    cache stamps itself with, so that a change to the code that made it drops it."""
    h = hashlib.sha256()
    for part in salt:
        h.update(part.encode())
        h.update(b"\0")
    for path in sorted(Path(f) for f in files):
        h.update(os.fsencode(path.name))  # a file name may hold bytes that are not UTF-8
        h.update(b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:32]


def plugin_code_digest(*objects: object) -> str | None:
    """The code_digest of the source files that define `objects` (functions, classes, instances: their
    class; a str names a module, found without running it), leaving out the harness's own modules
    (versioned with the harness); None when no file is left. Job keys and stored data signatures carry
    it, so an edit to a plugin's code re-runs what it computes instead of serving the results of the old code."""
    files: set[Path] = set()
    for obj in objects:
        if obj is None:
            continue
        module_name = obj if isinstance(obj, str) else getattr(obj, "__module__", None) or type(obj).__module__
        if module_name.partition(".")[0] == __name__.partition(".")[0]:
            continue
        file = _module_file(module_name)
        if file is not None:
            files.add(file)
    return code_digest(files) if files else None


def _module_file(name: str) -> Path | None:
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None) if module is not None else _spec_origin(name)
    return Path(file) if file and Path(file).is_file() else None


def _spec_origin(name: str) -> str | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None else None
