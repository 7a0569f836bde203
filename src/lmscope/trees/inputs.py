"""Reading sentences (and gold trees) for tree projections from a file.

Three formats, told apart by the file's first non-blank line:

* JSONL in the suites schema (the line starts with ``{``): rows ``{"text", "tree"?, ...}`` read by
  :func:`lmscope.data.suites.load_suite_file`; a row with a ``tree`` contributes the tree's leaves as
  the sentence and the tree as gold (for the grammar suites, the words before the final
  ``. MARKER``); a row without one contributes the words of ``text``.
* bracketed trees, one per line (the line starts with ``(``): the leaves are the sentence, the tree
  is the gold tree.
* plain text: one sentence per line, words separated by white space.

Blank lines are skipped in every format. Every sentence keeps its place, ``FILE:LINE``, for messages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lmscope.data.evalsets import sample_indices
from lmscope.data.trees import Tree, leaves, parse_bracketed, to_bracketed
from lmscope.errors import LmscopeError


@dataclass
class SentenceFile:
    """Sentences read from a file, their gold trees (None where absent) and their ``FILE:LINE``."""

    path: str
    kind: str  # "jsonl", "trees" or "text"
    sentences: list[list[str]]
    gold_trees: list[Tree | None]
    where: list[str]

    def __len__(self) -> int:
        return len(self.sentences)

    @property
    def has_gold(self) -> bool:
        return any(t is not None for t in self.gold_trees)

    def sample(self, n: int | None, seed: int = 0) -> SentenceFile:
        """A seeded sample of ``n`` sentences in their file order, the choice every ``--limit N`` makes
        (:func:`lmscope.data.evalsets.sample_indices`); all of them when ``n`` is None or not smaller
        than the file."""
        if n is None:
            return self
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise LmscopeError(f"--limit must be at least 1, got {n}")
        keep = sample_indices(len(self), n, seed)
        return SentenceFile(self.path, self.kind, [self.sentences[i] for i in keep],
                            [self.gold_trees[i] for i in keep], [self.where[i] for i in keep])


def _lines(path: Path) -> list[tuple[int, str]]:
    from lmscope._io import read_lines_numbered

    return [(k, line.strip()) for k, line in read_lines_numbered(path) if line.strip()]


def _check_words(words: list[str], where: str) -> list[str]:
    try:
        to_bracketed(words[0] if len(words) == 1 else tuple(words))
    except LmscopeError as e:
        raise LmscopeError(f"{where}: {e}") from None
    return words


FORMATS = ("auto", "jsonl", "trees", "text")


def read_sentence_file(path: str | os.PathLike, fmt: str = "auto") -> SentenceFile:
    """Read a JSONL, bracketed-tree or plain-text file of sentences (see the module docstring).

    ``fmt="auto"`` decides by the first line (``{``: JSONL, ``(``: trees, else text); give ``"text"``
    for plain sentences that start with a bracket (e.g. Dyck strings or arithmetic). Raises
    :class:`LmscopeError` naming the line for a malformed line or a tree whose leaves do not match
    its text, and for a file without sentences.
    """
    if fmt not in FORMATS:
        raise LmscopeError(f"unknown sentence-file format {fmt!r}; choose one of {', '.join(FORMATS)}")
    from lmscope._io import read_jsonl_numbered
    from lmscope.data.suites import load_suite_file

    p = Path(path)
    lines = _lines(p)
    if not lines:
        raise LmscopeError(f"{p}: the file holds no sentences")
    first = lines[0][1]
    sentences, golds, where = [], [], []
    if fmt == "auto":
        fmt = "jsonl" if first.startswith("{") else "trees" if first.startswith("(") else "text"
    if fmt == "jsonl":
        kind = "jsonl"
        rows = load_suite_file(p)  # checks every row, and that a tree's leaves match its text
        numbers = [k for k, _ in read_jsonl_numbered(p)]
        for lineno, row in zip(numbers, rows, strict=True):
            w = f"{p}:{lineno}"
            if "tree" in row:
                tree = parse_bracketed(row["tree"])
                sentences.append(_check_words(leaves(tree), w))
                golds.append(tree)
            else:
                sentences.append(_check_words(row["text"].split(), w))
                golds.append(None)
            where.append(w)
    elif fmt == "trees":
        kind = "trees"
        for lineno, line in lines:
            w = f"{p}:{lineno}"
            try:
                tree = parse_bracketed(line)
            except LmscopeError as e:
                raise LmscopeError(f"{w}: {e}") from None
            sentences.append(leaves(tree))
            golds.append(tree)
            where.append(w)
    else:
        kind = "text"
        for lineno, line in lines:
            w = f"{p}:{lineno}"
            sentences.append(_check_words(line.split(), w))
            golds.append(None)
            where.append(w)
    return SentenceFile(str(p), kind, sentences, golds, where)
