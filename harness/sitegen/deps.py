"""What each page is made of, as a digest: a page whose inputs digest matches the previous build's is
not rendered at all (hash the inputs, not the output).

A run never changes under the same key without its finished_at changing (one transaction writes it,
a re-run replaces it), so a result is identified by its runs' (key, finished_at) and status.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from functools import lru_cache
from pathlib import Path
from typing import Any

import harness
from harness.digests import code_digest
from harness.metrics.stats import Placement
from harness.package_data import data_folder
from harness.sitegen.results import Result

SOURCES = Path(__file__).resolve().parent
TEMPLATES = data_folder("site_templates")


def digest(*parts: Any) -> str:
    """A digest of the values in `parts` (tuples, lists, dicts, strings, numbers, dataclasses): pickled
    without its memo, so that equal values digest the same however they share objects. With the memo, a
    string shared by two fields pickled differently from two equal strings: a snapshot loaded from the run
    cache digested differently from one read from SQLite, and every page was rendered again. No memo is
    also 6x faster here; it refuses cyclic structures, which page inputs never are."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=5)
    pickler.fast = True  # no memo
    pickler.dump(parts)
    return hashlib.sha256(buffer.getbuffer()).hexdigest()[:32]


@lru_cache(maxsize=1)
def renderer_version() -> str:
    """The code and templates that turn data into pages: a change to either re-renders everything."""
    return code_digest([*SOURCES.glob("*.py"), *TEMPLATES.rglob("*.*")], harness.__version__)


def result_identity(r: Result) -> tuple[Any, ...]:
    """What identifies a result's data: its status and its runs' keys and finish times (see the module doc)."""
    return (r.status, *(x.key for x in r.runs), *(x.finished_at for x in r.runs))


def placement_key(p: Placement | None) -> tuple[Any, ...] | None:
    return None if p is None else (p.rank, p.tied_with, p.p_value, p.tested)
