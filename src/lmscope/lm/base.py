"""The interface every language-model backend implements: generate text and score continuations."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ContinuationScore:
    """Log-probability (natural log) of one continuation after a prompt, summed and per token."""

    text: str
    logprob: float
    token_logprobs: list[float]
    tokens: list[str]


class LanguageModel(abc.ABC):
    """A language model behind one of lmscope's backends."""

    spec: str

    @abc.abstractmethod
    def identity(self) -> dict:
        """What identifies the model (backend, model name or path, ...), for caches and reports."""

    @abc.abstractmethod
    def generate(self, prompts: Sequence[str | list[dict]], *, max_tokens=64, temperature=0.0, top_p=1.0, n=1,
                 stop=None, seed=0) -> list[list[str]]:
        """``n`` completions per prompt (a plain string or a list of chat messages)."""

    @abc.abstractmethod
    def score(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[ContinuationScore]]:
        """For each ``(prompt, continuations)``, the log-probability of every continuation after the prompt."""

    def close(self) -> None:  # noqa: B027 - optional for backends
        """Release the model's resources."""
