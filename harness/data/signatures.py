"""Source signatures: cheap strings that change whenever a task's loaded data could change.

The runner compares them with the stored ones to reuse a data fingerprint without loading data.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.digests import json_digest

# Bump when the loading/splitting code changes what a given source yields.
# 2: images are EXIF-rotated, and 16-bit / float images are scaled instead of clipped (to_uint8_image).
DATA_CODE_VERSION = "2"


def file_stats(path: Path) -> list[tuple[str, int, int]]:
    """(path, size, mtime_ns) of a file, or of every file under a directory (sorted); [] if missing."""
    if path.is_file():
        st = path.stat()
        return [(str(path.resolve()), st.st_size, st.st_mtime_ns)]
    if path.is_dir():
        return [entry for p in sorted(path.rglob("*")) if p.is_file() for entry in file_stats(p)]
    return []


def package_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not-installed"


def signature(*parts: Any, files: Iterable[Path] = ()) -> str:
    """16-hex-digit digest of JSON-able parts plus the stats of `files`."""
    payload = {
        "code": DATA_CODE_VERSION,
        "parts": parts,
        "files": [entry for f in files for entry in file_stats(f)],
    }
    return json_digest(payload, 16)
