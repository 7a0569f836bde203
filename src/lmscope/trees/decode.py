"""From a chart to a tree: greedy top-down decoding, the tree-structuredness score, parsing F1 and baselines.

Charts are (n, n) arrays with the similarity ``s(i, j)`` of the span of words ``i..j`` at ``[i, j]``
(``j >= i``). Trees are :mod:`lmscope.data.trees` trees (a word, or a tuple of subtrees).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lmscope.data.trees import Tree, balanced, left_branching, random_tree, right_branching, spans
from lmscope.errors import LmscopeError

Node = tuple[int, int, int]
"""An internal node ``(i, j, k)`` of a binary tree over words: span ``i..j`` split into ``i..k`` and ``k+1..j``."""

BASELINE_NAMES = ("left", "right", "balanced", "random")


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


def bracket_match(pred: Tree, gold: Tree) -> tuple[int, int, int]:
    """(matched, predicted, gold) bracket counts; brackets are :func:`lmscope.data.trees.spans`."""
    p, g = spans(pred), spans(gold)
    return len(p & g), len(p), len(g)


def prf(counts: Sequence[tuple[int, int, int]]) -> dict:
    """Pooled precision, recall and F1 over ``(matched, predicted, gold)`` counts.

    With no brackets at all (only one-word sentences) the scores are None.
    """
    m = sum(c[0] for c in counts)
    p = sum(c[1] for c in counts)
    g = sum(c[2] for c in counts)
    precision = m / p if p else None
    recall = m / g if g else None
    if precision is None or recall is None:
        f1 = None
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "matched": m, "predicted": p, "gold": g}


def baseline_tree(name: str, words: Sequence[str], rng: np.random.Generator | int | None = None) -> Tree:
    """A baseline tree over ``words``: left- or right-branching, balanced, or random (seeded)."""
    if name == "left":
        return left_branching(list(words))
    if name == "right":
        return right_branching(list(words))
    if name == "balanced":
        return balanced(list(words))
    if name == "random":
        return random_tree(list(words), rng)
    raise LmscopeError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINE_NAMES)}")


def sentence_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """The generator of one sentence's draws: independent of the other sentences and of batching.

    ``stream`` 0: random splits of the t-score; 1: the random-tree baseline.
    """
    return np.random.default_rng([int(seed), int(index), int(stream)])
