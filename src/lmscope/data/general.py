"""A bundled sample of general English prose.

The passages in ``resources/general_text.jsonl`` were written for this package. They cover many
topics and styles (expository, narrative, instructional, dialogue) and serve as held-out "general
text": the language-modelling loss on them before and after fine-tuning shows how much a model
forgets, and their two halves give matched pairs for a contrastive check of sentence encoders.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

from lmscope._io import read_jsonl
from lmscope.errors import LmscopeError

_RESOURCE = "general_text.jsonl"

# A sentence ends with . ! or ?, optionally followed by closing quotes or brackets, then
# whitespace, and the next sentence starts with a capital letter, a digit or an opening quote.
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(\s+)(?=[\"'(\[A-Z0-9])")


@functools.lru_cache(maxsize=1)
def _passages() -> tuple[dict, ...]:
    ref = resources.files("lmscope.data").joinpath("resources", _RESOURCE)
    with resources.as_file(ref) as path:
        rows = read_jsonl(path)
    for i, row in enumerate(rows, 1):
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise LmscopeError(f"bundled {_RESOURCE}: row {i} has no text")  # pragma: no cover
    return tuple(rows)


def _check_n(n: int | None) -> None:
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise LmscopeError(f"n must be a positive whole number or None, got {n!r}")


def load_general_text(n: int | None = None) -> list[str]:
    """Return the texts of the bundled general-English passages, in file order.

    ``n`` keeps only the first ``n`` passages; ``None`` (the default) returns all of them, and an
    ``n`` larger than the number of passages also returns all of them. ``n < 1`` raises
    :class:`LmscopeError`.
    """
    _check_n(n)
    texts = [row["text"] for row in _passages()]
    return texts if n is None else texts[:n]


def general_text_topics(n: int | None = None) -> list[str]:
    """Return the topic label of each passage, aligned with :func:`load_general_text`."""
    _check_n(n)
    topics = [str(row.get("topic", "")) for row in _passages()]
    return topics if n is None else topics[:n]


def split_halves(text: str) -> tuple[str, str]:
    """Split ``text`` into two non-empty halves at the sentence boundary nearest its middle.

    ``first + " " + second`` equals ``text`` up to whitespace. A text with no sentence boundary
    is split at the word boundary nearest the middle; a single word cannot be split and raises
    :class:`LmscopeError`.
    """
    text = text.strip()
    middle = len(text) / 2
    cuts = [(m.start(1), m.end(1)) for m in _SENTENCE_END.finditer(text) if m.end(1) < len(text)]
    if not cuts:
        cuts = [(m.start(), m.end()) for m in re.finditer(r"\s+", text)]
    if not cuts:
        raise LmscopeError(f"cannot split a text without whitespace into halves: {text[:40]!r}")
    start, end = min(cuts, key=lambda c: (abs(c[0] - middle), c[0]))
    return text[:start], text[end:]


def general_text_pairs(n: int | None = None) -> list[tuple[str, str]]:
    """Return ``(first_half, second_half)`` for each of the first ``n`` passages.

    Each passage is split at the sentence boundary nearest its middle (see :func:`split_halves`);
    the two halves of one passage are a matched pair, halves of different passages are not.
    """
    return [split_halves(text) for text in load_general_text(n)]
