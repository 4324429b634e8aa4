"""The capability protocols use to score with a causal language model, whatever its family."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.models.base import ModelAdapter


@dataclass(frozen=True)
class ScoringStats:
    """What one scoring call processed: tokens run through the model and the wall time it took."""

    examples: int
    tokens: int
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("inf")


class LanguageModel(ModelAdapter, ABC):
    """A model that gives log-probabilities of token continuations (lm_loglik / zero-shot scoring).

    Token ids come from `token_ids` (no special tokens; the model adds its BOS, if it uses one, in front
    of the first segment it scores). `loglikelihoods` returns the summed log-probability of each
    continuation after `prefix + context` for every (context, continuation) pair, (N, L) float64, and
    what the call processed.
    """

    @abstractmethod
    def token_ids(self, text: str) -> list[int]: ...

    @abstractmethod
    def truncate_text(self, text: str, max_tokens: int) -> str:
        """The longest prefix of `text` (cut at a token boundary) that has at most `max_tokens` tokens."""

    @property
    @abstractmethod
    def context_limit(self) -> int:
        """Most tokens the model attends to in one sequence."""

    @property
    def leading_tokens(self) -> int:
        """Tokens the model puts in front of the first segment it scores (its BOS, if it uses one)."""
        return 0

    @abstractmethod
    def loglikelihoods(
        self, prefix: Sequence[int], contexts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]]
    ) -> tuple[np.ndarray, ScoringStats]: ...
