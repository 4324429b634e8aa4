"""The output file of a command (`--out` of compare, export-baseline and export): checked before any work
(check_out), then written whole or not at all (write_out)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from harness.errors import HarnessError


def check_out(out: Path, option: str, inputs: Iterable[Path | None] = (), example: str = "report.md") -> None:
    """The output file's folder exists (created if needed) and is writable, the path is not a folder, and
    the file is none of the command's `inputs` (a results database or baseline it reads): writing there would
    replace the data with the report."""
    if out.is_dir():
        raise HarnessError(f"{option} {out} is a directory; give a file path, e.g. {out / example}.")
    check_link_target(out, option, "give another path", written_in=False)
    for given in inputs:
        if given is not None and out.exists() and given.exists() and os.path.samefile(out, given):
            raise HarnessError(
                f"{option} {out} is the file this command reads ({given}); writing there would replace those "
                f"results. Give another path, e.g. {out.with_name(example)}."
            )
        if given is not None and _is_sidecar(out, given):
            raise HarnessError(
                f"{option} {out} is a file SQLite keeps beside the results database {given} (its write-ahead log "
                f"or shared memory, holding writes not yet in {given.name}); writing there would lose them. Give "
                f"another path, e.g. {out.with_name(example)}."
            )
    # The folder is made by write_out, once there is something to write: a command that fails before that
    # leaves no new empty folders. Here: the nearest folder that exists must be a writable folder.
    existing = next(p for p in (out.parent, *out.parent.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise HarnessError(f"{option} {out}: {existing} is a file, not a folder; give a path in a folder.")
    if not os.access(existing, os.W_OK):
        raise HarnessError(f"{option} {out}: its folder {existing} is not writable.")


def write_out(data: bytes, out: Path, option: str = "--out") -> None:
    """`data` into `out`: a regular file (or a new one) replaced whole through a temporary file next to it, so
    a full disk or an interruption leaves the old file (or none), never a truncated one; the file a symlink
    points to rather than the link; a device or a pipe (/dev/stdout, a FIFO) written into as it is, never
    replaced by a file."""
    try:
        if out.exists() and not out.is_file():  # exists/is_file follow links: /dev/stdout is a pipe or a tty
            _write_into(out, data, option)
            return
        target = out.resolve() if out.is_symlink() else out
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name[:200]}.tmp")  # a name may be 255 bytes: the temporary's too
        try:
            tmp.write_bytes(data)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise HarnessError(f"{option} {out}: cannot be written ({exc.strerror or exc}).") from None


def check_link_target(link: Path, label: str, instead: str, *, written_in: bool) -> None:
    """Refuse `link` when it is a symbolic link to something missing whose folder a write needs: the target
    itself for a folder written in (`written_in`, a site), else the target's folder (a file): writing through
    the link would make folders wherever it points. The message names the final target (through every link)."""
    if not link.is_symlink() or link.exists() or is_symlink_loop(link):
        return
    target = Path(os.path.realpath(link))
    folder = target if written_in else target.parent
    if not folder.is_dir():
        which = "which" if written_in else f"whose folder {folder}"
        raise HarnessError(
            f"{label} {link} is a symbolic link to {target}, {which} does not exist. Create that folder first, "
            f"or {instead}."
        )


def is_symlink_loop(path: Path) -> bool:
    """`path` is a symbolic link that leads back to itself (or a link on the way to it does): what opening
    it would say only as "Too many levels of symbolic links", or "File exists" when making it a folder."""
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def _write_into(out: Path, data: bytes, option: str) -> None:
    """Write into a device or a pipe as it is. A named pipe that nobody reads would block the open forever:
    opened without blocking first, so that case is an error instead of a hang."""
    if stat.S_ISFIFO(out.stat().st_mode):
        try:
            fd = os.open(out, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                raise HarnessError(
                    f"{option} {out} is a named pipe that no program is reading; start the reader first, or give "
                    "a file path."
                ) from None
            raise
        os.set_blocking(fd, True)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return
    with out.open("wb") as fh:
        fh.write(data)


def _is_sidecar(out: Path, db: Path) -> bool:
    """`out` is the -wal, -shm or -journal file of the database `db`."""
    if not any(out.name == db.name + suffix for suffix in ("-wal", "-shm", "-journal")):
        return False
    try:
        return os.path.samefile(out.parent, db.parent)
    except OSError:
        return False
