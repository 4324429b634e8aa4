"""Source signatures: cheap strings that change whenever a task's loaded data could change.

The runner compares them with the stored ones to reuse a data fingerprint without loading data.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from harness.digests import json_digest
from harness.file_tree import walk_folder

# Bump when the loading/splitting code changes what a given source yields.
# 2: images are EXIF-rotated, and 16-bit / float images are scaled instead of clipped (to_uint8_image).
#    Labels: a value maps to its class however the reader typed it (1, "1", 1.0 alike).
# 3: CSV cells are read as the text written in them (no numeric or NA guessing).
# 4: JSON Lines files are read line by line by our own reader (values keep their written text).
# 5: an hf source on datasets' csv builder (id: csv) reads cells as text too, as a csv source does.
# 6: a hub dataset is pinned by the commit its revision resolves to; the datasets version is part of the
#    signature of the sources datasets' readers parse (hf, csv, parquet, imagefolder).
DATA_CODE_VERSION = "6"


_Stat = tuple[str, int, int, int, int]  # path, size, mtime_ns, inode, ctime_ns


def file_stats(path: Path) -> list[_Stat]:
    """(path, size, mtime_ns, inode, ctime_ns) of a file, or of every file under a directory (sorted); [] if
    missing. ctime: a file rewritten in place with its mtime set back (touch -d, cp -p, rsync -t) keeps its
    size, mtime and inode, but no tool sets ctime, which every write updates (a chmod or a copy updates it too:
    the data is read and fingerprinted again, and the fingerprint, made from the content, stays the same).

    A folder is walked as the loaders read it, through links to folders. The path is the real one; a file
    reached through a link is named "<path as read> -> <real path>", so renaming or retargeting a link
    counts. A linked folder whose real folder is walked already (a second link, or a loop) is an entry
    "<link> -> <real folder>" with -1 for the numbers."""
    if path.is_file():
        return [_stat(str(path.resolve()), path)]
    if not path.is_dir():
        return []
    walk = walk_folder(path)
    root = path.resolve()
    entries: dict[Path, _Stat] = {}
    for p in walk.files:
        if p.is_file():
            entries[p] = _stat(_shown(p, path, root), p)
    for p in walk.repeats:
        entries[p] = (f"{p} -> {p.resolve()}", -1, -1, -1, -1)
    return [entries[p] for p in sorted(entries)]


def _stat(shown: str, path: Path) -> _Stat:
    st = path.stat()
    return (shown, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def _shown(file: Path, top: Path, real_top: Path) -> str:
    """The real path of `file` (under `top`), plus the path as read when a link lies between them."""
    real = file.resolve()
    if real == real_top / file.relative_to(top):
        return str(real)
    return f"{file} -> {real}"


@cache  # read once per process: a plan asks for it per job, and a metadata look-up takes about a millisecond
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
