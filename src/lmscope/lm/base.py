"""The language-model interface every backend implements: ``generate`` and ``score``.

A backend is opened by :func:`lmscope.lm.open_lm` from a spec string. All backends share one
definition of scoring (see :meth:`LanguageModel.score`), so a prior computed with a local model and
one computed through an HTTP server mean the same thing.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from lmscope.errors import LmscopeError, check_int, check_number

# A prompt is plain text or a list of chat messages [{"role": ..., "content": ...}, ...].
Prompt = str | list[dict]


@dataclass(frozen=True)
class ContinuationScore:
    """The log-probability of one continuation after a prompt (natural log)."""

    text: str  # the continuation
    logprob: float  # sum of token_logprobs
    token_logprobs: list[float] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


CHAT_PLACEHOLDER = "{prompt}"


class LanguageModel(abc.ABC):
    """A language model that generates text and scores continuations.

    ``spec`` names it the way :func:`lmscope.lm.open_lm` accepts it, e.g. ``local:smollm2-135m`` or
    ``http://127.0.0.1:8080/v1#model``.
    """

    spec: str

    @abc.abstractmethod
    def identity(self) -> dict:
        """A JSON-able description that tells this model apart from others (used by the cache key)."""

    @abc.abstractmethod
    def generate(self, prompts: Sequence[Prompt], *, max_tokens: int = 64, temperature: float = 0.0,
                 top_p: float = 1.0, n: int = 1, stop: Sequence[str] | None = None,
                 seed: int = 0) -> list[list[str]]:
        """One list of ``n`` completions per prompt.

        A prompt is plain text or chat messages ``[{"role", "content"}, ...]``. Temperature 0 is greedy;
        otherwise tokens are sampled with the temperature and nucleus (``top_p``) filtering. A stop
        string ends a completion and is not part of it. ``seed`` makes sampling reproducible.
        """

    @abc.abstractmethod
    def score(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[ContinuationScore]]:
        """Per request ``(prompt, continuations)``: the log-probability of each continuation after the prompt.

        Definition shared by all backends: ``prompt + continuation`` is tokenized as one text; the
        continuation's tokens are those whose character span starts at or after ``len(prompt)``, plus a
        token straddling the boundary (starting before ``len(prompt)`` and ending after it): in short,
        every token that ends after ``len(prompt)``. Each is scored given all the tokens before it.
        Log-probabilities are natural logs; an empty continuation has no tokens and log-probability 0.
        """

    def chat_format(self) -> dict:
        """How chat messages reach the model: ``applied_by`` (``tokenizer``: the model's own chat template,
        ``fallback``: lmscope's ``Role: content`` transcript, ``server``: the server's template) and, where
        the backend can tell, ``example``: the text the model sees for one user message, whose content is
        :data:`CHAT_PLACEHOLDER` (so a default system prompt the template adds shows there)."""
        return {"applied_by": "server"}

    def close(self) -> None:  # noqa: B027 - optional for backends that hold nothing
        """Release what the backend holds (models, connections)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"


# ------------------------------------------------------------------------------------------------
# Argument checks shared by the backends and the cache
# ------------------------------------------------------------------------------------------------
def check_prompt(prompt, where: str = "prompt") -> Prompt:
    """A prompt is a string or a non-empty list of {"role": str, "content": str} messages."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, (list, tuple)) and prompt:
        for i, m in enumerate(prompt):
            if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
                raise LmscopeError(f"{where}: message {i + 1} is not {{\"role\": str, \"content\": str}}")
        return [dict(m) for m in prompt]
    raise LmscopeError(f"{where}: expected text or a non-empty list of chat messages, got {type(prompt).__name__}")


# the most completions one generate call returns per prompt, and the most tokens of one completion: a
# bound on the work (and the cache entry) one call can ask for; a local model's context length is
# the tighter bound on max_tokens there
MAX_COMPLETIONS = 128
MAX_GENERATE_TOKENS = 32_768


def check_generate_args(prompts, max_tokens, temperature, top_p, n, stop, seed) -> tuple[list, list[str]]:
    """Validate ``generate``'s arguments; returns the prompts as a list and the stop strings."""
    if isinstance(prompts, (str, dict)):
        raise LmscopeError("generate takes a list of prompts (wrap a single prompt in a list)")
    prompts = [check_prompt(p, f"prompt {i + 1}") for i, p in enumerate(prompts)]
    check_int("max_tokens", max_tokens, 1, MAX_GENERATE_TOKENS)
    check_number("temperature", temperature, 0.0)
    check_number("top_p", top_p, maximum=1.0, above=0.0)
    check_int("n", n, 1, MAX_COMPLETIONS)
    check_int("seed", seed)
    if isinstance(stop, str):
        stop = [stop]
    stop = list(stop or [])
    if any(not isinstance(s, str) or not s for s in stop):
        raise LmscopeError("stop strings must be non-empty strings")
    return prompts, stop


def check_score_requests(requests) -> list[tuple[str, list[str]]]:
    """Validate ``score``'s requests: (prompt text, non-empty list of continuation texts)."""
    if isinstance(requests, tuple) and len(requests) == 2 and isinstance(requests[0], str):
        raise LmscopeError("score takes a list of (prompt, continuations) requests (wrap one in a list)")
    out = []
    for i, req in enumerate(requests):
        if not (isinstance(req, (tuple, list)) and len(req) == 2):
            raise LmscopeError(f"request {i + 1}: expected (prompt, continuations)")
        prompt, conts = req
        if not isinstance(prompt, str):
            raise LmscopeError(f"request {i + 1}: the prompt must be text (chat messages cannot be scored)")
        if isinstance(conts, str):
            raise LmscopeError(f"request {i + 1}: continuations must be a list of strings, not one string")
        conts = list(conts)
        if not conts:
            raise LmscopeError(f"request {i + 1}: the list of continuations is empty")
        if any(not isinstance(c, str) for c in conts):
            raise LmscopeError(f"request {i + 1}: every continuation must be a string")
        out.append((prompt, conts))
    return out


def canonical_json(obj) -> str:
    """One spelling per value: sorted keys, no spaces, UTF-8 kept (the cache hashes this)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
