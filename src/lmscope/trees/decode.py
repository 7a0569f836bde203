"""From a chart to a tree: greedy top-down decoding and the tree-structuredness score.

Parsing F1 (:func:`bracket_match`, :func:`prf`, :func:`parse_f1`) and the baseline trees
(:func:`baseline_tree`) live in the base, :mod:`lmscope.data.trees`, and are re-exported here.
Charts are (n, n) arrays with the similarity ``s(i, j)`` of the span of words ``i..j`` at ``[i, j]``
(``j >= i``). Trees are :mod:`lmscope.data.trees` trees (a word, or a tuple of subtrees).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lmscope.data.trees import (  # noqa: F401 - parse F1 and the baselines live in the base, re-exported here
    BASELINE_NAMES,
    Tree,
    baseline_tree,
    bracket_match,
    parse_f1,
    prf,
)
from lmscope.errors import LmscopeError

Node = tuple[int, int, int]
"""An internal node ``(i, j, k)`` of a binary tree over words: span ``i..j`` split into ``i..k`` and ``k+1..j``."""

def _check_chart(chart: np.ndarray) -> np.ndarray:
    chart = np.asarray(chart, dtype=float)
    if chart.ndim != 2 or chart.shape[0] != chart.shape[1] or chart.shape[0] < 1:
        raise LmscopeError(f"a chart must be a square (n, n) array, got shape {chart.shape}")
    return chart


def greedy_splits(chart: np.ndarray) -> list[Node]:
    """Top-down greedy decoding: for span (i, j) the split k maximising ``s(i, k) + s(k+1, j)``.

    Returns the internal nodes in pre-order (a node, then its left subtree, then its right one).
    Ties go to the leftmost split.
    """
    chart = _check_chart(chart)
    n = chart.shape[0]
    nodes: list[Node] = []
    stack = [(0, n - 1)]
    while stack:
        i, j = stack.pop()
        if j == i:
            continue
        scores = chart[i, i:j] + chart[i + 1:j + 1, j]  # split after word k = i .. j-1
        if not np.all(np.isfinite(scores)):
            raise LmscopeError(f"the chart has no finite similarity for some span inside ({i}, {j})")
        k = i + int(np.argmax(scores))
        nodes.append((i, j, k))
        stack.append((k + 1, j))
        stack.append((i, k))
    return nodes


def tree_from_splits(words: Sequence[str], nodes: Sequence[Node]) -> Tree:
    """The tree over ``words`` whose internal nodes are ``nodes`` (a complete binary bracketing)."""
    words = list(words)
    split = {(i, j): k for i, j, k in nodes}
    built: dict[tuple[int, int], Tree] = {}
    stack = [((0, len(words) - 1), False)]
    while stack:
        (i, j), expanded = stack.pop()
        if i == j:
            built[(i, j)] = words[i]
            continue
        if (i, j) not in split:
            raise LmscopeError(f"no split for the span ({i}, {j})")
        k = split[(i, j)]
        if expanded:
            built[(i, j)] = (built.pop((i, k)), built.pop((k + 1, j)))
        else:
            stack += [((i, j), True), ((k + 1, j), False), ((i, k), False)]
    return built[(0, len(words) - 1)]


def decode(chart: np.ndarray, words: Sequence[str]) -> tuple[Tree, list[Node]]:
    """The greedy tree of ``words`` under ``chart`` and its internal nodes (pre-order)."""
    chart = _check_chart(chart)
    if chart.shape[0] != len(words):
        raise LmscopeError(f"a chart of {chart.shape[0]} words for a sentence of {len(words)}")
    nodes = greedy_splits(chart)
    return tree_from_splits(words, nodes), nodes


def split_score(chart: np.ndarray, i: int, j: int, k: int) -> float:
    return float(chart[i, k] + chart[k + 1, j])


def t_score(chart: np.ndarray, nodes: Sequence[Node], rng: np.random.Generator | int | None = 0) -> float:
    """Sum over internal nodes of ``s(chosen children) - s(children of a uniformly random split)``.

    ``nodes`` are the induced tree's nodes in pre-order; the random split of node (i, j) is drawn
    uniformly from ``i .. j-1`` with ``rng`` (a numpy Generator or a seed), one draw per node in that
    order. A one-word sentence scores 0.
    """
    chart = _check_chart(chart)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    total = 0.0
    for i, j, k in nodes:
        r = int(gen.integers(i, j))
        total += split_score(chart, i, j, k) - split_score(chart, i, j, r)
    return total


def sentence_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """The generator of one sentence's draws: independent of the other sentences and of batching.

    ``stream`` 0: random splits of the t-score; 1: the random-tree baseline.
    """
    return np.random.default_rng([int(seed), int(index), int(stream)])
