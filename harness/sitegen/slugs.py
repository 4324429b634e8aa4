"""Safe, unique, stable file names for pages named after models, tasks and protocols.

A name that is already a clean slug keeps it (``minilm`` -> ``minilm``); any other name gets its
sanitised form plus a short hash of the exact name (``Foo Bar`` -> ``foo-bar-1a2b3c4d``), so two names
that sanitise alike never share a file, on case-insensitive file systems too.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

MAX_BASE = 48
_UNSAFE = re.compile(r"[^a-z0-9]+")
_CLEAN = re.compile(r"[a-z0-9]+(?:[-_.][a-z0-9]+)*")
# Device names Windows refuses as file names, whatever the extension.
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def _base(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    base = _UNSAFE.sub("-", ascii_name.lower()).strip("-")[:MAX_BASE].strip("-")
    return base or "item"


def _digest(name: str, length: int) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def _is_clean(name: str) -> bool:
    return (
        len(name) <= MAX_BASE and _CLEAN.fullmatch(name) is not None and name.split(".")[0] not in _RESERVED
    )


def slugify_all(names: Iterable[str]) -> dict[str, str]:
    """name -> slug, unique (case-insensitively) over `names`; the same name always gets the same slug."""
    unique = sorted(set(names))
    slugs: dict[str, str] = {}
    taken: set[str] = set()
    for name in unique:
        if _is_clean(name):
            slugs[name] = name
            taken.add(name)
    for name in unique:
        if name in slugs:
            continue
        length = 8
        slug = f"{_base(name)}-{_digest(name, length)}"
        while slug in taken:  # a hash-prefix collision: lengthen until free
            length += 4
            slug = f"{_base(name)}-{_digest(name, length)}"
        slugs[name] = slug
        taken.add(slug)
    return slugs
