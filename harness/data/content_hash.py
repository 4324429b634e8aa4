"""Content keys: equal keys mean "the same example" for duplicate detection and group-aware splits.

Text is compared after Unicode NFKC, case folding and whitespace collapsing, so copies that differ
only in line breaks or capitalisation are caught; images are compared by their exact pixel bytes.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np


def normalise_text(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def content_key(item: Any) -> str:
    """A 32-hex-digit key of one input (a str or an image array)."""
    h = hashlib.blake2b(digest_size=16)
    if isinstance(item, str):
        h.update(b"t")
        h.update(normalise_text(item).encode("utf-8", "surrogatepass"))
    else:
        arr = np.ascontiguousarray(item)
        h.update(b"i")
        h.update(f"{arr.shape}{arr.dtype}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def content_keys(inputs: Sequence[Any]) -> list[str]:
    return [content_key(x) for x in inputs]
