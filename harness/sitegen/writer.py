"""Write site files only when their content changed, and remove files an earlier build made that are gone.

The state file in the output folder records each written file's hash, size and mtime, and the digest
of the inputs it was rendered from. A page whose inputs digest is unchanged, and whose files nobody
touched since (size and mtime as recorded), is not rendered at all (`reuse`); a rendered file whose
content hashes the same as before is not rewritten.

The state file is not trusted for deletion: a file an earlier build listed is removed only when it is a
plain file of a kind the build writes, inside the output folder, and its current content still hashes to
what the state file recorded (so a forged, stale or copied state file cannot delete a user's file, and a
generated file someone edited by hand is kept).

Nor is a file the state file does not list ever overwritten: before writing anything, a build claims the
paths it will write (`claim`), and one that exists there unlisted (a user's own page put into the site
folder after a build) refuses the build. A listed file is the build's: it is rewritten even when someone
edited it since. The paths a build adds are listed (under "writing") before any of them is written, so that
the files of a build stopped midway are not taken for a user's by the next one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no flock; builds into one folder are not kept apart there
    fcntl = None  # type: ignore[assignment]

from harness.errors import HarnessError
from harness.outfile import check_link_target, is_symlink_loop

STATE_FILE = ".harness-site.json"
STATE_VERSION = 2
SITE_SUFFIXES = frozenset({".html", ".css", ".js", ".json", ".csv"})  # what the build writes


@contextlib.contextmanager
def site_lock(out: Path) -> Iterator[None]:
    """One build at a time per site folder: an exclusive flock on the folder itself (nothing is added to the
    published files; the lock goes with the process, however it ends). Two builds into one folder wrote
    the same files and state at once, and the later one refused the folder as "web files no harness build
    wrote". A folder that cannot be made or opened is left for IncrementalWriter to explain."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_RDONLY)
    except OSError:
        fd = None
    try:
        if fd is not None and fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise HarnessError(
                    f"Another `harness site` is building into {out} right now (it holds the folder's lock). "
                    "Run again when it has finished, or build into another --out."
                ) from None
        yield
    finally:
        if fd is not None:
            os.close(fd)


@dataclass
class WriteStats:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # listed by an earlier build, but not provably ours


