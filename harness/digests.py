"""The two digests that key things across the code: of a JSON-able value (job keys, model and hardware
fingerprints, data signatures, cache entries) and of source files (a cache made by other code is not read).

A leaf module: standard library only, so the store and everything above it can use it."""

from __future__ import annotations

import hashlib
import json
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
        h.update(path.name.encode())
        h.update(b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:32]
