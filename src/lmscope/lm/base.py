"""The interface every language-model backend implements: ``generate`` and ``score``."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ContinuationScore:
    """Log-probability of one continuation after a prompt (natural log; ``logprob`` is the sum)."""

    text: str
    logprob: float
    token_logprobs: list[float]
    tokens: list[str]


class LanguageModel(abc.ABC):
    """A language model that samples text and scores continuations.

    Scoring rule shared by all backends: prompt + continuation are tokenized as one text; the
    continuation's tokens are those whose character offset is >= len(prompt) (a token straddling
    the boundary counts to the continuation); log-probabilities are natural logs.
    """

    spec: str

    @abc.abstractmethod
    def identity(self) -> dict:
        """JSON-able description of the model, used as the model part of cache keys."""

    @abc.abstractmethod
    def generate(self, prompts: Sequence[str | list[dict]], *, max_tokens: int = 64, temperature: float = 0.0,
                 top_p: float = 1.0, n: int = 1, stop: Sequence[str] | None = None,
                 seed: int = 0) -> list[list[str]]:
        """``n`` completions per prompt; a prompt is plain text or a list of chat messages."""

    @abc.abstractmethod
    def score(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[ContinuationScore]]:
        """For each (prompt, continuations) pair, the score of every continuation."""

    def close(self) -> None:  # noqa: B027 (an optional hook, not abstract)
        """Release resources (connections, processes); the default does nothing."""
