"""Deterministic seeding of every RNG a job touches (python, numpy, torch)."""

from __future__ import annotations

import random

import numpy as np

MAX_SEED = 2**32 - 1  # numpy's legacy seeding limit; seeds are also stored as SQLite integers


def check_seed(seed: int, key: str = "seed") -> None:
    """ValueError (for a config's __post_init__) unless `seed` is one numpy's seeding takes."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{key} must be an integer from 0 to 2**32 - 1 ({MAX_SEED}), got {seed}.")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
