"""Where harness keeps its per-user caches: $XDG_CACHE_HOME/harness/<kind>, else ~/.cache/harness/<kind>,
unless the cache's own variable names a folder (HARNESS_SITE_CACHE, HARNESS_MODEL_CACHE, HARNESS_CACHE_DIR)."""

from __future__ import annotations

import os
from pathlib import Path


def harness_cache_root() -> Path:
    """$XDG_CACHE_HOME/harness, else ~/.cache/harness (an empty XDG_CACHE_HOME counts as unset, as the spec says)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "harness"
