"""The output file of a command (`--out` of compare, export-baseline and export): checked before any work
(check_out), then written whole or not at all (write_out)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from harness.errors import HarnessError


def check_out(out: Path, option: str, inputs: Iterable[Path | None] = (), example: str = "report.md") -> None:
    """The output file's folder exists (created if needed) and is writable, the path is not a folder, and
    the file is none of the command's `inputs` (a results database or baseline it reads): writing there would
    replace the data with the report."""
    if out.is_dir():
        raise HarnessError(f"{option} {out} is a directory; give a file path, e.g. {out / example}.")
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
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessError(
            f"{option} {out}: its folder {out.parent} cannot be created ({exc.strerror or exc})."
        ) from None
    if not os.access(out.parent, os.W_OK):
        raise HarnessError(f"{option} {out}: its folder {out.parent} is not writable.")


def write_out(data: bytes, out: Path, option: str = "--out") -> None:
    """`data` into `out`: a regular file (or a new one) replaced whole through a temporary file next to it, so
    a full disk or an interruption leaves the old file (or none), never a truncated one; the file a symlink
    points to rather than the link; a device or a pipe (/dev/stdout, a FIFO) written into as it is, never
    replaced by a file."""
    try:
        if out.exists() and not out.is_file():  # exists/is_file follow links: /dev/stdout is a pipe or a tty
            with out.open("wb") as fh:
                fh.write(data)
            return
        target = out.resolve() if out.is_symlink() else out
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        try:
            tmp.write_bytes(data)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise HarnessError(f"{option} {out}: cannot be written ({exc.strerror or exc}).") from None


def _is_sidecar(out: Path, db: Path) -> bool:
    """`out` is the -wal, -shm or -journal file of the database `db`."""
    if not any(out.name == db.name + suffix for suffix in ("-wal", "-shm", "-journal")):
        return False
    try:
        return os.path.samefile(out.parent, db.parent)
    except OSError:
        return False