class IncrementalWriter:
    def __init__(self, out: Path, trust_previous: bool = True) -> None:
        """trust_previous=False: keep no file because the previous build recorded the same inputs (reuse and
        reuse_all say no); a file whose new content hashes as recorded is still left as it is."""
        self.out = Path(out)
        self.trust_previous = trust_previous
        if is_symlink_loop(self.out):
            raise HarnessError(
                f"The site folder {self.out}: {'it' if self.out.is_symlink() else 'a folder on its path'} is a "
                "symbolic link that leads back to itself (a loop). Give the site folder itself, e.g. site/."
            )
        check_link_target(self.out, "The site folder", "give another folder for the site, e.g. site/", written_in=True)
        if self.out.exists() and not self.out.is_dir():
            raise HarnessError(f"The site folder {self.out} is a file; give a folder for the site, e.g. site/.")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HarnessError(f"Cannot create the site folder {self.out}: {exc.strerror}.") from exc
        if (self.out / STATE_FILE).is_dir():  # checked before any page is written: the build would end there
            raise HarnessError(
                f"{self.out / STATE_FILE} is a folder: the site build keeps its record of the site's files in a "
                "file there. Move that folder out of the site folder, or build into another --out."
            )
        if not (self.out / STATE_FILE).exists() and (theirs := _foreign_site_files(self.out)):
            raise HarnessError(
                _would_overwrite(self.out, theirs, f"there is no {STATE_FILE}")
                + " Give a new or empty folder for the site, or move those files away."
            )
        state = self._read_state()
        self._previous: dict[str, dict[str, Any]] = state.get("files", {})
        self.extra: dict[str, Any] = state.get("extra", {})
        # Every path the state file names as the build's (of any version, whatever its entry holds), and those
        # of them without a usable record: the "writing" of a build stopped midway, an older version's, forged.
        self._listed: frozenset[str] = state.get("listed", frozenset())
        self._unrecorded = self._listed - self._previous.keys()
        self._claimed: frozenset[str] = frozenset()
        self._current: dict[str, dict[str, Any]] = {}
        self.stats = WriteStats()

    def claim(self, relpaths: Iterable[str]) -> None:
        """Check, before anything is written, that the build may write these files (every one it writes):
        each is listed by the state file or does not exist yet. One there that is not listed (a user's own
        page put into the site folder, which the build would replace) refuses the build, naming it. The new
        paths are listed before any is written (a stat per new path; a listed one costs nothing)."""
        claimed = frozenset(relpaths)
        new = claimed - self._listed
        theirs = sorted(p for p in new if os.path.lexists(self.out / p))
        if theirs:
            raise HarnessError(
                _would_overwrite(self.out, theirs, f"{STATE_FILE} does not list them as written by a build")
                + " Move them out of the site folder (or rename them), then build again; or build into another --out."
            )
        self._claimed = claimed
        if new:
            self._listed |= new
            self._unrecorded |= new
            self._save_state(self._previous, sorted(self._unrecorded), self.extra)

    def _save_state(self, files: dict[str, dict[str, Any]], writing: list[str], extra: dict[str, Any]) -> None:
        state = {"version": STATE_VERSION, "files": files, "extra": extra} | ({"writing": writing} if writing else {})
        sync_file(self.out, STATE_FILE, json.dumps(state, sort_keys=True), None)

    def write(self, relpath: str, content: str | bytes, inputs: str = "", extra: dict[str, Any] | None = None) -> None:
        """Sync one file (see sync_file) and record its state."""
        entry, written = sync_file(self.out, relpath, content, self._previous.get(relpath), inputs, extra)
        self.record(relpath, entry, written)

    def previous(self, relpath: str) -> dict[str, Any] | None:
        return self._previous.get(relpath)

    def reuse(self, relpaths: tuple[str, ...], inputs: str) -> bool:
        """Keep these files as they are when the previous build rendered them from the same inputs and
        nobody touched them since; False (nothing recorded) when they must be rendered."""
        before = [self._previous.get(p) for p in relpaths]
        if not self.trust_previous or not inputs or not all(
            isinstance(b, dict) and b.get("inputs") == inputs and untouched(self.out / p, b)
            for p, b in zip(relpaths, before, strict=True)
        ):
            return False
        for path, entry in zip(relpaths, before, strict=True):
            assert entry is not None
            self.record(path, entry, False)
        return True

    def reuse_all(self) -> bool:
        """Keep every file of the previous build when none was touched (the inputs are known unchanged)."""
        if not self.trust_previous or not self._previous or not all(
            isinstance(e, dict) and _site_path(p) and untouched(self.out / p, e) for p, e in self._previous.items()
        ):
            return False
        for path, entry in self._previous.items():
            self.record(path, entry, False)
        return True

    def record(self, relpath: str, entry: dict[str, Any], written: bool) -> None:
        """Note a file synced elsewhere (e.g. by a worker process) with sync_file."""
        assert not written or relpath in self._claimed, f"{relpath} was written without being claimed first"
        self._current[relpath] = entry
        (self.stats.written if written else self.stats.unchanged).append(relpath)

    def finish(self, extra: dict[str, Any] | None = None) -> WriteStats:
        """Delete files the previous build wrote and this one did not, then save the state. A file the
        previous build recorded that is kept (not provably ours) is no longer listed: it is the user's now.
        Files listed without a record that this build did not write stay listed while they exist."""
        for relpath in sorted(set(self._previous) - set(self._current)):
            if (self.out / relpath).exists() or (self.out / relpath).is_symlink():
                removable = self._provably_ours(relpath, self._previous[relpath])
                if removable:
                    removable.unlink()
                    self.stats.removed.append(relpath)
                else:
                    self.stats.kept.append(relpath)
        writing = sorted(p for p in self._unrecorded - self._current.keys() if os.path.lexists(self.out / p))
        self._save_state(self._current, writing, extra or {})
        self._remove_left_temporaries()
        return self.stats

    def _remove_left_temporaries(self) -> None:
        """Remove the temporary files (sync_file's ".NAME.tmp") a build stopped mid-write left beside the files
        the site lists (a worker killed between its write and its rename). Only those names, only regular
        files; another build cannot be writing them (site_lock)."""
        for relpath in self._current.keys() | self._previous.keys():
            if not _site_path(relpath):
                continue
            tmp = _temporary(self.out / relpath)
            with contextlib.suppress(OSError):
                if stat.S_ISREG(tmp.lstat().st_mode):
                    tmp.unlink()

    def _provably_ours(self, relpath: str, recorded: Any) -> Path | None:
        """The file to delete, or None unless it is a regular file (no link) of a site kind inside the folder
        whose current bytes hash to the recorded sha256."""
        root = self.out.resolve()
        path = self.out / relpath
        if not isinstance(recorded, dict) or not isinstance(recorded.get("sha256"), str):
            return None
        if not _site_path(relpath):
            return None
        if path.is_symlink() or not path.is_file() or not path.resolve().is_relative_to(root):
            return None
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return None
        return path if digest == recorded["sha256"] else None

    def _read_state(self) -> dict[str, Any]:
        try:
            state = json.loads((self.out / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(state, dict):
            return {}
        files = state.get("files")
        writing = state.get("writing")
        named = [*(files if isinstance(files, dict) else ()), *(writing if isinstance(writing, list) else ())]
        listed = frozenset(p for p in named if isinstance(p, str))
        if state.get("version") != STATE_VERSION or not isinstance(files, dict):
            return {"listed": listed}
        extra = state.get("extra")
        # A forged or damaged entry (not a dict of fields) is as good as none: that file is made again.
        return {
            "files": {path: entry for path, entry in files.items() if isinstance(entry, dict)},
            "extra": extra if isinstance(extra, dict) else {},
            "listed": listed,
        }


def _would_overwrite(out: Path, theirs: list[str], why: str) -> str:
    """The start of the refusal of a build that would replace files no harness build wrote."""
    shown = ", ".join(theirs[:4]) + (f" and {len(theirs) - 4} more" if len(theirs) > 4 else "")
    return (
        f"The site folder {out} already holds web files no harness build wrote ({shown}; {why}): building "
        "there would overwrite them."
    )


def _foreign_site_files(out: Path) -> list[str]:
    """Files of a kind the build writes (not hidden, at most two folders deep) in a folder without a state
    file: a user's own index.html or results.csv, which a first build would replace. Other files (a gh-pages
    checkout's .git, README, CNAME) are left alone and do not count."""
    found = []
    for pattern in ("*", "*/*", "*/*/*"):
        for path in out.glob(pattern):
            rel = path.relative_to(out)
            if path.is_file() and rel.suffix.lower() in SITE_SUFFIXES and not any(p.startswith(".") for p in rel.parts):
                found.append(rel.as_posix())
    return sorted(found)


def _site_path(relpath: str) -> bool:
    """A relative path inside the folder, of a kind the build writes (a state file may be forged)."""
    path = Path(relpath)
    return not path.is_absolute() and ".." not in path.parts and path.suffix.lower() in SITE_SUFFIXES


def sync_file(
    out: Path,
    relpath: str,
    content: str | bytes,
    before: dict[str, Any] | None,
    inputs: str = "",
    extra: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], bool]:
    """Make out/relpath hold `content`, skipping the write when `before` (its recorded state) shows the
    same hash and the file is untouched. Returns (state to record, whether it was written); `extra`: more to
    record in that state, replacing what `before` holds under the same names (e.g. a data file's row keys)."""
    extra = extra or {}
    data = content.encode("utf-8") if isinstance(content, str) else content
    digest = hashlib.sha256(data).hexdigest()
    target = out / relpath
    if before and before.get("sha256") == digest and untouched(target, before):
        return before | {"inputs": inputs} | extra, False
    tmp = _temporary(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, target)
        st = target.stat()
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise HarnessError(_cannot_write(out, relpath, exc)) from None
    return {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "inputs": inputs} | extra, True


def _temporary(target: Path) -> Path:
    """Where sync_file writes a file's bytes before renaming them over it."""
    return target.with_name(f".{target.name}.tmp")


def _cannot_write(out: Path, relpath: str, exc: OSError) -> str:
    """Why a site file could not be written, e.g. a folder of the user's where a page goes."""
    file_above = next((p for p in Path(relpath).parents if p != Path(".") and (out / p).is_file()), None)
    if (out / relpath).is_dir():
        reason = "a folder is in its place"
    elif file_above is not None:
        reason = f"{file_above.as_posix()} is a file where the build needs a folder"
    else:
        reason = exc.strerror or type(exc).__name__
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
            return (
                f"Cannot write {relpath} in the site folder {out}: {reason}. Make room (or fix the folder's "
                "permissions) and build again, or build into another --out; the next build rewrites what this "
                "one could not."
            )
    return (
        f"Cannot write {relpath} in the site folder {out}: {reason}. The build writes that file; move what is "
        f"there out of the site folder, or build into another --out."
    )


def untouched(path: Path, recorded: dict[str, Any]) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return st.st_size == recorded.get("size") and st.st_mtime_ns == recorded.get("mtime_ns")
