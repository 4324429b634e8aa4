"""Model identity: what a model computes, pinned without loading it.

A suite names a model by a spec (family, source path or hub id, options); the spec does not change when a
checkpoint is retrained in place, a hub branch moves or an asset package is upgraded, but the results do.
`model_identity` pins the weights at plan time, cheaply:

- a local or packaged (`pkg://`) source, file or folder: a SHA-256 over the content of every file
  (a folder: every file under it except hidden ones, with its relative path; families whose model lives
  in several places declare their files: `Family.weight_files`). Digests are cached on disk by
  path + size + mtime (ns) + inode, so an unchanged 500 MB checkpoint is hashed once, not on every plan;
- a hub id: the commit the requested revision resolves to (a pinned 40-hex revision is taken as is;
  offline, the commit of the local Hugging Face cache snapshot; otherwise recorded as unresolved);
- the version of the package a `pkg://` source lives in, and of the libraries that implement the family
  (`Family.packages`): code-only models (TF-IDF, pixels, VADER) are pinned by these alone;
- for a family an installed package adds, the digest of its adapter's source file (an editable install's
  edits keep the version but change the outputs).

The identity goes into the job key, the feature-cache key, the models table, each run's config (so
`compare` can say "model weights changed") and the runs table.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import os
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal

from harness.digests import json_digest, plugin_code_digest
from harness.errors import HarnessError
from harness.file_tree import walk_folder
from harness.hub import hub_commit
from harness.models import PKG_SCHEME, family, package_distribution, resolve_source
from harness.models.base import ModelSpec

SourceKind = Literal["files", "hub", "name", "none"]

_CHUNK = 4 << 20


@dataclass(frozen=True)
class ModelIdentity:
    kind: SourceKind  # files: local/packaged weights hashed; hub: a hub id; name: a library's model name; none
    weights_sha256: str | None = None  # content hash of the weight files (kind "files")
    n_files: int = 0
    commit: str | None = None  # resolved hub commit (kind "hub")
    unresolved: str | None = None  # why the weights could not be pinned, in words
    packages: tuple[tuple[str, str], ...] = ()  # (distribution, version) of the source package and the family code
    code: str | None = None  # digest of the adapter's source file, for a family an installed package adds

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["packages"] = dict(self.packages)
        if self.code is None:  # the built-in families: their identities (and job keys) stay as they were
            del d["code"]
        return d

    @property
    def token(self) -> str:
        """A short hash of the whole identity (feature-cache namespace)."""
        return json_digest(self.as_dict(), 16)

    @property
    def weights(self) -> str:
        """What pins the weights, for tables: "sha256:<12 hex>", "commit:<12 hex>", "unresolved", "code"."""
        return describe_weights(self.as_dict())


def describe_weights(identity: Any) -> str:
    """The short weights label of a stored identity dict (or "not recorded" for runs made before identities)."""
    if not isinstance(identity, dict):
        return "not recorded"
    if identity.get("weights_sha256"):
        return f"sha256:{identity['weights_sha256'][:12]}"
    if identity.get("commit"):
        return f"commit:{identity['commit'][:12]}"
    if identity.get("kind") in ("hub", "name") or identity.get("unresolved"):
        return "unresolved"
    return "code"


class DigestCache:
    """File content digests keyed by absolute path, valid while size, mtime (ns), inode and ctime (ns) are
    unchanged. ctime: a file rewritten in place with its mtime set back (touch -d, cp -p, rsync -t) keeps the
    other three, but no tool can set ctime, which every write updates.

    One small JSON file; written atomically (temp file + rename) only when a digest was computed."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, list[Any]] = {}
        self.dirty = False
        self.hashed_bytes = 0  # bytes read to hash (0 on a fully cached plan)
        if path is not None and path.is_file():
            try:
                loaded = json.loads(path.read_text())
                if isinstance(loaded, dict):
                    self.entries = loaded
            except (OSError, ValueError):
                self.entries = {}  # a damaged cache is only a cache: rebuild it

    def digest(self, path: Path) -> str:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # a pipe never ends or blocks, a device (/dev/zero) never ends
            raise HarnessError(
                f"{path} is not a regular file (a device or a pipe{', through a link' if path.is_symlink() else ''}): "
                "a model's weight, config and tokenizer files must be regular files (or links to them)."
            )
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]
        key = str(path)
        entry = self.entries.get(key)
        if isinstance(entry, list) and len(entry) == len(stamp) + 1 and entry[:-1] == stamp:
            return str(entry[-1])
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        self.hashed_bytes += st.st_size
        self.entries[key] = [*stamp, h.hexdigest()]
        self.dirty = True
        return h.hexdigest()

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp.json")
            with os.fdopen(fd, "w") as fh:
                json.dump(self.entries, fh)
            os.replace(tmp, self.path)
        except OSError:
            return  # the cache is an optimisation; an unwritable cache dir only costs re-hashing
        self.dirty = False


def model_identity(spec: ModelSpec, digests: DigestCache) -> ModelIdentity:
    """The identity of `spec`'s model, from files, the local hub cache and package metadata (no model load)."""
    identity = _model_identity(spec, digests)
    code = plugin_code_digest(family(spec.family).adapter.partition(":")[0])
    return identity if code is None else replace(identity, code=code)


def _model_identity(spec: ModelSpec, digests: DigestCache) -> ModelIdentity:
    packages = [(dist, _version(dist)) for dist in family(spec.family).packages]
    source = spec.source
    if not source:
        return ModelIdentity("none", packages=tuple(packages))
    if source.startswith(PKG_SCHEME):
        dist = package_distribution(source[len(PKG_SCHEME) :].partition("/")[0])
        packages.insert(0, (dist, _version(dist)))
    try:
        resolved = Path(resolve_source(source)).expanduser()
        files = weight_files(spec, resolved) if resolved.exists() else None
    except HarnessError as err:  # the job records the load failure with this same message
        return ModelIdentity("files", unresolved=str(err), packages=tuple(packages))
    if files is not None:
        try:
            digest = files_digest(files, resolved, digests)
        except HarnessError as err:  # reading it would hang the plan (a pipe, /dev/zero): refused before any job
            raise HarnessError(f'Model "{spec.name}" ({spec.family}), source "{source}": {err}') from None
        return ModelIdentity("files", weights_sha256=digest, n_files=len(files), packages=tuple(packages))
    if family(spec.family).library_weights:  # a library's model name; its weights are pinned by the library version
        return ModelIdentity("name", unresolved="weights named by the library; pinned by its version only", packages=tuple(packages))
    commit, why = hub_commit(source, spec.revision, offline=_offline())
    return ModelIdentity("hub", commit=commit, unresolved=why, packages=tuple(packages))


def weight_files(spec: ModelSpec, resolved: Path) -> list[Path]:
    """The files the model reads: the family's declaration, else the source file or every file under the folder."""
    declared = family(spec.family).files(spec, resolved)
    if declared is not None:
        return sorted(set(declared))
    if resolved.is_file():
        return [resolved]
    return list(walk_folder(resolved, hidden=False).files)


def files_digest(files: Iterable[Path], base: Path, digests: DigestCache) -> str:
    """SHA-256 over (path relative to the source, content digest) of each file: renames and edits both count."""
    h = hashlib.sha256()
    anchor = base if base.is_dir() else base.parent
    for f in files:
        try:
            rel = f.relative_to(anchor).as_posix()
        except ValueError:
            rel = f.name
        h.update(f"{rel}\0{digests.digest(f)}\n".encode())
    return h.hexdigest()


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@cache
def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
