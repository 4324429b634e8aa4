"""The shared digests: job keys and fingerprints stored in every results database depend on their bytes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import harness.digests as digests
from harness.digests import code_digest, json_digest


def test_json_digest_is_the_sha256_of_sorted_json_that_stored_keys_were_made_with() -> None:
    # Pinned: a change here would give every stored run a new key and re-run every suite from scratch.
    assert json_digest({"b": 1, "a": ["x", 2.5, None]}, 24) == "d26322cd75768f8f5f67f857"
    assert json_digest({"a": [Path("x"), 2.5, None], "b": 1}, 24) == "d26322cd75768f8f5f67f857"
    assert len(json_digest({}, 8)) == 8


def test_code_digest_follows_the_files_bytes_and_names_not_their_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("x = 1\n")
    b.write_text("y = 2\n")
    first = code_digest([a, b], "1.0")
    assert code_digest([b, a], "1.0") == first
    assert code_digest([a, b], "1.1") != first
    b.write_text("y = 3\n")
    assert code_digest([a, b], "1.0") != first
    b.write_text("y = 2\n")
    assert code_digest([a, b], "1.0") == first
    b.rename(tmp_path / "c.py")
    assert code_digest([a, tmp_path / "c.py"], "1.0") != first


def test_code_digest_of_a_file_named_with_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    """A plugin file named so (Python passes the byte 0xff on as '\\udcff'): its digest was UnicodeEncodeError."""
    odd = tmp_path / "pl\udcffug.py"
    odd.write_text("x = 1\n")
    assert len(code_digest([odd])) == 32
    assert code_digest([odd]) != code_digest([odd.rename(tmp_path / "plug.py")])


def test_code_digest_reads_an_unchanged_file_once_and_a_just_edited_one_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan keys every job by its plugins' code; unchanged files are not read again. A file edited in the last
    seconds is read each time: an edit of the same size could keep its size, inode and coarse mtime."""
    reads: list[Path] = []
    real = digests._code_digest

    def counting(paths: tuple[Path, ...], salt: tuple[str, ...]) -> str:
        reads.extend(paths)
        return real(paths, salt)

    monkeypatch.setattr(digests, "_code_digest", counting)
    old, fresh = tmp_path / "old.py", tmp_path / "fresh.py"
    old.write_text("x = 1\n")
    os.utime(old, ns=(1_000_000_000, 1_000_000_000))  # last edited long ago
    fresh.write_text("y = 1\n")
    first = [code_digest([old]) for _ in range(3)]
    assert reads == [old] and len(set(first)) == 1
    before = code_digest([fresh])
    fresh.write_text("y = 2\n")  # the same size, maybe within the same clock tick
    assert code_digest([fresh]) != before
    assert reads.count(fresh) == 2
