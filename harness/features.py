"""On-disk feature cache keyed by (featurizer identity, split fingerprint).

Zero-shot, linear probe and k-shot repeats of one model on one task share one forward pass per split.
Writes are atomic (temp file + rename), so a killed run never leaves a truncated cache entry.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ModelOutputError
from harness.tasks import Split


@dataclass
class FeatureCache:
    root: Path | None  # None: no disk cache (in-memory only)
    memory: dict[tuple[str, str], Any] = field(default_factory=dict)
    forward_passes: int = 0  # encode() calls over a whole split that were not served from cache
    refresh: bool = False  # recompute (and rewrite) entries found on disk; the in-memory cache still serves

    def get(self, cache_id: str | None, split: Split, compute: Callable[[], Any]) -> Any:
        if cache_id is None:
            self.forward_passes += 1
            return _checked(compute(), cache_id, split)
        key = (cache_id, split.fingerprint)
        if key in self.memory:
            return self.memory[key]
        path = self.root / cache_id / f"{split.fingerprint}.npy" if self.root else None
        if path is not None and path.exists() and not self.refresh:
            feats = np.load(path, allow_pickle=False)
        else:
            self.forward_passes += 1
            feats = _checked(compute(), cache_id, split)
            if path is not None and isinstance(feats, np.ndarray):
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npy")
                try:
                    with os.fdopen(fd, "wb") as fh:
                        np.save(fh, feats, allow_pickle=False)
                    os.replace(tmp, path)
                except BaseException:  # a full disk, or the job's time limit: no half-written file left
                    Path(tmp).unlink(missing_ok=True)
                    raise
        self.memory[key] = feats
        return feats


def _checked(feats: Any, cache_id: str | None, split: Split) -> Any:
    if isinstance(feats, np.ndarray):
        if feats.shape[0] != len(split):
            raise ModelOutputError(f"featurizer returned {feats.shape[0]} rows for {len(split)} inputs")
        if not np.isfinite(feats).all():
            bad = int((~np.isfinite(feats)).any(axis=1).sum())
            raise ModelOutputError(f"model produced NaN/inf features for {bad} of {len(split)} {split.name} inputs")
    return feats
