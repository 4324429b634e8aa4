"""Walking a folder as the loaders read it: through symbolic links to folders, each real folder once.

A leaf module: standard library only, so model identities and data signatures can share it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FolderWalk:
    """What `walk_folder` found: `files` in walk order (top-down, names sorted), as paths under the root
    (a file in a linked folder keeps the link's name, which is what a loader sees), and `repeats`: linked
    folders not walked because their real folder was walked already (a link back up, or a second link)."""

    files: tuple[Path, ...]
    repeats: tuple[Path, ...]


def walk_folder(root: Path, *, hidden: bool = True) -> FolderWalk:
    """Every file under `root`, following links to folders. Each real folder is walked once: a link back to
    a folder above (two such links in a folder made 2**40 paths to walk, a plan that never ended) or to one
    already walked is listed in `repeats` instead. hidden=False leaves out names starting with '.' and
    __pycache__ folders."""
    files: list[Path] = []
    repeats: list[Path] = []
    seen = {folder_id(root)}
    for top, dirs, names in os.walk(root, followlinks=True):
        kept = []
        for d in sorted(dirs):
            if not hidden and (d.startswith(".") or d == "__pycache__"):
                continue
            path = Path(top) / d
            folder = folder_id(path)
            if folder in seen:
                repeats.append(path)
            else:
                seen.add(folder)
                kept.append(d)
        dirs[:] = kept
        files.extend(Path(top) / n for n in sorted(names) if hidden or not n.startswith("."))
    return FolderWalk(files=tuple(files), repeats=tuple(repeats))


def folder_id(path: Path) -> tuple[int, int]:
    """(device, inode) of the real folder `path` names, links followed."""
    st = path.stat()
    return st.st_dev, st.st_ino
