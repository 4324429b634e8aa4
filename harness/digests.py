"""The two digests that key things across the code: of a JSON-able value (job keys, model and hardware
fingerprints, data signatures, cache entries) and of source files (a cache made by other code is not read).

A leaf module: standard library only, so the store and everything above it can use it."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import sysconfig
import time
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

_RACY_NS = 3_000_000_000  # see code_digest


def json_digest(value: Any, length: int) -> str:
    """The first `length` hex digits of the SHA-256 of `value` as JSON with sorted keys; a value JSON cannot
    hold (a Path, a date) counts as its str(). Stored keys depend on these exact bytes: do not change them."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def code_digest(files: Iterable[Path], *salt: str) -> str:
    """32 hex digits over the names and bytes of `files` (in sorted order) and `salt` (e.g. a version): what a
    cache stamps itself with, so that a change to the code that made it drops it. The bytes are read again only
    when a file's path, size, mtime or inode changed since the last call in this process (a plan keys every job
    by its plugins' code: a plugin using a large package of the user's would be read once per job). A file changed
    in the last seconds is always read: timestamps tick coarsely, so an edit of the same size just after the last
    read could keep all four (git's "racy" files)."""
    paths = sorted(Path(f) for f in files)
    try:
        stats = tuple((p, st.st_size, st.st_mtime_ns, st.st_ino) for p in paths for st in (p.stat(),))
    except OSError:
        return _code_digest(tuple(paths), salt)  # raises as reading it does
    if any(mtime > time.time_ns() - _RACY_NS for _, _, mtime, _ in stats):
        return _code_digest(tuple(paths), salt)
    return _code_digest_of(stats, salt)


@lru_cache(maxsize=512)
def _code_digest_of(stats: tuple[tuple[Path, int, int, int], ...], salt: tuple[str, ...]) -> str:
    return _code_digest(tuple(p for p, *_ in stats), salt)


def _code_digest(paths: tuple[Path, ...], salt: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for part in salt:
        h.update(part.encode())
        h.update(b"\0")
    for path in paths:
        h.update(os.fsencode(path.name))  # a file name may hold bytes that are not UTF-8
        h.update(b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:32]


def plugin_code_digest(*objects: object) -> str | None:
    """The code_digest of the source files of the plugin code behind `objects` (functions, classes, instances:
    their class; a str names a module, found without running it), leaving out the harness's own modules
    (versioned with the harness); None when no file is left. Job keys and stored data signatures carry it, so
    an edit to a plugin's code re-runs what it computes instead of serving the results of the old code.

    The files: each object's defining module, and the modules of the user's own code that one uses, followed
    through their globals (`import helpers`, `from helpers import score`, in turn theirs): a module of the same
    top-level package as a defining one, or any module outside the standard library and site-packages. An edit
    to a helper a metric calls changed its values under the old key. Libraries are left out (their code is
    neither the plugin's nor its to version: a protocol names those that compute its results)."""
    names: list[str] = []
    for obj in objects:
        if obj is None:
            continue
        names.append(obj if isinstance(obj, str) else getattr(obj, "__module__", None) or type(obj).__module__)
    files = _plugin_files(names)
    return code_digest(files) if files else None


def _plugin_files(defining: list[str]) -> set[Path]:
    """The source files of the modules `defining` and of the user-code modules reachable from their globals."""
    own = __name__.partition(".")[0]
    packages = {name.partition(".")[0] for name in defining}
    files: set[Path] = set()
    seen: set[str] = set()
    todo = list(defining)
    while todo:
        name = todo.pop()
        if name in seen or name.partition(".")[0] == own:
            continue
        seen.add(name)
        file = _module_file(name)
        if file is None or (name.partition(".")[0] not in packages and _in_library(file)):
            continue
        files.add(file)
        module = sys.modules.get(name)
        if module is not None:  # not imported (found by its spec): what it would use is unknown
            todo.extend(_used_modules(module))
    return files


def _used_modules(module: ModuleType) -> list[str]:
    """The modules whose objects (or themselves) `module`'s globals hold."""
    used = []
    for value in list(vars(module).values()):
        try:
            name = value.__name__ if isinstance(value, ModuleType) else getattr(value, "__module__", None)
        except Exception:  # noqa: BLE001 - a proxy object whose attribute lookup raises names no module
            continue
        if isinstance(name, str):
            used.append(name)
    return used


@lru_cache(maxsize=1)
def _library_roots() -> tuple[Path, ...]:
    """The standard library's and the installed packages' folders (of this environment and the base one)."""
    roots = set()
    for scheme_vars in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
        paths = sysconfig.get_paths(vars=scheme_vars)
        roots |= {Path(paths[key]) for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    return tuple(sorted(roots))


def _in_library(file: Path) -> bool:
    if {"site-packages", "dist-packages"} & set(file.parts):
        return True
    return any(file.is_relative_to(root) for root in _library_roots())


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
